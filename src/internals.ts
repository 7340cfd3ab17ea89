// Every use of Node's internals, in one module: libuv's TCP handle behind a
// net.Socket, its `onread` callback, the stream state it reads, and the
// listen handle's `onconnection`. Checked on Node 20, 22 and 24
// (__test__/unit/internals.spec.mjs); nothing else in src/ touches them.
import * as net from 'node:net'

/** libuv's TCP (or pipe) handle as JavaScript sees it: tcp_wrap's TCP, a StreamBase. */
export interface StreamHandle {
  readonly fd: number
  /** Node's own flag: whether the socket wants libuv to read. */
  reading?: boolean
  onread: (this: StreamHandle, arrayBuffer?: ArrayBuffer) => unknown
  readonly bytesRead: number
  readonly bytesWritten: number
  /** Bytes libuv still has to write. */
  readonly writeQueueSize?: number
  readStart(): number
  readStop(): number
  /** uv_tcp_open: (re)sets libuv's readable and writable flags. */
  open?(fd: number): number
  getpeername?(out: object): number
  getsockname?(out: object): number
  setNoDelay?(on: boolean): number
  setKeepAlive?(on: boolean, delaySecs: number): number
  ref?(): void
  unref?(): void
  close(callback?: () => void): void
}

/** The fields of net.Socket this package reads or sets. */
interface SocketFields {
  _handle: StreamHandle | null
  _peername?: object | null
  _sockname?: object | null
  server?: net.Server | null
  _server?: net.Server | null
}

interface ServerFields {
  _handle?: ListenHandle | null
  _connections: number
  pauseOnConnect: boolean
  allowHalfOpen: boolean
  noDelay?: boolean
  keepAlive?: boolean
  keepAliveInitialDelay?: number
}

interface ListenHandle {
  onconnection(this: ListenHandle, err: number, client?: StreamHandle): void
}

const fields = (socket: net.Socket) => socket as unknown as SocketFields

// What libuv's read callback reported; onread reads it from here.
const streamWrap = (process as unknown as { binding(name: string): unknown }).binding('stream_wrap') as {
  streamBaseState: Int32Array
  kReadBytesOrError: number
}
// libuv's UV_EOF (-4095): the end of the stream, not an error.
const UV_EOF = -4095

/** The handle a socket reads and writes through, if any. */
export function handleOf(socket: net.Socket): StreamHandle | null {
  return fields(socket)._handle
}

/**
 * Takes the handle out of `socket` so that nothing in Node can read or write
 * through it (http's parser and http2 consume `_handle` directly); the
 * socket keeps owning it for address lookups and callbacks.
 */
export function detachHandle(socket: net.Socket): StreamHandle | null {
  const handle = fields(socket)._handle
  fields(socket)._handle = null
  return handle
}

/** Puts `handle` (back) into `socket`: from now on libuv carries its data. */
export function attachHandle(socket: net.Socket, handle: StreamHandle): void {
  fields(socket)._handle = handle
}

/**
 * Moves the handle of `from` (a connected net.Socket) to `to`: its reads,
 * write completions and close are reported to `to`. `from` is left without a
 * handle, so it can neither read nor write the connection again.
 */
export function moveHandle(from: net.Socket, to: net.Socket): StreamHandle | null {
  const handle = detachHandle(from)
  if (!handle) return null
  ;(handle as unknown as Record<symbol, unknown>)[ownerSymbol(handle)] = to
  // Not reading, in libuv and in Node's own flag, which net.Socket#_read trusts.
  handle.readStop()
  handle.reading = false
  return handle
}

let owner: symbol | undefined

/** Node's `owner_symbol`: how a handle's callbacks find their socket. */
function ownerSymbol(handle: StreamHandle): symbol {
  owner ??= Object.getOwnPropertySymbols(handle).find((s) => s.description === 'owner_symbol')
  if (!owner) throw new Error('ktls: this Node has no owner_symbol on its handles')
  return owner
}

/**
 * Sees every read error of `handle` before Node does: `onReadError(errno)`
 * returns true when it dealt with it. On a kTLS socket, libuv's `read()`
 * fails with `EIO` when the next record is not application data (a ticket,
 * a key update, an alert) and leaves the record in place, and with the
 * kernel's own errors (`EBADMSG` for a record that fails to authenticate).
 */
export function interceptReadErrors(handle: StreamHandle, onReadError: (errno: number) => boolean): void {
  const nodeOnRead = handle.onread
  handle.onread = function (arrayBuffer) {
    const nread = streamWrap.streamBaseState[streamWrap.kReadBytesOrError]
    if (nread < 0 && nread !== UV_EOF && onReadError(-nread)) return undefined
    return nodeOnRead.call(this, arrayBuffer)
  }
}

