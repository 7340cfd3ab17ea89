// socket.sendFile(): a file range onto the socket, in order with its writes.
// Where the kernel writes the socket's records (offloaded TX, or no TLS at
// all) sendfile(2) moves the file from the page cache without a copy through
// userspace; elsewhere the file is read and written in chunks.
//
// Ordering: the send is queued as a zero-length marker write, so it starts
// when the writes before it have completed (the stream calls _write one at a
// time) and the writes after it wait in the stream's buffer until it settles.
import * as fs from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import type * as net from 'node:net'
import { promisify } from 'node:util'
import type { FileSender, FileSent } from '../binding/index'
import { KtlsError, argumentError } from './errors'
import { pendingHandleWrites, touchTimer } from './internals'
import { binding } from './native'

/** A path, a descriptor (left open), or a FileHandle (left open). */
export type FileSource = string | Buffer | URL | number | FileHandle

export interface SendFileOptions {
  /** First byte to send (default 0). */
  offset?: number
  /** How many bytes (default: to the end of the file). */
  length?: number
  /**
   * `TLS_TX_ZEROCOPY_RO` (Linux 5.19+): lets the kernel use the file's pages
   * without copying them. The file must not change while it is sent: a page
   * modified in flight breaks the connection. Stays on for the socket.
   */
  zeroCopy?: boolean
}

/** What sendFile needs from a KtlsSocket beyond its public surface. */
export interface FileSink extends net.Socket {
  /** The descriptor sendfile(2) may write to, when the kernel writes the records. */
  kernelTxFd(): number | undefined
  /** Writes around the stream's queue, through the socket's own engine. */
  writeDirect(chunk: Buffer, callback: (err?: Error | null) => void): void
  /** Plaintext bytes moved outside libuv's counters. */
  countWritten(bytes: number): void
  /** The kernel is about to seal `bytes`: false when the key's record limit ended the connection. */
  beforeKernelWrite(bytes: number): boolean
  /** The largest slice to hand the kernel at once (the record limit's checks). */
  kernelWriteSlice(): number
}

interface FileRange {
  fd: number
  offset: number
  length: number
  /** Closes the file when sendFile opened it. */
  close(): Promise<void>
}

interface FileJob {
  /** Opened and checked at once, while the writes ahead of it go. */
  range: Promise<FileRange>
  zeroCopy: boolean
  resolve(bytes: number): void
  reject(err: Error): void
  /** Stops it: with why the socket was destroyed, else ECANCELED. */
  cancel?: (reason?: Error | null) => void
}

const READ_CHUNK = 256 * 1024
// One threadpool task per slice, so a long send shows progress between them.
const SENDFILE_SLICE = 16 * 1024 * 1024
// How long a task may wait for a peer that is not reading before it gives
// its worker thread back (libuv's threadpool also runs fs calls; 4 threads
// by default), and how long sendFile then waits before trying again.
const PATIENCE_MS = 50
const MIN_PAUSE_MS = 5
const MAX_PAUSE_MS = 200
const delay = promisify(setTimeout)
const fstat = promisify(fs.fstat)
const read = promisify(fs.read)

const jobs = new WeakMap<Buffer, FileJob>()
const running = new WeakMap<net.Socket, Set<FileJob>>()

/**
 * socket.sendFile(): resolves with the bytes sent. Its place among the
 * socket's writes is taken at the call, synchronously.
 */
export function sendFile(socket: FileSink, file: FileSource, options: SendFileOptions = {}): Promise<number> {
  let checked: ReturnType<typeof checkOptions>
  try {
    checked = checkOptions(options)
    if (socket.destroyed) throw new KtlsError('ERR_STREAM_DESTROYED', 'Cannot call sendFile after a stream was destroyed')
    if (socket.writableEnded) throw new KtlsError('ERR_STREAM_WRITE_AFTER_END', 'sendFile after end')
  } catch (err) {
    return Promise.reject(err)
  }
  const range = openRange(file, checked.offset, checked.length)
  // Not awaited until its turn: a failure must not count as unhandled meanwhile.
  range.catch(() => {})
  return queue(socket, { range, zeroCopy: checked.zeroCopy })
}

