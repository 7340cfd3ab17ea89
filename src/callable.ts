// node:net, node:tls and node:https let their classes be called without
// `new` (tls.Server(), https.Agent()); ES classes throw. The same class,
// callable: `instanceof`, `extends` and static members all go to the class.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Constructor = abstract new (...args: any[]) => unknown

export type Callable<C extends Constructor> = C & ((...args: ConstructorParameters<C>) => InstanceType<C>)

export function callable<C extends Constructor>(cls: C): Callable<C> {
  return new Proxy(cls, {
    apply: (target, _thisArg, args) => Reflect.construct(target, args),
  }) as Callable<C>
}
