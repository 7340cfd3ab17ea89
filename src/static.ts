// serveStatic(root): files under `root` over HTTP, as a request listener that
// is also Connect/Express middleware. On a KtlsSocket whose records the
// kernel writes, the body goes out with sendfile(2) (socket.sendFile): the
// page cache to the kernel's TLS layer, no copy through userspace.
// Elsewhere (userspace TLS, plain http, HTTP/2) it is streamed.
import * as fs from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import type * as http from 'node:http'
import * as path from 'node:path'
import { pipeline } from 'node:stream'
import etag from 'etag'
import fresh from 'fresh'
import * as mime from 'mime-types'
import rangeParser from 'range-parser'
import { argumentError } from './errors'
import { KtlsSocket } from './socket'

export interface ServeStaticOptions {
  /** The file served for a directory (default 'index.html'); false: none. */
  index?: string | false
  /** `Cache-Control: public, max-age=` this many milliseconds (default 0). */
  maxAge?: number
  /** Files and directories whose name starts with a dot: 'ignore' (404, the default), 'deny' (403) or 'allow'. */
  dotfiles?: 'ignore' | 'deny' | 'allow'
  /** Send `ETag` and answer `If-None-Match` (default true). */
  etag?: boolean
  /** Send `Last-Modified` and answer `If-Modified-Since` (default true). */
  lastModified?: boolean
  /** As middleware: a 404 or a method other than GET/HEAD goes on to `next()` (default true). */
  fallthrough?: boolean
  /** sendFile's `zeroCopy` (TLS_TX_ZEROCOPY_RO): the files must not change while they are sent. */
  zeroCopy?: boolean
}

export type NextFunction = (err?: unknown) => void
export type StaticHandler = (req: http.IncomingMessage, res: http.ServerResponse, next?: NextFunction) => void

/** An HTTP answer other than the file: its status decides the response or what `next` gets. */
class HttpStatus extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
  get statusCode(): number {
    return this.status
  }
}

interface Found {
  file: string
  handle: FileHandle
  stats: fs.Stats
}

const ALLOW = 'GET, HEAD'

/** A request listener `(req, res)`, and middleware `(req, res, next)`. */
export function serveStatic(root: string, options: ServeStaticOptions = {}): StaticHandler {
  if (typeof root !== 'string' || root === '') throw argumentError('ERR_INVALID_ARG_TYPE', 'The "root" argument must be a non-empty string')
  if (options.maxAge !== undefined && !(typeof options.maxAge === 'number' && options.maxAge >= 0 && Number.isFinite(options.maxAge))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'The "maxAge" option must be a non-negative number of milliseconds')
  }
  const settings = {
    index: options.index === undefined ? 'index.html' : options.index,
    maxAge: Math.max(0, Math.floor((options.maxAge ?? 0) / 1000)),
    dotfiles: options.dotfiles ?? 'ignore',
    etag: options.etag !== false,
    lastModified: options.lastModified !== false,
    fallthrough: options.fallthrough !== false,
    zeroCopy: options.zeroCopy === true,
  }
  const absoluteRoot = path.resolve(root)
  return (req, res, next) => {
    serve(req, res, absoluteRoot, settings).catch((err: unknown) => answerError(err, req, res, settings.fallthrough, next))
  }
}

type Settings = Required<Omit<ServeStaticOptions, 'index'>> & { index: string | false }

async function serve(req: http.IncomingMessage, res: http.ServerResponse, root: string, settings: Settings): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpStatus(405, 'ERR_METHOD_NOT_ALLOWED', 'Method Not Allowed')
  const { pathname } = splitUrl(req.url ?? '/')
  const segments = safeSegments(pathname, settings.dotfiles)
  const realRoot = await fs.promises.realpath(root)
  let target = await within(realRoot, path.join(realRoot, ...segments))
  let stats = await fs.promises.stat(target)
  if (stats.isDirectory()) {
    if (!pathname.endsWith('/')) return redirect(res, slashed(req))
    if (settings.index === false) throw notFound()
    target = await within(realRoot, path.join(target, settings.index))
    stats = await fs.promises.stat(target)
  }
  if (!stats.isFile()) throw notFound()
  // The real path has no link left; one swapped in since is not followed.
  const handle = await fs.promises.open(target, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  const found: Found = { file: target, handle, stats: await handle.stat() }
  try {
    if (!found.stats.isFile()) throw notFound()
    await respond(req, res, found, settings)
  } finally {
    await handle.close().catch(() => {})
  }
}

function splitUrl(url: string): { pathname: string; search: string } {
  const query = url.indexOf('?')
  return query < 0 ? { pathname: url, search: '' } : { pathname: url.slice(0, query), search: url.slice(query) }
}

/** The decoded path segments, refusing traversal, NUL bytes and (by default) dotfiles. */
function safeSegments(pathname: string, dotfiles: Settings['dotfiles']): string[] {
  let decoded: string
  try {
    decoded = decodeURIComponent(pathname)
  } catch {
    throw new HttpStatus(400, 'ERR_KTLS_STATIC_BAD_PATH', 'Bad Request: malformed path')
  }
  if (decoded.includes('\0')) throw new HttpStatus(400, 'ERR_KTLS_STATIC_BAD_PATH', 'Bad Request: NUL in path')
  const segments = decoded.split('/').filter((s) => s !== '' && s !== '.')
  if (segments.includes('..')) throw new HttpStatus(403, 'ERR_KTLS_STATIC_TRAVERSAL', 'Forbidden: path leaves the root')
  if (dotfiles !== 'allow' && segments.some((s) => s.startsWith('.'))) {
    if (dotfiles === 'deny') throw new HttpStatus(403, 'ERR_KTLS_STATIC_DOTFILE', 'Forbidden')
    throw notFound()
  }
  return segments
}

