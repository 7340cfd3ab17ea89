// createServer: a net.Server whose connections become KtlsSockets.
import * as net from 'node:net'
import { KtlsSocket, type KtlsSocketOptions } from './socket'
import { contextFor, type SecureContext } from './context'
import { validateOptions } from './options'

export interface ServerOptions extends Omit<KtlsSocketOptions, 'isServer' | 'server'> {
  pauseOnConnect?: boolean
}

export class Server extends net.Server {
  private readonly tlsOptions: ServerOptions
  private secureContext: SecureContext

  constructor(options: ServerOptions = {}, secureConnectionListener?: (socket: KtlsSocket) => void) {
    // Paused so libuv reads no handshake byte: the descriptor moves to rustls.
    super({ pauseOnConnect: true, allowHalfOpen: true })
    validateOptions(options)
    this.tlsOptions = options
    this.secureContext = contextFor(options)
    // Throws now on a bad key or cert (a benchmark-only raw server has none).
    if (options.unencryptedBenchmarkOnly !== true) this.secureContext.serverContext()
    this.on('connection', (raw: net.Socket) => this.upgrade(raw))
    if (secureConnectionListener) this.on('secureConnection', secureConnectionListener)
  }

  /** Replaces the context for new connections, as tls.Server#setSecureContext. */
  setSecureContext(options: ServerOptions): void {
    this.secureContext = contextFor(options)
  }

  private upgrade(raw: net.Socket): void {
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
  raw: net.Socket,
  options: ServerOptions,
  secureContext: SecureContext,
): KtlsSocket | undefined {
  if (raw.destroyed) return undefined
  const socket = new KtlsSocket(raw, { ...options, secureContext, isServer: true, server })
  if ((raw as unknown as { _server?: unknown })._server === server) countUntilClosed(server, socket)
  return socket
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
