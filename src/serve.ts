// `ktls serve`: an HTTPS server that says, per connection, whether the kernel
// carries its records. Bad clients cost one log line each and nothing else.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import type * as http from 'node:http'
import { X509Certificate } from 'node:crypto'
import { homedir, tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import type { HttpsServerOptions } from './http'
// From the index: node:https's server where no ktls binary loads.
import { HttpsServer } from './index'
import { generateSelfSigned } from './selfsigned'
import type { KtlsSocket } from './socket'
import { serveStatic, type ServeStaticOptions } from './static'

export interface ServeOptions {
  /** Default 8443; 0 picks a free port. */
  port?: number
  /** Default 'localhost'. */
  host?: string
  /** PEM; without both, the default certificate (generated once, then cached). */
  key?: string | Buffer
  cert?: string | Buffer
  /** Where each log line goes (default: stdout). */
  log?: (line: string) => void
  /** Anything else for the server: timeouts, handshakeTimeout, ciphers... */
  server?: HttpsServerOptions
  /**
   * Serve the files under this directory (GET and HEAD, serveStatic).
   * Without it every request gets the status answer (see demoHandler).
   */
  root?: string
  /** serveStatic's options for `root`. */
  files?: ServeStaticOptions
}

/** Where a file server still answers with the connection's offload status. */
export const STATUS_PATH = '/.well-known/ktls'

export interface Serving {
  server: HttpsServer
  url: string
  /** Set when the default certificate is used: trust it with `curl --cacert`. */
  certPath?: string
  close(): Promise<void>
}

/** Starts the server; resolves once it listens. */
export async function serve(options: ServeOptions = {}): Promise<Serving> {
  const log = options.log ?? ((line: string) => console.log(line))
  const credentials = options.key && options.cert ? { key: options.key, cert: options.cert } : defaultCertificate()
  const reading = new WeakSet<Duplex>() // sockets whose request body is still arriving
  const demo = demoHandler(log, reading)
  const handler = options.root === undefined ? demo : siteHandler(options.root, options.files, demo)
  const server = new HttpsServer({ ...options.server, key: credentials.key, cert: credentials.cert }, handler)
  server.on('secureConnection', (socket: KtlsSocket) => log(connectionLine(socket)))
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (!unremarkable(err, socket, reading)) log(`${stamp()} ${peer(socket)} ${err.code ?? 'ERROR'}: ${err.message}`)
    answerClientError(err, socket)
  })
  const host = options.host ?? 'localhost'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 8443, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as { port: number }
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}/`
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  return { server, url, certPath: 'path' in credentials ? credentials.path : undefined, close }
}

/** "<time> <peer> <protocol> <cipher> tx=kernel|rustls rx=kernel|rustls[: why not]" */
export function connectionLine(socket: KtlsSocket): string {
  const { tx, rx, cipher, reason } = socket.ktls
  const where = (offloaded: boolean) => (offloaded ? 'kernel' : 'rustls')
  const why = tx && rx ? '' : `: ${reason ?? 'no reason given'}`
  return `${stamp()} ${peer(socket)} ${socket.getProtocol()} ${cipher} tx=${where(tx)} rx=${where(rx)}${why}`
}

/**
 * GET answers with this connection's offload status; any request with a body
 * gets its length and sha256 back (`curl --data-binary @file` to check a transfer).
 */
export function demoHandler(log: (line: string) => void, reading = new WeakSet<Duplex>()): http.RequestListener {
  return (req, res) => {
    const socket = req.socket as unknown as KtlsSocket
    reading.add(socket)
    req.once('close', () => reading.delete(socket))
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk)
      bytes += chunk.length
    })
    req.on('error', (err: Error & { code?: string }) => {
      log(`${stamp()} ${peer(socket)} ${err.code ?? 'ERROR'}: ${req.method} ${req.url} aborted after ${bytes} body bytes`)
    })
    req.on('end', () => {
      const status = { ...socket.ktls, protocol: socket.getProtocol?.() ?? null }
      const body = bytes > 0 || req.method !== 'GET' ? { bytes, sha256: hash.digest('hex'), ...status } : status
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(body) + '\n')
    })
  }
}

/** Files for GET and HEAD; the status answer at STATUS_PATH and for requests with a body. */
function siteHandler(root: string, options: ServeStaticOptions | undefined, demo: http.RequestListener): http.RequestListener {
  const files = serveStatic(root, options)
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === STATUS_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) return demo(req, res)
    files(req, res)
  }
}

/**
 * Errors not worth a line: a body cut short is the request's to report
 * ("aborted"), and ENOTCONN is our FIN finding the peer already gone, which
 * net.Socket does not even report (its _final ignores UV_ENOTCONN).
 */
function unremarkable(err: Error & { code?: string }, socket: Duplex, reading: WeakSet<Duplex>): boolean {
  return reading.has(socket) || err.code === 'ENOTCONN'
}

const CLIENT_ERROR_RESPONSES: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
}
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'

/** As http.Server does without a 'clientError' listener: answer if we can, then close. */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  const pending = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (!socket.writable || err.code === 'ECONNRESET' || pending?.headersSent) {
    socket.destroy()
    return
  }
  socket.end(CLIENT_ERROR_RESPONSES[err.code ?? ''] ?? BAD_REQUEST)
  // A client that stops reading must not hold the connection open.
  const done = () => socket.destroy()
  socket.once('finish', done)
  setTimeout(done, 5000).unref()
}

function peer(socket: Duplex): string {
  const { remoteAddress, remotePort } = socket as Duplex & { remoteAddress?: string; remotePort?: number }
  if (!remoteAddress) return 'unknown-peer'
  return remoteAddress.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`
}

const stamp = () => new Date().toISOString()

interface CachedCertificate {
  key: string
  cert: string
  path: string
}

/**
 * The default certificate: generated at first start into the user's cache
 * (`$XDG_CACHE_HOME/ktls`, else `~/.cache/ktls`, else the temp dir) and reused
 * while it is valid for another day.
 */
export function defaultCertificate(): CachedCertificate {
  let lastError: unknown
  for (const dir of cacheDirs()) {
    try {
      return cachedIn(dir)
    } catch (err) {
      lastError = err
    }
  }
  throw lastError
}

function cacheDirs(): string[] {
  const dirs: string[] = []
  if (process.env.XDG_CACHE_HOME) dirs.push(join(process.env.XDG_CACHE_HOME, 'ktls'))
  try {
    dirs.push(join(homedir(), '.cache', 'ktls'))
  } catch {
    // no home directory: the temp dir below will do
  }
  dirs.push(join(tmpdir(), `ktls-${userInfo().uid}`))
  return dirs
}

function cachedIn(dir: string): CachedCertificate {
  const certPath = join(dir, 'default-cert.pem')
  const keyPath = join(dir, 'default-key.pem')
  try {
    const cert = readFileSync(certPath, 'utf8')
    const key = readFileSync(keyPath, 'utf8')
    if (Date.parse(new X509Certificate(cert).validTo) > Date.now() + 24 * 60 * 60 * 1000) return { key, cert, path: certPath }
  } catch {
    // missing, unreadable or not a certificate: make a new one
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const { key, cert } = generateSelfSigned({ names: ['localhost', '127.0.0.1', '::1'] })
  writeFileSync(keyPath, key, { mode: 0o600 })
  writeFileSync(certPath, cert)
  return { key, cert, path: certPath }
}