async function openRange(file: FileSource, offset: number, length: number | undefined): Promise<FileRange> {
  const opened = await openSource(file)
  try {
    const stats = await fstat(opened.fd)
    if (stats.isDirectory()) throw new KtlsError('EISDIR', 'sendFile: the file is a directory')
    if (!stats.isFile()) throw argumentError('ERR_INVALID_ARG_VALUE', 'sendFile needs a regular file')
    const available = Math.max(0, stats.size - offset)
    if (offset > stats.size || (length !== undefined && length > available)) {
      throw new KtlsError('ERR_KTLS_SENDFILE_RANGE', `range ${offset}+${length ?? 0} is past the end of the file (${stats.size} bytes)`)
    }
    return { fd: opened.fd, offset, length: length ?? available, close: opened.close }
  } catch (err) {
    await opened.close()
    throw err
  }
}

function checkOptions(options: SendFileOptions): { offset: number; length?: number; zeroCopy: boolean } {
  if (options === null || typeof options !== 'object') throw argumentError('ERR_INVALID_ARG_TYPE', 'The "options" argument must be of type object')
  const offset = options.offset ?? 0
  const length = options.length ?? undefined
  for (const [name, value] of [
    ['offset', offset],
    ['length', length],
  ] as const) {
    if (value === undefined) continue
    if (typeof value !== 'number') throw argumentError('ERR_INVALID_ARG_TYPE', `The "${name}" option must be of type number`)
    if (!Number.isSafeInteger(value) || value < 0) throw argumentError('ERR_OUT_OF_RANGE', `The "${name}" option must be a non-negative integer`)
  }
  return { offset, length, zeroCopy: options.zeroCopy === true }
}

async function openSource(file: FileSource): Promise<{ fd: number; close(): Promise<void> }> {
  if (typeof file === 'number') {
    if (!Number.isInteger(file) || file < 0) throw argumentError('ERR_OUT_OF_RANGE', 'The "fd" argument must be a non-negative integer')
    return { fd: file, close: async () => {} }
  }
  if (typeof file === 'string' || Buffer.isBuffer(file) || file instanceof URL) {
    const handle = await fs.promises.open(file, 'r')
    return { fd: handle.fd, close: () => handle.close() }
  }
  if (file !== null && typeof file === 'object' && typeof (file as FileHandle).fd === 'number') {
    return { fd: (file as FileHandle).fd, close: async () => {} }
  }
  throw argumentError('ERR_INVALID_ARG_TYPE', 'The "file" argument must be a path, a file descriptor or a FileHandle')
}

/** Puts the send in the socket's write queue; it runs when _write reaches it. */
function queue(socket: FileSink, job: Pick<FileJob, 'range' | 'zeroCopy'>): Promise<number> {
  return new Promise((resolve, reject) => {
    const marker = Buffer.alloc(0)
    jobs.set(marker, { ...job, resolve, reject })
    // Only called with an error when the send never ran (destroyed first).
    socket.write(marker, (err) => {
      if (!err) return
      reject(err)
      if (jobs.delete(marker)) job.range.then((range) => range.close(), () => {})
    })
  })
}

/** Whether a chunk _write got is a queued sendFile. */
export function isFileMarker(chunk: unknown): chunk is Buffer {
  return Buffer.isBuffer(chunk) && chunk.length === 0 && jobs.has(chunk)
}

/** _write reached a queued sendFile: run it, then let the writes behind it go. */
export function runFileWrite(socket: FileSink, marker: Buffer, callback: (err?: Error | null) => void): void {
  const job = jobs.get(marker)!
  jobs.delete(marker)
  const mine = running.get(socket) ?? new Set<FileJob>()
  running.set(socket, mine)
  mine.add(job)
  let settled = false
  let started = false
  const settle = (err: Error | null, bytes = 0) => {
    if (settled) return
    settled = true
    mine.delete(job)
    touchTimer(socket)
    if (err) job.reject(err)
    else job.resolve(bytes)
    // A send that stopped part-way has broken the byte stream: the socket
    // cannot carry anything after it. The promise carries the error.
    if (err && started && !socket.destroyed) socket.destroy()
    callback()
  }
  job.cancel = (reason) => settle(reason ?? canceled())
  job.range.then(
    (range) =>
      afterHandleWrites(socket, () => {
        if (settled) return void range.close()
        started = true
        const fd = socket.kernelTxFd()
        const run = fd === undefined ? viaWrites(socket, range, () => settled) : viaSendfile(socket, fd, range, job)
        run
          .then(
            (bytes) => settle(bytes < range.length ? truncated(range, bytes) : null, bytes),
            (err: Error) => settle(err),
          )
          .finally(() => range.close())
      }),
    (err: Error) => settle(err),
  )
}

