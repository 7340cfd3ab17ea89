// The streams a KtlsSocket wraps and the chunks it writes: what ktls needs
// to know about them, whichever engine carries the records.
import type * as net from 'node:net'
import type { Duplex } from 'node:stream'
import { constants as osConstants } from 'node:os'

/** A record's most plaintext: a chunk smaller than this is merged with its neighbours. */
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

/** The most plaintext that coalesce copies into one buffer (the binding's most per write call). */
const GROUP_LIMIT = 256 * 1024

/**
 * Chunks written together go out in as few records and sends as they fill,
 * as node:tls copies a write's buffers into one before encrypting: a run of
 * chunks that holds one smaller than a record (an HTTP head and its body,
 * HTTP/2's 9-byte frame headers between 16 KiB payloads) is copied into one
 * buffer of at most GROUP_LIMIT bytes. Runs of record-sized chunks stay as
 * they are: they fill their records without a copy.
 */
export function coalesce(chunks: Buffer[]): Buffer[] {
  if (chunks.length < 2) return chunks
  const out: Buffer[] = []
  let run: Buffer[] = []
  let runBytes = 0
  let runHasSmall = false
  const closeRun = () => {
    if (run.length > 1 && runHasSmall) out.push(Buffer.concat(run, runBytes))
    else out.push(...run)
    run = []
    runBytes = 0
    runHasSmall = false
  }
  for (const chunk of chunks) {
    if (run.length > 0 && runBytes + chunk.length > GROUP_LIMIT) closeRun()
    run.push(chunk)
    runBytes += chunk.length
    if (chunk.length < SMALL_CHUNK) runHasSmall = true
  }
  closeRun()
  return out
}

export function toBuffer(entry: { chunk: Buffer | string; encoding: BufferEncoding }): Buffer {
  return typeof entry.chunk === 'string' ? Buffer.from(entry.chunk, entry.encoding) : entry.chunk
}

/** The peer left: nothing to tell it any more. */
export function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'ENOTCONN'
}