/** The real path of `candidate`, which must stay under `realRoot` (a symlink may not lead out). */
async function within(realRoot: string, candidate: string): Promise<string> {
  const real = await fs.promises.realpath(candidate)
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) throw notFound()
  return real
}

async function respond(req: http.IncomingMessage, res: http.ServerResponse, found: Found, settings: Settings): Promise<void> {
  const { stats } = found
  res.setHeader('Accept-Ranges', 'bytes')
  res.setHeader('Cache-Control', `public, max-age=${settings.maxAge}`)
  if (settings.lastModified) res.setHeader('Last-Modified', stats.mtime.toUTCString())
  if (settings.etag) res.setHeader('ETag', etag(stats))
  if (fresh(req.headers, { etag: res.getHeader('ETag'), 'last-modified': res.getHeader('Last-Modified') })) {
    res.statusCode = 304
    res.end()
    return
  }
  res.setHeader('Content-Type', mime.contentType(path.extname(found.file)) || 'application/octet-stream')
  const range = pickRange(req, res, stats.size)
  if (range === 'unsatisfiable') {
    res.statusCode = 416
    res.setHeader('Content-Range', `bytes */${stats.size}`)
    res.setHeader('Content-Length', '0')
    res.end()
    return
  }
  const { start, length } = range ?? { start: 0, length: stats.size }
  if (range) {
    res.statusCode = 206
    res.setHeader('Content-Range', `bytes ${start}-${start + length - 1}/${stats.size}`)
  } else {
    res.statusCode = 200
  }
  res.setHeader('Content-Length', String(length))
  if (req.method === 'HEAD' || length === 0) {
    res.end()
    return
  }
  await sendBody(res, found.handle, start, length, settings.zeroCopy)
}

/** One byte range, the whole file (undefined), or none can be satisfied. */
function pickRange(req: http.IncomingMessage, res: http.ServerResponse, size: number): { start: number; length: number } | undefined | 'unsatisfiable' {
  const header = req.headers.range
  if (!header || !rangeStillApplies(req, res)) return undefined
  const ranges = rangeParser(size, header, { combine: true })
  if (ranges === -1) return 'unsatisfiable'
  // Malformed, another unit, or several ranges (not served as multipart): the whole file.
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return undefined
  return { start: ranges[0].start, length: ranges[0].end - ranges[0].start + 1 }
}

/** `If-Range`: the range is for the version the client has, else the whole file (RFC 9110 §13.1.5). */
function rangeStillApplies(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const ifRange = req.headers['if-range']
  if (typeof ifRange !== 'string' || ifRange === '') return true
  if (ifRange.includes('"')) return ifRange === res.getHeader('ETag')
  const modified = res.getHeader('Last-Modified')
  return typeof modified === 'string' && Date.parse(modified) <= Date.parse(ifRange)
}

/** sendfile(2) where the kernel writes the socket's records; a stream elsewhere. */
async function sendBody(res: http.ServerResponse, handle: FileHandle, start: number, length: number, zeroCopy: boolean): Promise<void> {
  const socket = res.socket
  if (socket instanceof KtlsSocket && socket.kernelTxFd() !== undefined) {
    // The head goes into the socket's write queue first; the file follows it there.
    res.flushHeaders()
    try {
      await socket.sendFile(handle, { offset: start, length, zeroCopy })
    } catch {
      // The peer left, or the file changed under us: the response cannot be completed.
      res.destroy()
      return
    }
    res.end()
    return
  }
  // A response queued behind a pipelined one never finishes if the
  // connection closes first: the file must not wait for it.
  const connection = res.req.socket
  if (!connection || connection.destroyed) return
  await new Promise<void>((resolve) => {
    const body = handle.createReadStream({ start, end: start + length - 1, autoClose: false })
    const abandon = () => body.destroy()
    connection.once('close', abandon)
    pipeline(body, res, () => {
      connection.off('close', abandon)
      resolve()
    })
  })
}

/** The URL the client asked for with a slash after its path; Express's mount path (originalUrl) included. */
function slashed(req: http.IncomingMessage): string {
  const { pathname, search } = splitUrl((req as { originalUrl?: string }).originalUrl ?? req.url ?? '/')
  return `${pathname}/${search}`
}

function redirect(res: http.ServerResponse, location: string): void {
  res.statusCode = 301
  res.setHeader('Location', location)
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.end(`Redirecting to ${location}\n`)
}

function notFound(): HttpStatus {
  return new HttpStatus(404, 'ENOENT', 'Not Found')
}

/** Filesystem errors as HTTP answers. */
function asStatus(err: unknown): HttpStatus {
  if (err instanceof HttpStatus) return err
  const code = (err as { code?: string })?.code
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG' || code === 'ELOOP') return notFound()
  if (code === 'EACCES' || code === 'EPERM') return new HttpStatus(403, code, 'Forbidden')
  return Object.assign(new HttpStatus(500, code ?? 'ERR_KTLS_STATIC', 'Internal Server Error'), { cause: err })
}

function answerError(err: unknown, req: http.IncomingMessage, res: http.ServerResponse, fallthrough: boolean, next?: NextFunction): void {
  const status = asStatus(err)
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (next) {
    if (fallthrough && (status.status === 404 || status.status === 405)) return next()
    return next(status)
  }
  res.statusCode = status.status
  if (status.status === 405) res.setHeader('Allow', ALLOW)
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.end(req.method === 'HEAD' ? undefined : `${status.message}\n`)
}
