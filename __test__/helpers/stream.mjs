// Deterministic payloads, hashing and backpressure-aware writing.
//
// Payload layout: a 64 KiB base block derived from `seed` (sha256 in counter
// mode), emitted repeatedly; every emitted chunk starts with its chunk counter
// (8 bytes big-endian, or 16 hex chars in `hex` mode) so reordered, duplicated
// or dropped chunks change the hash. `hex: true` produces only [0-9a-f] bytes
// (safe to feed to a non-quiet `openssl s_server`, whose stdin reader treats
// chunks beginning with Q, q, P, S, ... as commands).
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'

export const MiB = 1024 * 1024
export const KiB = 1024
export const CHUNK = 64 * KiB

const blockCache = new Map()

function baseBlock(seed, hex) {
  const k = `${hex ? 'h' : 'b'}:${seed}`
  let b = blockCache.get(k)
  if (b) return b
  const raw = Buffer.alloc(CHUNK)
  for (let i = 0; i * 32 < CHUNK; i++) {
    createHash('sha256').update(`${seed}:${i}`).digest().copy(raw, i * 32)
  }
  b = hex ? Buffer.from(raw.toString('hex').slice(0, CHUNK), 'latin1') : raw
  blockCache.set(k, b)
  return b
}

/**
 * Yields `size` deterministic bytes in chunks of at most `chunkSize` (<= 64 KiB).
 * `startChunk` continues a stream: with chunkSize C, dataChunks(a*C) followed by
 * dataChunks(b, { startChunk: a }) equals dataChunks(a*C + b).
 */
export function* dataChunks(size, { seed = 'ktls', hex = false, chunkSize = CHUNK, marker, startChunk = 0 } = {}) {
  if (chunkSize > CHUNK) throw new RangeError('chunkSize must be <= 64 KiB')
  const block = baseBlock(seed, hex)
  let offset = 0
  let n = startChunk
  while (offset < size) {
    const len = Math.min(chunkSize, size - offset)
    const chunk = Buffer.from(block.subarray(0, len))
    if (hex) {
      chunk.write(n.toString(16).padStart(16, '0'), 0, Math.min(16, len), 'latin1')
    } else if (len >= 8) {
      chunk.writeBigUInt64BE(BigInt(n), 0)
    }
    // Optional marker (e.g. for packet-capture checks), placed after the counter.
    if (marker && len >= 16 + marker.length) marker.copy(chunk, 16)
    yield chunk
    offset += len
    n++
  }
}

/** Readable over dataChunks(). */
export function dataStream(size, opts) {
  return Readable.from(dataChunks(size, opts), { objectMode: false })
}

const expectedCache = new Map()

/**
 * sha256 (hex) of the first `size` bytes of the payload described by opts
 * (memoized). Because chunks are deterministic this is also the hash of any
 * prefix of a longer payload with the same options.
 */
export function expectedSha256(size, opts = {}) {
  const key = JSON.stringify([size, opts.seed, opts.hex, opts.chunkSize, opts.startChunk, opts.marker?.toString('hex')])
  let v = expectedCache.get(key)
  if (!v) {
    const h = createHash('sha256')
    for (const c of dataChunks(size, opts)) h.update(c)
    v = h.digest('hex')
    expectedCache.set(key, v)
  }
  return v
}

export function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex')
}

/** Concatenation of the first `size` payload bytes (keep small). */
export function dataBuffer(size, opts) {
  return Buffer.concat([...dataChunks(size, opts)])
}

function streamGone() {
  return new Error('stream closed before the expected data arrived')
}

/**
 * Hashes a Readable until it ends. Resolves { sha256, bytes }.
 * Rejects if the stream errors or closes without 'end'.
 * With `limit`, resolves as soon as `limit` bytes arrived (extra bytes are an error).
 * `onBytes(total, hash)` is called after every chunk (`hash.copy().digest('hex')`
 * is the sha256 of everything received so far).
 */
