// Where the native binding cannot load (macOS, Windows, a Linux without a
// prebuilt binary), ktls is node:tls behind ktls's names: connections work,
// nothing is offloaded, and `ktls.reason` and `capabilities()` say why.
import * as fs from 'node:fs'
import * as https from 'node:https'
import * as net from 'node:net'
import { release } from 'node:os'
import type { Duplex } from 'node:stream'
import { promisify } from 'node:util'
import * as tls from 'node:tls'
import { callable } from './callable'
import { KtlsError } from './errors'
import type { Capabilities } from './api'
import type { FileSource, SendFileOptions } from './sendfile'
import type { KtlsStatus } from './socket'

let reason = 'the native binding did not load'
const fstat = promisify(fs.fstat)

/** Records why the binding is missing, for `ktls.reason` and `capabilities()`. */
export function useFallback(loadError: Error): void {
  const libc = process.platform === 'linux' ? '-gnu' : ''
  const why = loadError.message.split(/\.\s|\n/)[0]
  reason = `no ktls binary for ${process.platform}-${process.arch}${libc} (${why}; the optional package ktls-${process.platform}-${process.arch}${libc} is not installed): node:tls carries the connection`
}

/** node:tls's socket with ktls's own surface (never offloaded here). */
class FallbackSocket extends tls.TLSSocket {
  get ktls(): KtlsStatus {
    return { tx: false, rx: false, cipher: this.getCipher()?.standardName ?? '', reason }
  }

  get keyUpdatesSent(): number {
    return 0
  }

  updateKeys(): Promise<void> {
    return Promise.reject(new KtlsError('ERR_KTLS_UNAVAILABLE', `updateKeys() needs the ktls binary: ${reason}`))
  }

  /** A file range, streamed in order with the socket's writes. */
  async sendFile(file: FileSource, options: SendFileOptions = {}): Promise<number> {
    const start = options.offset ?? 0
    const opened = typeof file === 'number' ? { fd: file, close: async () => {} } : await openFile(file)
    try {
      const length = options.length ?? (await fstat(opened.fd)).size - start
      let sent = 0
      const reader = fs.createReadStream('', { fd: opened.fd, start, end: start + length - 1, autoClose: false })
      for await (const chunk of reader as AsyncIterable<Buffer>) {
        sent += chunk.length
        if (!this.write(chunk)) await new Promise((resolve) => this.once('drain', resolve))
      }
      if (sent < length) throw new KtlsError('ERR_KTLS_SENDFILE_RANGE', `the file ends ${length - sent} bytes before the range does`)
      return sent
    } finally {
      await opened.close()
    }
  }
}

async function openFile(file: Exclude<FileSource, number>): Promise<{ fd: number; close(): Promise<void> }> {
  if (typeof file === 'object' && file !== null && 'fd' in file && typeof file.fd === 'number') return { fd: file.fd, close: async () => {} }
  const handle = await fs.promises.open(file as fs.PathLike, 'r')
  return { fd: handle.fd, close: () => handle.close() }
}

const socketProto = FallbackSocket.prototype

/** Gives a socket node:tls made ktls's surface. */
function adopt<T extends tls.TLSSocket>(socket: T): T {
  Object.setPrototypeOf(socket, socketProto)
  return socket
}

function adoptAccepted(server: tls.Server): void {
  server.prependListener('secureConnection', (socket: tls.TLSSocket) => adopt(socket))
}

export const KtlsSocket: unknown = callable(FallbackSocket)

export function connect(...args: unknown[]): tls.TLSSocket {
  return adopt((tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args))
}

export function upgrade(socket: Duplex, options: tls.TLSSocketOptions & { servername?: string } = {}): Promise<tls.TLSSocket> {
  const secured = new FallbackSocket(socket, options)
  return new Promise((resolve, reject) => {
    secured.once(options.isServer ? 'secure' : 'secureConnect', () => resolve(secured))
    secured.once('error', reject)
  })
}

export function createServer(...args: unknown[]): tls.Server {
  const server = (tls.createServer as (...a: unknown[]) => tls.Server)(...args)
  adoptAccepted(server)
  return server
}

class FallbackServer extends tls.Server {
  constructor(...args: ConstructorParameters<typeof tls.Server>) {
    super(...args)
    adoptAccepted(this)
  }
}

export const Server: unknown = callable(FallbackServer)

export function createHttpsServer(...args: unknown[]): https.Server {
  const server = (https.createServer as (...a: unknown[]) => https.Server)(...args)
  adoptAccepted(server)
  return server
}

class FallbackHttpsServer extends https.Server {
  constructor(...args: unknown[]) {
    super(...(args as []))
    adoptAccepted(this)
  }
}

export const HttpsServer: unknown = callable(FallbackHttpsServer)

export const Agent = https.Agent
/** node:tls has no SecureContext class to export; this builds one. */
export function SecureContext(options?: tls.SecureContextOptions): tls.SecureContext {
  return tls.createSecureContext(options)
}
export const createSecureContext = tls.createSecureContext
export const DEFAULT_CIPHERS = tls.DEFAULT_CIPHERS

export const httpsModule: unknown = {
  Agent: https.Agent,
  Server: HttpsServer,
  createServer: createHttpsServer,
  globalAgent: https.globalAgent,
  request: https.request,
  get: https.get,
}

/** A `connect` for undici over node:tls (https) or node:net (http). */
export function undiciConnector(options: tls.ConnectionOptions & { timeout?: number } = {}) {
  const { timeout = 10_000, ...tlsOptions } = options
  return function connectForUndici(
    params: { hostname: string; port: string; protocol: string; servername?: string | null },
    callback: (err: Error | null, socket: Duplex | null) => void,
  ): Duplex {
    const secure = params.protocol === 'https:'
    const port = Number(params.port) || (secure ? 443 : 80)
    const socket = secure
      ? connect({ ALPNProtocols: ['http/1.1'], ...tlsOptions, host: params.hostname, port, servername: params.servername || params.hostname })
      : net.connect({ host: params.hostname, port })
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`Connect Timeout Error (timeout: ${timeout}ms)`), { code: 'UND_ERR_CONNECT_TIMEOUT' })), timeout)
    timer.unref()
    let pending: typeof callback | undefined = callback
    const settle = (err: Error | null) => {
      clearTimeout(timer)
      const cb = pending
      pending = undefined
      cb?.(err, err ? null : socket)
    }
    socket.once(secure ? 'secureConnect' : 'connect', () => settle(null))
    socket.on('error', settle)
    return socket
  }
}

export function capabilities(): Capabilities {
  return {
    kernel: release(),
    ulp: false,
    reason,
    ciphers: { TLS_AES_128_GCM_SHA256: false, TLS_AES_256_GCM_SHA384: false, TLS_CHACHA20_POLY1305_SHA256: false },
    rekey: false,
    rxExpectNoPad: false,
    txZeroCopy: false,
    txMaxPayload: false,
  }
}