/** _writev got a batch holding sendFiles: the chunks and sends in order. */
export function writevAroundFiles(
  socket: FileSink,
  chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>,
  writev: (chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>, callback: (err?: Error | null) => void) => void,
  callback: (err?: Error | null) => void,
): void {
  const next = (start: number): void => {
    if (start >= chunks.length) return callback()
    const first = chunks[start].chunk
    if (isFileMarker(first)) return runFileWrite(socket, first, (err) => (err ? callback(err) : next(start + 1)))
    let end = start
    while (end < chunks.length && !isFileMarker(chunks[end].chunk)) end++
    writev(chunks.slice(start, end), (err) => (err ? callback(err) : next(end)))
  }
  next(0)
}

/**
 * The socket is being destroyed: its sends stop, their promises rejecting
 * with what destroyed it (a peer's reset, say), else ECANCELED.
 */
export function cancelFileSends(socket: net.Socket, reason?: Error | null): void {
  const mine = running.get(socket)
  if (!mine) return
  for (const job of [...mine]) job.cancel?.(reason)
}

/** libuv's queue is empty once the last write's callback ran; checked, not assumed. */
function afterHandleWrites(socket: net.Socket, then: () => void): void {
  if (socket.destroyed || pendingHandleWrites(socket) === 0) return then()
  setImmediate(afterHandleWrites, socket, then)
}

async function viaSendfile(socket: FileSink, fd: number, range: FileRange, job: FileJob): Promise<number> {
  let sender: FileSender | undefined
  try {
    sender = new binding.FileSender(fd, range.fd)
    const cancel = job.cancel
    job.cancel = (reason) => {
      sender!.cancel()
      cancel?.(reason)
    }
    if (job.zeroCopy) setZeroCopy(sender)
    let total = 0
    let pause = MIN_PAUSE_MS
    while (total < range.length) {
      const slice = Math.min(SENDFILE_SLICE, socket.kernelWriteSlice(), range.length - total)
      // The sending key's record limit comes before every slice the kernel seals.
      if (!socket.beforeKernelWrite(slice)) throw canceled()
      const sent: FileSent = await sender.send(range.offset + total, slice, PATIENCE_MS)
      if (sent.code !== undefined) throw new KtlsError(sent.code, sent.message ?? sent.code)
      socket.countWritten(sent.bytes)
      total += sent.bytes
      // Progress: an idle timeout (setTimeout) starts over.
      if (sent.bytes > 0) touchTimer(socket)
      if (!sent.blocked) {
        if (sent.bytes < slice) break // the file ended early
        continue
      }
      // The peer is not reading: give the worker thread back, try again later.
      pause = sent.bytes > 0 ? MIN_PAUSE_MS : Math.min(pause * 2, MAX_PAUSE_MS)
      await delay(pause)
    }
    return total
  } finally {
    sender?.close()
  }
}

/** Best effort: a kernel without it (before 5.19) sends as it would anyway. */
function setZeroCopy(sender: FileSender): void {
  try {
    sender.setZeroCopy()
  } catch {
    // ENOPROTOOPT: not known to this kernel
  }
}

/** The same bytes the long way: read, then write through the socket's engine. */
async function viaWrites(socket: FileSink, range: FileRange, stopped: () => boolean): Promise<number> {
  let sent = 0
  while (sent < range.length && !stopped()) {
    const size = Math.min(READ_CHUNK, range.length - sent)
    const buffer = Buffer.allocUnsafe(size)
    const { bytesRead } = await read(range.fd, buffer, 0, size, range.offset + sent)
    if (bytesRead === 0 || stopped()) break
    await new Promise<void>((resolve, reject) => socket.writeDirect(buffer.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve())))
    sent += bytesRead
  }
  return sent
}

function truncated(range: FileRange, bytes: number): KtlsError {
  return new KtlsError('ERR_KTLS_SENDFILE_TRUNCATED', `the file ended after ${bytes} of ${range.length} bytes (truncated while being sent)`)
}

function canceled(): Error {
  return new KtlsError('ECANCELED', 'sendFile canceled: the socket was destroyed')
}
