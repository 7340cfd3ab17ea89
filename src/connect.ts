// connect(): a client KtlsSocket over a new or given TCP connection.
import * as net from 'node:net'
import { KtlsSocket, type KtlsSocketOptions } from './socket'
import { contextFor } from './context'
import { validateOptions } from './options'

export interface ConnectOptions extends Omit<KtlsSocketOptions, 'isServer' | 'server'> {
  host?: string
  port?: number
  path?: string
  socket?: net.Socket
  family?: number
  localAddress?: string
  timeout?: number
}

export function connect(options: ConnectOptions, secureConnectListener?: () => void): KtlsSocket
export function connect(port: number, host?: string, options?: ConnectOptions, listener?: () => void): KtlsSocket
export function connect(...args: unknown[]): KtlsSocket {
  const { options, listener } = normalizeArgs(args)
  // Check options and build the context before any connection exists.
  validateOptions(options)
  const secureContext = contextFor(options)
  secureContext.clientContext()
  const raw = options.socket ?? net.connect(rawOptions(options))
  const socket = new KtlsSocket(raw, { ...options, secureContext, host: options.host ?? 'localhost', isServer: false })
  if (listener) socket.once('secureConnect', listener)
  if (options.timeout) socket.setTimeout(options.timeout)
  return socket
}

function rawOptions(o: ConnectOptions): net.NetConnectOpts {
  if (o.path != null) return { path: o.path } // https.Agent passes path: null
  return { host: o.host ?? 'localhost', port: o.port ?? 443, family: o.family, localAddress: o.localAddress }
}

function normalizeArgs(args: unknown[]): { options: ConnectOptions; listener?: () => void } {
  const listener = typeof args[args.length - 1] === 'function' ? (args.pop() as () => void) : undefined
  if (typeof args[0] === 'object' && args[0] !== null) return { options: args[0] as ConnectOptions, listener }
  const [port, host, extra] = args as [number, string | undefined, ConnectOptions | undefined]
  return { options: { ...extra, port: Number(port), host: typeof host === 'string' ? host : extra?.host }, listener }
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
      resolve(secure)
    })
  })
}
