// connect(): a client KtlsSocket over a new or given TCP connection.
import * as net from 'node:net'
import { KtlsSocket, type KtlsSocketOptions } from './socket'
import { contextFor } from './context'
import { validateOptions } from './options'
import { normalizeConnectArgs } from './internals'

export interface ConnectOptions
  extends Omit<KtlsSocketOptions, 'isServer' | 'server'>,
    Pick<
      net.TcpNetConnectOpts,
      'family' | 'hints' | 'lookup' | 'localAddress' | 'localPort' | 'noDelay' | 'keepAlive' | 'keepAliveInitialDelay' | 'autoSelectFamily'
    > {
  host?: string
  port?: number
  path?: string | null
  socket?: net.Socket
  timeout?: number
}

export function connect(options: ConnectOptions, secureConnectListener?: () => void): KtlsSocket
export function connect(port: number, host?: string, options?: ConnectOptions, listener?: () => void): KtlsSocket
export function connect(port: number, options?: ConnectOptions, listener?: () => void): KtlsSocket
export function connect(path: string, options?: ConnectOptions, listener?: () => void): KtlsSocket
export function connect(...args: unknown[]): KtlsSocket {
  const [normalized, listener] = normalizeConnectArgs(args)
  const options = normalized as ConnectOptions
  // Check options and build the context before any connection exists.
  validateOptions(options)
  warnIfIpServername(options.servername)
  const secureContext = contextFor(options)
  secureContext.clientContext()
  // net's own connect (lookup, family, hints, localAddress, errors as Node
  // reports them) on a socket of its own: nothing in Node may see that
  // socket's handle until the kernel holds both directions' keys.
  const raw = options.socket ?? net.connect(netOptions(options))
  // As tls.connect: `onread` serves a connection made here, not a socket given.
  const onread = options.socket ? undefined : options.onread
  const socket = new KtlsSocket(raw, { ...options, onread, secureContext, isServer: false })
  // As tls.connect: its errors are the caller's from the start.
  socket._releaseControl()
  if (listener) socket.once('secureConnect', listener)
  if (options.timeout) socket.setTimeout(options.timeout)
  return socket
}

/** What net.Socket#connect needs (https.Agent passes `path: null` for TCP). */
function netOptions(o: ConnectOptions): net.NetConnectOpts {
  if (o.path != null) return { path: o.path }
  // The signal is the KtlsSocket's (it destroys both sockets): the TCP one must not report it again.
  // Nor does it read for the user (`onread`): its bytes are ciphertext.
  const { port = 443, host = 'localhost', signal: _signal, onread: _onread, ...rest } = o
  return { ...(rest as net.TcpNetConnectOpts), port, host, path: undefined } as net.NetConnectOpts
}

/** Takes over an already connected net.Socket; resolves once secure. */
export function upgrade(socket: net.Socket, options: KtlsSocketOptions = {}): Promise<KtlsSocket> {
  const secure = new KtlsSocket(socket, options)
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err)
    secure.once('error', onError)
    if (options.isServer && options.server === undefined) {
      // No server to report to: a failed handshake rejects instead.
      secure.once('close', () => reject(secure.errored ?? new Error('socket closed during handshake')))
    }
    secure.once('secure', () => {
      secure.off('error', onError)
      // ktls's own API: once resolved, errors are the caller's, as with connect().
      secure._releaseControl()
      resolve(secure)
    })
  })
}

let ipServernameWarned = false

/** RFC 6066 has no SNI for addresses (none is sent); Node warns once, so do we. */
function warnIfIpServername(servername: unknown): void {
  if (ipServernameWarned || typeof servername !== 'string' || !net.isIP(servername)) return
  ipServernameWarned = true
  process.emitWarning(
    'Setting the TLS ServerName to an IP address is not permitted by RFC 6066. This will be ignored in a future version.',
    'DeprecationWarning',
    'DEP0123',
  )
}
