// createServer: a net.Server whose connections become KtlsSockets.
import * as net from 'node:net'
import { KtlsSocket, isAcceptedHandle, type AcceptedHandle, type KtlsSocketOptions, type SNICallback } from './socket'
import { acceptHandles, countAsConnection, shareTicketKeysInCluster } from './internals'
import { callable } from './callable'
import { SecureContext, checkTicketKeys, contextFor, createSecureContext, hasCredentials, type SecureContextOptions } from './context'
import { KtlsError } from './errors'
import { validateServerOptions } from './options'

export interface ServerOptions
  extends Omit<KtlsSocketOptions, 'isServer' | 'server'>,
    Pick<net.ServerOpts, 'noDelay' | 'keepAlive' | 'keepAliveInitialDelay' | 'highWaterMark'> {
  pauseOnConnect?: boolean
}

class TlsServer extends net.Server {
  private tlsOptions!: ServerOptions
  private secureContext!: SecureContext
  /** addContext()'s names (as patterns) and contexts; the last added wins. */
  private namedContexts!: Array<[RegExp, SecureContext]>

  constructor(options: ServerOptions = {}, secureConnectionListener?: (socket: KtlsSocket) => void) {
    // What net.Server would make of these stays the user's to read; the TCP
    // sockets it makes are paused and half-open all the same (acceptHandles).
    super(options)
    TlsServer.setUp(this, options, secureConnectionListener)
  }

  /**
   * What makes a net.Server a TLS server: the constructor's, and `Server.call(server)`'s.
   * @internal
   */
  static setUp(server: TlsServer, options: ServerOptions, secureConnectionListener?: (socket: KtlsSocket) => void): void {
    validateServerOptions(options)
    server.tlsOptions = options
    server.namedContexts = []
    server.secureContext = contextFor(options)
    // Throws now on a bad key or cert (a benchmark-only raw server has none).
    if (hasCredentials(server.secureContext.options)) server.secureContext.serverContext(options)
    server.on('connection', (raw: net.Socket) => server.upgrade(raw))
    acceptHandles(server, (handle) => server.upgrade(handle))
    if (secureConnectionListener) server.on('secureConnection', secureConnectionListener)
  }

  /**
   * With `events.captureRejections`, an async 'secureConnection' listener
   * that rejects destroys that socket with the error, as tls.Server does.
   */
  [Symbol.for('nodejs.rejection')](err: Error, event: string, ...args: unknown[]): void {
    if (event === 'secureConnection') {
      ;(args[0] as KtlsSocket).destroy(err)
      return
    }
    const base = net.Server.prototype as unknown as Record<symbol, (...a: unknown[]) => void>
    base[Symbol.for('nodejs.rejection')].call(this, err, event, ...args)
  }

  /**
   * Serves `context` to clients asking for `hostname` ('*' matches one
   * label: '*.example.com'), as tls.Server#addContext. Without an
   * SNICallback of the user's, later additions win over earlier ones.
   */
  addContext(hostname: string, context: SecureContext | SecureContextOptions): void {
    if (!hostname) throw new KtlsError('ERR_TLS_REQUIRED_SERVER_NAME', '"servername" is required parameter for Server.addContext')
    const pattern = hostname.replace(/([.^$+?\-\\[\]{}])/g, '\\$1').replaceAll('*', '[^.]*')
    const secure = context instanceof SecureContext ? context : createSecureContext(context)
    this.namedContexts.push([new RegExp(`^${pattern}$`, 'i'), secure])
  }

  /** The SNICallback a new connection gets: the user's, else addContext()'s names, else none. */
  private sniCallback(): SNICallback | undefined {
    if (this.tlsOptions.SNICallback) return this.tlsOptions.SNICallback
    if (this.namedContexts.length === 0) return undefined
    return (servername, callback) => {
      for (let i = this.namedContexts.length - 1; i >= 0; i--) {
        const [pattern, context] = this.namedContexts[i]
        if (pattern.test(servername)) return callback(null, context)
      }
      callback(null)
    }
  }

  /** Replaces the context for new connections, as tls.Server#setSecureContext. */
  setSecureContext(options: ServerOptions): void {
    this.secureContext = contextFor(options)
  }

  /** The 48 bytes session tickets are sealed with, as tls.Server#getTicketKeys. */
  getTicketKeys(): Buffer {
    return this.secureContext.getTicketKeys()
  }

  /**
   * Seals later session tickets with `keys` (48 bytes), as
   * tls.Server#setTicketKeys: servers sharing keys (cluster workers)
   * resume each other's sessions; tickets sealed before no longer resume.
   */
  setTicketKeys(keys: Buffer | ArrayBufferView): void {
    checkTicketKeys(keys, 'keys')
    this.secureContext.setTicketKeys(keys)
  }

  private upgrade(raw: net.Socket | AcceptedHandle): void {
    const socket = acceptSecure(this, raw, { ...this.tlsOptions, SNICallback: this.sniCallback() }, this.secureContext)
    socket?.once('secure', () => this.emit('secureConnection', socket))
  }
}

// Cluster workers listening together share their ticket keys, as node:tls's servers do.
shareTicketKeysInCluster(TlsServer.prototype, {
  get: (server) => (server as TlsServer).getTicketKeys(),
  set: (server, keys) => (server as TlsServer).setTicketKeys(keys),
})

/**
 * The server side of a connection `server` accepted: a KtlsSocket that
 * reports handshake failures to `server` ('tlsClientError'). A connection
 * taken straight from libuv counts in the server's connections as Node's
 * own sockets do; one that came through 'connection' stays tied to that
 * TCP socket, which Node counts already.
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
  // Before the server's own 'secure' listener, as node:tls's onServerSocketSecure.
  socket.once('secure', () => socket._releaseControl())
  if (accepted) countAsConnection(server, socket)
  // As net.Server's pauseOnConnect: the application data waits for resume().
  if (options.pauseOnConnect) socket.pause()
  return socket
}

export function createServer(
  options: ServerOptions = {},
  secureConnectionListener?: (socket: KtlsSocket) => void,
): Server {
  return new TlsServer(options, secureConnectionListener)
}

/**
 * `Server.call(server, options, listener)`, as node:https's Server and
 * util.inherits() subclasses call tls.Server: `server` (a net.Server made
 * elsewhere) becomes a TLS server in place. One whose prototype is not
 * ktls's (node:https's Server inherits node:tls's) gets ktls's methods as
 * its own, so that what it calls is ktls's.
 */
function adoptServer(thisArg: unknown, args: unknown[]): TlsServer | undefined {
  if (!(thisArg instanceof net.Server)) return undefined
  const [options = {}, listener] = args as [ServerOptions | undefined, ((socket: KtlsSocket) => void) | undefined]
  ;(net.Server as unknown as (this: net.Server, options: object) => void).call(thisArg, options)
  if (!(thisArg instanceof TlsServer)) {
    const methods = TlsServer.prototype as unknown as Record<string | symbol, unknown>
    for (const key of Reflect.ownKeys(methods)) {
      if (key !== 'constructor') Object.defineProperty(thisArg, key, { value: methods[key], writable: true, configurable: true })
    }
  }
  TlsServer.setUp(thisArg as TlsServer, options, listener)
  return thisArg as TlsServer
}

/** tls.Server's twin; like it, callable without `new`, and on a server of another's making. */
export const Server = callable(TlsServer, adoptServer)
export type Server = TlsServer
