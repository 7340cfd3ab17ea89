// HTTPS on ktls sockets with Node's own HTTP machinery: a server that is an
// http.Server fed with KtlsSockets (as https.Server feeds it TLSSockets), an
// https.Agent whose connections are ktls connects, and a connector for undici.
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import type { Duplex } from 'node:stream'
import { KtlsSocket } from './socket'
import { connect, type ConnectOptions } from './connect'
import { contextFor, hasCredentials, type SecureContext } from './context'
import { validateOptions, validateServerOptions } from './options'
import { acceptSecure, type ServerOptions } from './server'
import { acceptHandles, shareTicketKeysInCluster } from './internals'
import { callable } from './callable'
import type { AcceptedHandle } from './socket'

export interface HttpsServerOptions extends ServerOptions, http.ServerOptions {}

type ConnectionListener = (this: http.Server, socket: Duplex) => void

/** net.Server's connection count; kept right so close() waits for ktls sockets. */
/**
 * https.Server's twin. 'connection' sees the TCP socket, 'secureConnection'
 * the KtlsSocket whose requests Node's HTTP parser then reads; listen, close,
 * closeIdleConnections, timeouts and 'request' are http.Server's own.
 */
class KtlsHttpsServer extends http.Server {
  private readonly tlsOptions: HttpsServerOptions
  private secureContext: SecureContext
  private readonly httpConnection: ConnectionListener

  constructor(options: HttpsServerOptions = {}, requestListener?: http.RequestListener) {
    super(options, requestListener)
    validateServerOptions(options)
    this.tlsOptions = options
    this.secureContext = httpContext(options)
    // http.Server reads requests from whatever its 'connection' listener gets:
    // it gets the KtlsSocket after the handshake instead of the TCP socket.
    this.httpConnection = this.listeners('connection')[0] as ConnectionListener
    this.removeListener('connection', this.httpConnection)
    this.on('connection', (raw: net.Socket) => this.upgrade(raw))
    acceptHandles(this, (handle) => this.upgrade(handle))
    // As https.Server: handshake failures are client errors too.
    this.on('tlsClientError', (err: Error, socket: KtlsSocket) => {
      if (!this.emit('clientError', err, socket)) socket.destroy()
    })
  }

  /** Replaces the context for new connections, as tls.Server#setSecureContext. */
  setSecureContext(options: HttpsServerOptions): void {
    this.secureContext = httpContext(options)
  }

  /** The 48 bytes session tickets are sealed with, as https.Server#getTicketKeys. */
  getTicketKeys(): Buffer {
    return this.secureContext.getTicketKeys()
  }

  /** As https.Server#setTicketKeys: tickets sealed before no longer resume. */
  setTicketKeys(keys: Buffer | ArrayBufferView): void {
    this.secureContext.setTicketKeys(keys)
  }

  private upgrade(raw: net.Socket | AcceptedHandle): void {
    const socket = acceptSecure(this, raw, this.tlsOptions, this.secureContext)
    socket?.once('secure', () => {
      this.httpConnection.call(this, socket)
      this.emit('secureConnection', socket)
    })
  }
}

// Cluster workers listening together share their ticket keys, as https.Server's do.
shareTicketKeysInCluster(KtlsHttpsServer.prototype, {
  get: (server) => (server as KtlsHttpsServer).getTicketKeys(),
  set: (server, keys) => (server as KtlsHttpsServer).setTicketKeys(keys),
})

/**
 * Offers HTTP/1.1 by ALPN unless told otherwise, as https.createServer does;
 * built now, so a bad key or certificate throws here.
 */
function httpContext(options: HttpsServerOptions): SecureContext {
  const context = contextFor({ ALPNProtocols: ['http/1.1'], ...options })
  if (hasCredentials(context.options)) context.serverContext(options)
  return context
}

export function createHttpsServer(requestListener?: http.RequestListener): HttpsServer
export function createHttpsServer(options: HttpsServerOptions, requestListener?: http.RequestListener): HttpsServer
export function createHttpsServer(
  options?: HttpsServerOptions | http.RequestListener,
  requestListener?: http.RequestListener,
): HttpsServer {
  if (typeof options === 'function') return new KtlsHttpsServer({}, options)
  return new KtlsHttpsServer(options ?? {}, requestListener)
}

/** https.Server's twin; like it, callable without `new`. */
export const HttpsServer = callable(KtlsHttpsServer)
export type HttpsServer = KtlsHttpsServer

export type AgentOptions = https.AgentOptions & Pick<ConnectOptions, 'ktls' | 'secureContext' | 'handshakeTimeout'>

/**
 * An https.Agent whose sockets are KtlsSockets: https.request, https.get and
 * anything taking an `agent` keep their pooling and keep-alive.
 */
class KtlsAgent extends https.Agent {
  /** One rustls client configuration per pool name (origin + TLS options). */
  private readonly contexts = new Map<string, SecureContext>()

  constructor(options?: AgentOptions) {
    super(options)
  }

