// The native binding, the process's one readiness reactor, and the
// bookkeeping that keeps the event loop alive while sockets are open.
import type * as Binding from '../binding/index'

/** Why the binding did not load (no binary for this platform): ktls is then node:tls (fallback.ts). */
export let bindingLoadError: Error | undefined
let loaded: typeof Binding | undefined
try {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded = require('../binding/index.js')
} catch (err) {
  bindingLoadError = err instanceof Error ? err : new Error(String(err))
}
/** The binding; used only where it loaded (index.ts never reaches it otherwise). */
export const binding = loaded as typeof Binding

export const READABLE = 1
export const WRITABLE = 2

/** Something that wants readiness reports. */
export interface Pollable {
  onReady(bits: number): void
}

const pollables = new Map<number, Pollable>()
let reactor: Binding.Reactor | undefined
let nextToken = 1

// Reports straight from the loop need a host whose immediates run the
// nextTick and microtask queues (Node's do): see fromLoop().
const nodeLikeHost = typeof (process as unknown as { _tickCallback?: unknown })._tickCallback === 'function'
let fromMainLoop = false
/** Armed interests stay registered until changed or disarmed (see the reactor's `sticky`). */
export let stickyArms = false

// A throw from a user callback (a 'data' listener, say) must not cost the
// rest of the batch its one-shot reports; it is rethrown from a nextTick,
// so it is an uncaught exception, as it would be from a net.Socket.
const rethrow = (err: unknown): never => {
  throw err
}

function dispatch(batch: Uint32Array): void {
  for (let i = 0; i < batch.length; i += 2) {
    try {
      pollables.get(batch[i])?.onReady(batch[i + 1])
    } catch (err) {
      process.nextTick(rethrow, err)
    }
  }
}

// Reports straight from the loop run in an immediate of the same loop turn
// (the check phase follows the poll phase that reported them). Node calls
// immediates, as its handles' callbacks, inside a callback scope: native
// code that calls back into JavaScript meanwhile (http2's session reading a
// socket's 'data') must not run the nextTick queue in the middle of a read,
// which it does where no scope is open, re-entering that read.
let queued: Uint32Array[] = []

function fromLoop(batch: Uint32Array): void {
  if (!fromMainLoop) return dispatch(batch) // a threadsafe call: Node opened the scope
  if (queued.push(batch) === 1) setImmediate(dispatchQueued)
}

function dispatchQueued(): void {
  const batches = queued
  queued = []
  for (const batch of batches) dispatch(batch)
}

/** Registers `p` and returns its token and the reactor to arm with. */
export function register(p: Pollable): { token: number; reactor: Binding.Reactor } {
  if (!reactor) {
    reactor = new binding.Reactor(fromLoop, nodeLikeHost)
    fromMainLoop = reactor.mainLoop
    stickyArms = reactor.sticky
  }
  const token = nextToken
  nextToken = nextToken >= 0xffff_fff0 ? 1 : nextToken + 1
  pollables.set(token, p)
  return { token, reactor }
}

export function unregister(token: number): void {
  pollables.delete(token)
}

// The reactor's callback is weak (it must not hold a finished process
// open); each referenced socket holds this one timer instead.
let refs = 0
let keepAlive: NodeJS.Timeout | undefined

export function holdLoop(): void {
  if (refs++ === 0) keepAlive = setInterval(() => {}, 1 << 30)
}

export function releaseLoop(): void {
  if (--refs === 0 && keepAlive) {
    clearInterval(keepAlive)
    keepAlive = undefined
  }
}
