// node:net, node:tls and node:https let their classes be called without
// `new` (tls.Server(), https.Agent()); ES classes throw. The same class,
// callable: `instanceof`, `extends` and static members all go to the class.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Constructor = abstract new (...args: any[]) => unknown

export type Callable<C extends Constructor> = C & ((...args: ConstructorParameters<C>) => InstanceType<C>)

/**
 * `adopt`, when given, serves `Cls.call(obj, ...args)` for an `obj` it
 * accepts (a function-style subclass initializing itself, as node:https's
 * Server does with tls.Server): it sets `obj` up in place and returns it.
 */
export function callable<C extends Constructor>(cls: C, adopt?: (thisArg: unknown, args: unknown[]) => object | undefined): Callable<C> {
  return new Proxy(cls, {
    apply: (target, thisArg, args) => adopt?.(thisArg, args) ?? Reflect.construct(target, args),
  }) as Callable<C>
}