/**
 * After a read error libuv clears the handle's readable and writable flags
 * (uv__read), so it would refuse to read or write again. uv_tcp_open on the
 * same descriptor sets them back, once libuv is not watching it: reading is
 * stopped first, and a write still in flight makes this fail (`false`).
 */
export function reopenAfterReadError(handle: StreamHandle): boolean {
  handle.readStop()
  return typeof handle.open === 'function' && handle.open(handle.fd) === 0
}

/**
 * net.Socket's `onread` option as its constructor kept it (Node's kBuffer,
 * kBufferGen, kBufferCb): reads land in the user's buffer and go to the
 * user's callback instead of 'data'.
 */
export interface UserReadBuffer {
  /** The buffer the next read fills. */
  readonly buffer: Uint8Array
  /** Hands `nread` bytes of `buffer` to the callback (false: stop reading), then takes a generator's next buffer. */
  deliver(nread: number): boolean
}

let readSymbols: { buffer: symbol; callback: symbol; generator: symbol } | null | undefined

/** The `onread` of `socket`, if it was given one. */
export function userReadBuffer(socket: net.Socket): UserReadBuffer | undefined {
  if (readSymbols === undefined) {
    const own = Object.getOwnPropertySymbols(socket)
    const find = (name: string) => own.find((s) => s.description === name)
    const [buffer, callback, generator] = [find('kBuffer'), find('kBufferCb'), find('kBufferGen')]
    readSymbols = buffer && callback && generator ? { buffer, callback, generator } : null
  }
  const sym = readSymbols
  const state = socket as unknown as Record<symbol, unknown>
  if (!sym || !state[sym.buffer]) return undefined
  const generator = state[sym.generator] as (() => unknown) | null
  // A generator's first buffer is made when reading starts, as net.Socket's.
  if (state[sym.buffer] === true) {
    const first = generator?.()
    if (!(first instanceof Uint8Array)) return undefined
    state[sym.buffer] = first
  }
  return {
    get buffer() {
      return state[sym.buffer] as Uint8Array
    },
    deliver(nread) {
      const callback = state[sym.callback] as (nread: number, buffer: Uint8Array) => unknown
      const more = callback.call(socket, nread, state[sym.buffer] as Uint8Array) !== false
      const next = generator?.()
      if (next instanceof Uint8Array) state[sym.buffer] = next
      return more
    },
  }
}

/** libuv reads straight into the `onread` buffer of `socket`, as net.Socket sets its handle up. */
export function readIntoUserBuffer(socket: net.Socket, handle: StreamHandle): void {
  const user = userReadBuffer(socket)
  if (user) (handle as unknown as { useUserBuffer(buffer: Uint8Array): void }).useUserBuffer(user.buffer)
}

/** Bytes queued in libuv's handle of `socket` and not yet written. */
export function pendingHandleWrites(socket: net.Socket): number {
  return fields(socket)._handle?.writeQueueSize ?? 0
}

/**
 * tls.TLSSocket's `_parent`: net.Socket's `_unrefTimer` and `_destroy` walk it,
 * so the wrapped socket's own idle timeout starts over with the TLS socket's
 * traffic and is cleared at its end, as node:tls's.
 */
export function setParentSocket(socket: net.Socket, parent: net.Socket): void {
  ;(socket as unknown as { _parent: net.Socket | null })._parent = parent
}

/** net.Socket's `_unrefTimer`: an idle timeout (setTimeout) starts over on activity. */
export function touchTimer(socket: net.Socket): void {
  ;(socket as unknown as { _unrefTimer(): void })._unrefTimer()
}

/**
 * Makes the address lookups of `proto`'s sockets (remoteAddress, localPort,
 * address(), ...) work while libuv's handle is detached from `_handle`, by
 * asking `hidden(socket)` as net.Socket would ask `_handle`: on first use.
 */
export function lookUpAddressesThrough(proto: object, hidden: (socket: net.Socket) => StreamHandle | undefined): void {
  const base = net.Socket.prototype as unknown as Record<string, (this: net.Socket) => object>
  const lookups = [
    ['_getpeername', '_peername', 'getpeername'],
    ['_getsockname', '_sockname', 'getsockname'],
  ] as const
  for (const [method, cache, lookup] of lookups) {
    const value = function (this: net.Socket): object {
      const handle = hidden(this)
      if (!handle) return base[method].call(this)
      const f = fields(this)
      if (!f[cache]) {
        const out = {}
        if (handle[lookup]?.(out) === 0) f[cache] = out
      }
      return f[cache] ?? {}
    }
    Object.defineProperty(proto, method, { value, writable: true, configurable: true })
  }
}