export function hashStream(readable, { limit, onBytes } = {}) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256')
    let bytes = 0
    let done = false
    const finish = (err) => {
      if (done) return
      done = true
      readable.off('data', onData)
      readable.off('end', onEnd)
      readable.off('error', onError)
      readable.off('close', onClose)
      if (err) {
        err.bytesSoFar = bytes
        reject(err)
      } else resolve({ sha256: h.digest('hex'), bytes })
    }
    const onData = (d) => {
      if (limit !== undefined && bytes + d.length > limit) {
        return finish(new Error(`received ${bytes + d.length} bytes, more than the ${limit} expected`))
      }
      h.update(d)
      bytes += d.length
      if (onBytes) onBytes(bytes, h)
      if (limit !== undefined && bytes === limit) finish()
    }
    const onEnd = () => {
      if (limit !== undefined && bytes !== limit) {
        return finish(new Error(`stream ended after ${bytes} of ${limit} bytes`))
      }
      finish()
    }
    const onError = (e) => finish(e)
    const onClose = () => setImmediate(() => finish(streamGone()))
    readable.on('data', onData)
    readable.on('end', onEnd)
    readable.on('error', onError)
    readable.on('close', onClose)
  })
}

/** Hashes exactly `n` bytes from a Readable (does not wait for 'end'). */
export function hashExactly(readable, n, opts = {}) {
  return hashStream(readable, { ...opts, limit: n })
}

/** Collects a Readable into a Buffer (until 'end'). */
export function collect(readable) {
  return new Promise((resolve, reject) => {
    const chunks = []
    readable.on('data', (d) => chunks.push(d))
    readable.once('end', () => resolve(Buffer.concat(chunks)))
    readable.once('error', reject)
  })
}

/**
 * Writes `size` payload bytes to `writable`, honouring backpressure.
 * Resolves { sha256, bytes, writeReturnedFalse, maxWritableLength } after the
 * last write() was accepted (and, with `end: true`, after end() was called).
 * `onProgress(bytesWritten)` is awaited after each accepted chunk when given.
 */
export async function writePayload(writable, size, opts = {}) {
  const { end = false, onProgress } = opts
  const h = createHash('sha256')
  let bytes = 0
  let writeReturnedFalse = false
  let maxWritableLength = 0
  let failed = null
  const onError = (e) => {
    failed = failed || e
  }
  writable.on('error', onError)
  try {
    for (const chunk of dataChunks(size, opts)) {
      if (failed) throw failed
      if (writable.destroyed || writable.writableEnded) {
        throw Object.assign(new Error(`writable closed after ${bytes} bytes`), { bytesSoFar: bytes })
      }
      h.update(chunk)
      bytes += chunk.length
      const ok = writable.write(chunk)
      if (typeof writable.writableLength === 'number') {
        maxWritableLength = Math.max(maxWritableLength, writable.writableLength)
      }
      if (!ok) {
        writeReturnedFalse = true
        await waitDrain(writable, () => failed)
      }
      if (onProgress) await onProgress(bytes)
    }
    if (failed) throw failed
    if (end) writable.end()
  } finally {
    writable.off('error', onError)
  }
  return { sha256: h.digest('hex'), bytes, writeReturnedFalse, maxWritableLength }
}

function waitDrain(writable, getFailure) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      writable.off('drain', onDrain)
      writable.off('close', onClose)
      writable.off('error', onErr)
    }
    const onDrain = () => {
      cleanup()
      resolve()
    }
    const onClose = () => {
      cleanup()
      reject(getFailure() || new Error('writable closed while waiting for drain'))
    }
    const onErr = (e) => {
      cleanup()
      reject(e)
    }
    writable.on('drain', onDrain)
    writable.on('close', onClose)
    writable.on('error', onErr)
  })
}

/** Promise that rejects after `ms` with a labelled error, unless `p` settles first. */
export function withTimeout(p, ms, label = 'operation') {
  let timer
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${label} timed out after ${ms} ms`)), ms)
      timer.unref?.()
    }),
  ]).finally(() => clearTimeout(timer))
}

/** Resolves with the first argument of `event`, rejects on 'error' (unless event is 'error'). */
export function onceEvent(emitter, event, { timeout, label } = {}) {
  const p = new Promise((resolve, reject) => {
    const onEvt = (...args) => {
      cleanup()
      resolve(args.length > 1 ? args : args[0])
    }
    const onErr = (e) => {
      cleanup()
      reject(e)
    }
    const cleanup = () => {
      emitter.off(event, onEvt)
      if (event !== 'error') emitter.off('error', onErr)
    }
    emitter.on(event, onEvt)
    if (event !== 'error') emitter.on('error', onErr)
  })
  return timeout ? withTimeout(p, timeout, label || `waiting for '${event}'`) : p
}

export const delay = (ms) => new Promise((r) => setTimeout(r, ms))
