// createServer: a net.Server whose connections become KtlsSockets.
import * as net from 'node:net'
import { KtlsSocket, isAcceptedHandle, type AcceptedHandle, type KtlsSocketOptions } from './socket'
import { contextFor, type SecureContext } from './context'
import { validateOptions } from './options'

export interface ServerOptions
  extends Omit<KtlsSocketOptions, 'isServer' | 'server'>,
    Pick<net.ServerOpts, 'noDelay' | 'keepAlive' | 'keepAliveInitialDelay' | 'highWaterMark'> {
  pauseOnConnect?: boolean
}

export class Server extends net.Server {
  private readonly tlsOptions: ServerOptions
  private secureContext: SecureContext

  constructor(options: ServerOptions = {}, secureConnectionListener?: (socket: KtlsSocket) => void) {
    // Paused so libuv reads no handshake byte: the descriptor moves to rustls.
    super({ ...options, pauseOnConnect: true, allowHalfOpen: true })
    validateOptions(options)
    this.tlsOptions = options
    this.secureContext = contextFor(options)
    // Throws now on a bad key or cert (a benchmark-only raw server has none).
    if (options.unencryptedBenchmarkOnly !== true) this.secureContext.serverContext()
    this.on('connection', (raw: net.Socket) => this.upgrade(raw))
    acceptHandles(this, (handle) => this.upgrade(handle))
    if (secureConnectionListener) this.on('secureConnection', secureConnectionListener)
  }

  /** Replaces the context for new connections, as tls.Server#setSecureContext. */
  setSecureContext(options: ServerOptions): void {
    this.secureContext = contextFor(options)
  }

  private upgrade(raw: net.Socket | AcceptedHandle): void {
    const socket = acceptSecure(this, raw, this.tlsOptions, this.secureContext)
    socket?.once('secure', () => this.emit('secureConnection', socket))
  }
}

/**
 * The server side of a connection `server` accepted: a KtlsSocket that
 * reports handshake failures to `server` ('tlsClientError') and stands in
 * for the TCP socket in the server's connection count.
 */
export function acceptSecure(
  server: net.Server,
  raw: net.Socket | AcceptedHandle,
  options: ServerOptions,
  secureContext: SecureContext,
): KtlsSocket | undefined {
  const accepted = isAcceptedHandle(raw)
  if (!accepted && raw.destroyed) return undefined
  const socket = new KtlsSocket(raw, { ...options, secureContext, isServer: true, server })
  if (accepted || (raw as unknown as { _server?: unknown })._server === server) countUntilClosed(server, socket)
  return socket
}

interface ListenHandle {
  onconnection(this: ListenHandle, err: number, client?: AcceptedHandle): void
}

interface ServerInternals {
  _handle?: ListenHandle | null
  _connections: number
  noDelay?: boolean
  keepAlive?: boolean
  keepAliveInitialDelay?: number
}

interface SocketOptionHandle extends AcceptedHandle {
  setNoDelay?(on: boolean): number
  setKeepAlive?(on: boolean, delaySecs: number): number
}

/**
 * Hands each TCP connection `server` accepts to `accept` as libuv's handle,
 * skipping the net.Socket that Node would build only for ktls to take its
 * descriptor and destroy it (a fifth of the server's CPU per handshake).
 * Node's own path still runs when someone else listens to 'connection'
 * (they get the TCP socket, as with node:tls), for maxConnections drops,
 * accept errors and non-TCP (pipe) servers. Works in cluster workers too:
 * they deliver connections through the same `onconnection`.
 */
export function acceptHandles(server: net.Server, accept: (handle: AcceptedHandle) => void): void {
  const internals = server as unknown as ServerInternals
  server.on('listening', () => {
    const listenHandle = internals._handle
    if (!listenHandle || typeof listenHandle.onconnection !== 'function') return
    const nodeOnConnection = listenHandle.onconnection
    listenHandle.onconnection = function (err, client) {
      const full = server.maxConnections > 0 && internals._connections >= server.maxConnections
      const tcp = client !== undefined && typeof client.getpeername === 'function'
      if (err || !tcp || full || server.listenerCount('connection') > 1) {
        return nodeOnConnection.call(this, err, client)
      }
      applyServerSocketOptions(internals, client)
      accept(client)
    }
  })
}

/** What net.Server's `noDelay` and `keepAlive` options do to each accepted socket. */
function applyServerSocketOptions(server: ServerInternals, client: SocketOptionHandle): void {
  if (server.noDelay) client.setNoDelay?.(true)
  if (server.keepAlive) client.setKeepAlive?.(true, server.keepAliveInitialDelay ?? 0)
}

interface ConnectionCount {
  _connections: number
  _emitCloseIfDrained(): void
}

/**
 * The TCP socket a server accepted is gone once ktls owns its descriptor;
 * the KtlsSocket takes its place in net.Server's count, so close() and
 * getConnections() see it.
 */
function countUntilClosed(server: net.Server, socket: KtlsSocket): void {
  const count = server as unknown as ConnectionCount
  count._connections++
  socket.once('close', () => {
    count._connections--
    count._emitCloseIfDrained()
  })
}

export function createServer(
  options: ServerOptions = {},
  secureConnectionListener?: (socket: KtlsSocket) => void,
): Server {
  return new Server(options, secureConnectionListener)
}