  override createConnection(options: https.RequestOptions & AgentOptions & { _agentKey?: string }): KtlsSocket {
    const connectOpts = connectOptions(options)
    connectOpts.secureContext ??= this.contextFor(options._agentKey, connectOpts)
    const socket = connect(connectOpts)
    if (options.noDelay !== false) socket.setNoDelay(true)
    if (options.keepAlive) socket.setKeepAlive(true, options.keepAliveInitialDelay)
    return socket
  }

  private contextFor(key: string | undefined, options: ConnectOptions): SecureContext {
    let context = key === undefined ? undefined : this.contexts.get(key)
    if (!context) {
      context = contextFor(options)
      if (key !== undefined) this.contexts.set(key, context)
      if (this.contexts.size > MAX_CACHED_CONTEXTS) this.contexts.delete(this.contexts.keys().next().value!)
    }
    return context
  }
}

/** https.Agent's twin; like it, callable without `new`. */
export const Agent = callable(KtlsAgent)
export type Agent = KtlsAgent

const MAX_CACHED_CONTEXTS = 100

/**
 * The request's options minus HTTP's own: `path` is the request path here
 * (null when unset), not a socket path; `socketPath` is the socket path.
 */
function connectOptions(o: https.RequestOptions & AgentOptions): ConnectOptions {
  const out: ConnectOptions = {
    host: o.host ?? o.hostname ?? 'localhost',
    port: Number(o.port ?? 443),
    servername: o.servername,
    ...tlsOptions(o),
  }
  if (o.socketPath) out.path = o.socketPath
  if (o.family) out.family = o.family
  if (o.localAddress) out.localAddress = o.localAddress
  if (o.timeout) out.timeout = o.timeout
  return out
}

const TLS_OPTION_NAMES = [
  'ca',
  'cert',
  'key',
  'ALPNProtocols',
  'minVersion',
  'maxVersion',
  'ciphers',
  'rejectUnauthorized',
  'checkServerIdentity',
  'secureContext',
  'ktls',
  'handshakeTimeout',
] as const

function tlsOptions(o: object): Partial<ConnectOptions> {
  const out: Record<string, unknown> = {}
  for (const name of TLS_OPTION_NAMES) {
    const value = (o as Record<string, unknown>)[name]
    if (value !== undefined && value !== null) out[name] = value
  }
  return out as Partial<ConnectOptions>
}

/** What undici passes to a `connect` function (undici's buildConnector.Options). */
export interface UndiciConnectParams {
  hostname: string
  host?: string
  protocol: string
  port: string | number
  servername?: string | null
  localAddress?: string | null
  httpSocket?: net.Socket
}

export type UndiciConnectCallback = (err: Error | null, socket: Duplex | null) => void

export interface UndiciConnectorOptions extends Omit<ConnectOptions, 'host' | 'port' | 'path' | 'socket'> {
  /** Milliseconds until connect plus handshake give up (undici's default: 10 s). */
  timeout?: number
  /** TCP keep-alive on the connection, as undici's own connector (default true, 60 s). */
  keepAlive?: boolean
  keepAliveInitialDelay?: number
}

/**
 * A `connect` for `new undici.Agent({ connect })`: https origins get a
 * KtlsSocket, handed over after 'secureConnect'; http origins a net.Socket.
 */
export function undiciConnector(options: UndiciConnectorOptions = {}) {
  const { timeout = 10_000, keepAlive = true, keepAliveInitialDelay = 60_000, ...tls } = options
  validateOptions(tls)
  // One rustls configuration for every connection this connector makes.
  const secureContext = contextFor({ ALPNProtocols: ['http/1.1'], ...tls })
  secureContext.clientContext()
  return function connectForUndici(params: UndiciConnectParams, callback: UndiciConnectCallback): Duplex {
    const secure = params.protocol === 'https:'
    const port = Number(params.port) || (secure ? 443 : 80)
    const socket: net.Socket | KtlsSocket = secure
      ? connect({
          ...tls,
          secureContext,
          host: params.hostname,
          port,
          servername: params.servername || tls.servername || undefined,
          localAddress: params.localAddress ?? undefined,
          socket: params.httpSocket,
        })
      : net.connect({ host: params.hostname, port, localAddress: params.localAddress ?? undefined })
    socket.setNoDelay(true)
    if (keepAlive) socket.setKeepAlive(true, keepAliveInitialDelay)
    settleOnce(socket, secure ? 'secureConnect' : 'connect', timeout, callback)
    return socket
  }
}

function settleOnce(socket: net.Socket | KtlsSocket, ready: string, timeout: number, callback: UndiciConnectCallback): void {
  let pending: UndiciConnectCallback | undefined = callback
  const timer = timeout > 0 ? setTimeout(() => socket.destroy(connectTimeout(timeout)), timeout) : undefined
  timer?.unref()
  const settle = (err: Error | null) => {
    clearTimeout(timer)
    const cb = pending
    pending = undefined
    cb?.(err, err ? null : socket)
  }
  socket.once(ready, () => settle(null))
  // Stays on, as in undici's own connector: a late error is undici's to see.
  socket.on('error', settle)
}

/** undici's own code for this, so its retry logic recognises it. */
function connectTimeout(ms: number): Error {
  return Object.assign(new Error(`Connect Timeout Error (timeout: ${ms}ms)`), { code: 'UND_ERR_CONNECT_TIMEOUT' })
}
