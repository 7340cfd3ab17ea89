// The streams a KtlsSocket wraps and the chunks it writes: what ktls needs
// to know about them, whichever engine carries the records.
import type * as net from 'node:net'
import type { Duplex } from 'node:stream'
import { constants as osConstants } from 'node:os'

/** Below this, chunks written together are merged into one record. */
export const SMALL_CHUNK = 16 * 1024

/** What a wrapped stream says about half-open connections (not an accepted handle: options rule there). */
export function wrappedAllowHalfOpen(socket: unknown): boolean | undefined {
  return isDuplex(socket) ? (socket as Duplex).allowHalfOpen : undefined
}

/** What libuv gives a write it cancels when the handle closes. */
export function canceledWrite(): Error {
  return Object.assign(new Error('write ECANCELED'), { code: 'ECANCELED', errno: -osConstants.errno.ECANCELED, syscall: 'write' })
}

export function isDuplex(value: unknown): boolean {
  const s = value as Duplex | null
  return s != null && typeof s.on === 'function' && typeof s.write === 'function' && typeof s.read === 'function'
}

/** Bytes a paused net.Socket had already read into its stream buffer. */
export function drainReadable(socket: net.Socket): Buffer {
  // Nothing buffered (a server socket accepted paused): read() would only
  // make libuv start and stop watching the descriptor.
  if (socket.readableLength === 0) return Buffer.alloc(0)
  const chunks: Buffer[] = []
  let chunk: Buffer | null
  while ((chunk = socket.read()) !== null) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** Small chunks written together (an HTTP head and body) go out as one record. */
export function coalesce(chunks: Buffer[]): Buffer[] {
  if (chunks.length < 2) return chunks
  const total = chunks.reduce((n, c) => n + c.length, 0)
  return total <= SMALL_CHUNK ? [Buffer.concat(chunks, total)] : chunks
}

export function toBuffer(entry: { chunk: Buffer | string; encoding: BufferEncoding }): Buffer {
  return typeof entry.chunk === 'string' ? Buffer.from(entry.chunk, entry.encoding) : entry.chunk
}

/** The peer left: nothing to tell it any more. */
export function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'ENOTCONN'
}