/** A connection `server` accepted counts in its connections until the socket closes, as in net.Server. */
export function countAsConnection(server: net.Server, socket: net.Socket): void {
  ;(server as unknown as ServerFields)._connections++
  fields(socket).server = server
  fields(socket)._server = server
}

/** net's own argument rules for connect(port[, host][, options]) and connect(path[, options]). */
export function normalizeConnectArgs(args: unknown[]): [Record<string, unknown>, ((...a: unknown[]) => void)?] {
  const normalize = (net as unknown as { _normalizeArgs(args: unknown[]): [Record<string, unknown>, unknown] })
    ._normalizeArgs
  const [options, callback] = normalize(args)
  // As node:tls: an options object after port/host/path adds the TLS options.
  const extra = [args[1], args[2]].find((a) => a !== null && typeof a === 'object')
  if (extra) Object.assign(options, extra)
  return [options, typeof callback === 'function' ? (callback as (...a: unknown[]) => void) : undefined]
}

/**
 * Hands each TCP connection `server` accepts to `accept` as libuv's handle,
 * skipping the net.Socket Node would build first. Node's own path still
 * runs when someone else listens to 'connection' (they get the TCP socket,
 * as with node:tls), for maxConnections drops, accept errors and pipe
 * servers. Cluster workers deliver connections through the same hook.
 */
export function acceptHandles(server: net.Server, accept: (handle: StreamHandle) => void): void {
  const internals = server as unknown as ServerFields
  server.on('listening', () => {
    const listenHandle = internals._handle
    if (!listenHandle || typeof listenHandle.onconnection !== 'function') return
    const nodeOnConnection = listenHandle.onconnection
    listenHandle.onconnection = function (err, client) {
      const full = server.maxConnections > 0 && internals._connections >= server.maxConnections
      const tcp = client !== undefined && typeof client.getpeername === 'function'
      if (err || !tcp || full || server.listenerCount('connection') > 1) {
        // net.Server makes the socket: paused so it reads no handshake byte,
        // half-open so the TLS socket decides; the user's values read the same.
        const user = { pauseOnConnect: internals.pauseOnConnect, allowHalfOpen: internals.allowHalfOpen }
        Object.assign(internals, { pauseOnConnect: true, allowHalfOpen: true })
        try {
          return nodeOnConnection.call(this, err, client)
        } finally {
          Object.assign(internals, user)
        }
      }
      if (internals.noDelay) client.setNoDelay?.(true)
      // net.Server keeps keepAliveInitialDelay in seconds already.
      if (internals.keepAlive) client.setKeepAlive?.(true, internals.keepAliveInitialDelay ?? 0)
      accept(client)
    }
  })
}

let lastWriteQueueSize: symbol | null | undefined

/**
 * An idle timeout as node:tls times out: net.Socket puts 'timeout' off for
 * as long as its libuv handle's write queue keeps shrinking, so a peer that
 * reads a few bytes a minute holds an offloaded connection for ever; node:tls's
 * handle reports no queue, so a write in progress puts it off once, no more.
 * Installs that rule as `proto`'s `_onTimeout`.
 */
export function timeOutAsTlsSocketsDo(proto: object): void {
  Object.defineProperty(proto, '_onTimeout', {
    configurable: true,
    writable: true,
    value: function onTimeout(this: net.Socket) {
      const self = this as unknown as Record<symbol, number> & { _handle: unknown; _unrefTimer(): void }
      // net.js's kLastWriteQueueSize: the size of the last write libuv had to queue.
      if (lastWriteQueueSize === undefined) {
        lastWriteQueueSize = Object.getOwnPropertySymbols(this).find((s) => s.description === 'lastWriteQueueSize') ?? null
      }
      if (lastWriteQueueSize && self[lastWriteQueueSize] > 0 && self._handle) {
        self[lastWriteQueueSize] = 0
        self._unrefTimer()
        return
      }
      this.emit('timeout')
    },
  })
}

/**
 * cluster's hooks for servers that listen together (lib/internal/cluster):
 * the first worker's `_getServerData()` goes to every later one's
 * `_setServerData()`. node:tls's servers share their ticket keys that way,
 * so workers resume each other's sessions with no `ticketKeys` given.
 */
export function shareTicketKeysInCluster(proto: object, keys: { get(server: net.Server): Buffer; set(server: net.Server, keys: Buffer): void }): void {
  Object.defineProperty(proto, '_getServerData', {
    configurable: true,
    writable: true,
    value(this: net.Server) {
      return { ticketKeys: keys.get(this).toString('hex') }
    },
  })
  Object.defineProperty(proto, '_setServerData', {
    configurable: true,
    writable: true,
    value(this: net.Server, data: { ticketKeys?: string } | null) {
      if (typeof data?.ticketKeys === 'string') keys.set(this, Buffer.from(data.ticketKeys, 'hex'))
    },
  })
}
