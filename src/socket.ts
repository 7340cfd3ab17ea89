// KtlsSocket: a Duplex over a TCP descriptor taken from a net.Socket. The
// handshake runs in rustls; afterwards the kernel (or rustls, when the
// kernel cannot) carries the records. Names and events follow node:tls.
import { Duplex } from 'node:stream'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import type { Connection, HandshakeInfo, SocketAddress } from '../binding/index'
import { binding, holdLoop, register, releaseLoop, unregister, READABLE, WRITABLE } from './native'
import { KtlsError, fromNative, verifyError } from './errors'
import { contextFor, type KtlsMode, type SecureContext, type SecureContextOptions } from './context'
import { validateOptions } from './options'

export interface KtlsSocketOptions extends SecureContextOptions {
  isServer?: boolean
  /** Server side: the server that emits `tlsClientError`. */
  server?: net.Server
  secureContext?: SecureContext
  servername?: string
  host?: string
  rejectUnauthorized?: boolean
  checkServerIdentity?: (hostname: string, cert: tls.PeerCertificate) => Error | undefined
  handshakeTimeout?: number
  ktls?: KtlsMode
  allowHalfOpen?: boolean
  /**
   * Benchmarks only: no TLS at all. The socket runs exactly the code that
   * carries records after offload (record reader, Duplex, write path) over
   * a plain TCP connection, so that path can be measured where the kernel
   * has no kTLS. Never use it for real traffic: nothing is encrypted.
   */
  unencryptedBenchmarkOnly?: boolean
}

/** Whether each direction is encrypted by the kernel, and why not. */
export interface KtlsStatus {
  tx: boolean
  rx: boolean
  cipher: string
  reason?: string
}

const READ_SIZE = 64 * 1024
const SMALL_READ = 16 * 1024

// One scratch buffer for every socket: reads are synchronous on this
// thread, so idle sockets hold no read memory at all.
let readBuffer = Buffer.allocUnsafe(READ_SIZE)
const DEFAULT_HANDSHAKE_TIMEOUT = 120_000

/**
 * A connection a server accepted, still as libuv's TCP handle (what
 * net.Server passes to `onconnection`): ktls takes its descriptor without
 * building a net.Socket around it.
 */
export interface AcceptedHandle {
  readonly fd: number
  /** Only TCP handles have it; its presence is what tells them apart. */
  getpeername(out: Partial<net.AddressInfo>): number
  close(): void
}

export function isAcceptedHandle(source: net.Socket | AcceptedHandle): source is AcceptedHandle {
  return !(source instanceof Duplex) && typeof (source as AcceptedHandle).getpeername === 'function'
}

interface PendingWrite {
  chunks: Buffer[]
  index: number
  offset: number
  callback: (err?: Error | null) => void
}

export class KtlsSocket extends Duplex {
  readonly encrypted = true
  authorized = false
  authorizationError: string | null = null
  alpnProtocol: string | false = false
  servername: string | false = false
  ktls: KtlsStatus = { tx: false, rx: false, cipher: '', reason: 'handshake not finished' }
  bytesRead = 0
  bytesWritten = 0
  connecting = true
  /** The idle timeout set by setTimeout() (read by https.Agent). */
  timeout = 0

  private readonly options: KtlsSocketOptions
  private readonly isServer: boolean
  private context: SecureContext
  private conn?: Connection
  private token = 0
  private reactor?: ReturnType<typeof register>['reactor']
  private secure = false
  /** rustls seals records here, so ciphertext may wait in Rust for flush(). */
  private userspaceRecords = false
  private info?: HandshakeInfo
  private wantRead = false
  private wantWrite = false
  /** The interest armed and not reported yet (epoll arms are one-shot). */
  private armed = 0
  private reading = false
  private pending?: PendingWrite
  private finalCallback?: (err?: Error | null) => void
  private handshakeTimer?: NodeJS.Timeout
  private idleTimer?: NodeJS.Timeout
  private referenced = false
  private peerCert?: tls.DetailedPeerCertificate
  /** Addresses, looked up on first use (null: not an IP socket). */
  private peerAddr?: SocketAddress | null
  private localAddr?: SocketAddress | null

  constructor(socket: net.Socket | AcceptedHandle, options: KtlsSocketOptions = {}) {
    super({ allowHalfOpen: options.allowHalfOpen ?? false, emitClose: true, autoDestroy: true })
    this.options = options
    this.isServer = options.isServer === true
    validateOptions(options)
    this.context = contextFor(options)
    // Build (and so validate) the rustls configuration now, synchronously.
    if (options.unencryptedBenchmarkOnly === true) {
      // no TLS, no configuration
    } else if (this.isServer) this.context.serverContext()
    else this.context.clientContext()
    this.setRef(true)
    const timeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT
    if (timeout > 0) {
      this.handshakeTimer = setTimeout(() => this.onHandshakeTimeout(), timeout)
      this.handshakeTimer.unref()
    }
    if (isAcceptedHandle(socket)) {
      process.nextTick(() => this.takeOverHandle(socket))
    } else if (socket.connecting) {
      socket.once('connect', () => this.takeOver(socket))
      socket.once('error', (err) => this.fail(err))
    } else {
      process.nextTick(() => this.takeOver(socket))
    }
  }

  // ---- takeover and handshake ----

  private takeOver(socket: net.Socket): void {
    if (this.destroyed) {
      socket.destroy()
      return
    }
    socket.removeAllListeners('error')
    socket.on('error', () => {}) // its fd is ours now; late errors are moot
    const handle = (socket as unknown as { _handle?: { fd?: number; readStop?: () => void } })._handle
    const fd = handle?.fd
    if (typeof fd !== 'number' || fd < 0) {
      return this.fail(new KtlsError('ERR_KTLS_NO_FD', 'socket has no file descriptor (closed, or not a libuv stream)'))
    }
    socket.pause()
    handle?.readStop?.()
    const alreadyRead = drainReadable(socket)
    // Reading the stream may have asked libuv to start reading again; stop
    // it before the loop polls. The handle is closed below in this same tick.
    handle?.readStop?.()
    this.adopt(fd, alreadyRead, () => socket.destroy())
  }

  private takeOverHandle(handle: AcceptedHandle): void {
    if (this.destroyed) return handle.close()
    this.adopt(handle.fd, undefined, () => handle.close())
  }

  /** Opens the Connection on a duplicate of `fd`, then lets libuv close its own. */
  private adopt(fd: number, alreadyRead: Buffer | undefined, closeOriginal: () => void): void {
    const { token, reactor } = register(this)
    this.token = token
    this.reactor = reactor
    try {
      this.conn = this.openConnection(fd)
      if (alreadyRead && alreadyRead.length > 0) this.conn.prependReceived(alreadyRead)
    } catch (err) {
      closeOriginal()
      return this.fail(fromNative(err))
    }
    closeOriginal()
    this.connecting = false
    // http's client waits for 'connect' before arming req.setTimeout().
    if (!this.isServer) this.emit('connect')
    this.handshakeStep()
  }

  private openConnection(fd: number): Connection {
    if (this.options.unencryptedBenchmarkOnly === true) {
      return binding.rawConnection(fd, this.reactor!, this.token)
    }
    const mode = this.options.ktls ?? 'auto'
    if (this.isServer) {
      return binding.acceptServer(this.context.serverContext(), fd, mode, this.reactor!, this.token)
    }
    const servername = this.options.servername || this.options.host || 'localhost'
    return binding.connectClient(this.context.clientContext(), fd, servername, mode, this.reactor!, this.token)
  }

  private handshakeStep(): void {
    let progress: number
    try {
      progress = this.conn!.handshake()
    } catch (err) {
      return this.fail(fromNative(err))
    }
    if (progress === 2) return this.onHandshakeDone()
    this.armed = progress === 0 ? READABLE : WRITABLE // the binding armed the wait
  }

  private onHandshakeDone(): void {
    clearTimeout(this.handshakeTimer)
    const conn = this.conn!
    this.info = conn.info()
    const offload = this.info.offload
    this.ktls = { tx: offload.tx, rx: offload.rx, cipher: this.info.cipher }
    this.userspaceRecords = !offload.tx && this.options.unencryptedBenchmarkOnly !== true
    if (offload.reason !== undefined) this.ktls.reason = offload.reason
    this.alpnProtocol = this.info.alpnProtocol ?? false
    this.servername = this.info.servername ?? false
    const verify = !this.isServer && this.options.unencryptedBenchmarkOnly !== true
    if (verify && !this.verifyPeer()) return
    this.secure = true
    this.touch()
    if (this.isServer) {
      this.authorized = false // no client certificates are requested
      this.emit('secure')
    } else {
      this.emit('secure')
      this.emit('secureConnect')
    }
    if (this.pending) this.writeLoop()
    if (this.finalCallback && !this.pending) this.finish()
    // Like net.Socket: start reading into the buffer (up to highWaterMark)
    // even before a consumer attaches, so EOF and alerts are noticed.
    if (this.reading) this.readLoop()
    else this.read(0)
  }

  /** Node's order: chain first, then checkServerIdentity; reject only if asked. */
  private verifyPeer(): boolean {
    const chainCode = this.info!.chainError ? this.refineChainError(this.info!.chainError) : undefined
    let error: Error | undefined = chainCode ? verifyError(chainCode) : undefined
    if (!error) {
      const check = this.options.checkServerIdentity ?? tls.checkServerIdentity
      const host = this.options.servername || this.options.host || 'localhost'
      error = check(host, this.getPeerCertificate()) ?? undefined
    }
    if (!error) {
      this.authorized = true
      return true
    }
    this.authorizationError = (error as { code?: string }).code ?? error.message
    if (this.options.rejectUnauthorized === false) return true
    this.destroy(error)
    return false
  }

  /** webpki reports "unknown issuer"; Node distinguishes why. */
  private refineChainError(code: string): string {
    if (code !== 'UNKNOWN_ISSUER') return code
    const chain = this.info!.peerCertificates.map((der) => new X509Certificate(der))
    const selfSigned = (c: X509Certificate) => c.subject === c.issuer && c.verify(c.publicKey)
    if (chain.length === 1 && selfSigned(chain[0])) return 'DEPTH_ZERO_SELF_SIGNED_CERT'
    if (chain.length > 1 && selfSigned(chain[chain.length - 1])) return 'SELF_SIGNED_CERT_IN_CHAIN'
    return chain.length === 1 ? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' : 'UNABLE_TO_GET_ISSUER_CERT'
  }

  private onHandshakeTimeout(): void {
    if (this.secure || this.destroyed) return
    this.fail(new KtlsError('ERR_TLS_HANDSHAKE_TIMEOUT', 'TLS handshake timeout'))
  }

  /** Handshake failures of a server socket go to the server, as node:tls does. */
  private fail(err: Error): void {
    if (this.destroyed) return
    const server = this.options.server
    if (!this.secure && this.isServer && server) {
      server.emit('tlsClientError', err, this)
      this.destroy()
      return
    }
    this.destroy(err)
  }

  // ---- readiness ----

  /**
   * Called by the reactor; one report per arm. Native failures are caught
   * where they happen; what a user callback throws goes on to the dispatcher.
   */
  onReady(bits: number): void {
    this.armed = 0 // one report per arm: nothing is armed any more
    this.handleReady(bits)
  }

  private handleReady(bits: number): void {
    const wantedRead = this.wantRead
    const wantedWrite = this.wantWrite
    this.wantRead = false
    this.wantWrite = false
    if (!this.secure) return this.handshakeStep()
    if (bits & WRITABLE && wantedWrite) this.onWritable()
    else if (wantedWrite) this.wantWrite = true
    if (bits & READABLE && wantedRead) this.readLoop()
    else if (wantedRead) this.wantRead = true
    this.arm()
  }

  private want(bits: number): void {
    if (bits & READABLE) this.wantRead = true
    if (bits & WRITABLE) this.wantWrite = true
    this.arm()
  }

  private arm(): void {
    if (!this.conn || this.destroyed) return
    const interest = (this.wantRead ? READABLE : 0) | (this.wantWrite ? WRITABLE : 0)
    if (interest === 0 || interest === this.armed) return
    try {
      this.conn.arm(interest)
    } catch (err) {
      return this.fail(fromNative(err))
    }
    this.armed = interest
  }

  // ---- reading ----

  override _read(): void {
    this.reading = true
    if (this.secure && !this.wantRead) this.readLoop()
  }

  private readLoop(): void {
    const conn = this.conn
    while (conn && !this.destroyed) {
      let n: number
      const rearm = this.wantWrite ? READABLE | WRITABLE : READABLE
      try {
        // On EAGAIN the binding re-arms `rearm` in the same call.
        n = conn.read(readBuffer, rearm)
      } catch (err) {
        return this.fail(fromNative(err))
      }
      if (n < 0) {
        this.wantRead = true
        this.armed = rearm
        return
      }
      if (n === 0) {
        this.reading = false
        this.push(null)
        this.read(0) // as net.Socket: lets 'end' fire when nothing is buffered
        return
      }
      this.bytesRead += n
      this.touch()
      if (!this.push(this.takeChunk(n))) {
        this.reading = false
        return
      }
    }
  }

  /** Big reads hand over the scratch buffer; small ones are copied out of it. */
  private takeChunk(n: number): Buffer {
    if (n < SMALL_READ) return Buffer.from(readBuffer.subarray(0, n))
    const chunk = readBuffer.subarray(0, n)
    readBuffer = Buffer.allocUnsafe(READ_SIZE)
    return chunk
  }

  // ---- writing ----

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.startWrite([chunk], callback)
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    this.startWrite(
      chunks.map((c) => c.chunk),
      callback,
    )
  }

  private startWrite(chunks: Buffer[], callback: (err?: Error | null) => void): void {
    this.pending = { chunks, index: 0, offset: 0, callback }
    if (this.secure) this.writeLoop()
  }

  private onWritable(): void {
    if (this.pending) this.writeLoop()
    else if (this.finalCallback) this.finish()
  }

  private writeLoop(): void {
    const job = this.pending!
    const conn = this.conn!
    try {
      while (job.index < job.chunks.length) {
        const chunk = job.chunks[job.index]
        const n = job.offset < chunk.length ? conn.write(chunk.subarray(job.offset)) : 0
        if (n < 0) return this.want(WRITABLE)
        job.offset += n
        this.bytesWritten += n
        if (job.offset >= chunk.length) {
          job.index++
          job.offset = 0
        }
      }
      if (this.userspaceRecords && !conn.flush()) return this.want(WRITABLE)
    } catch (err) {
      this.pending = undefined
      return job.callback(fromNative(err))
    }
    this.pending = undefined
    this.touch()
    job.callback()
    if (this.finalCallback) this.finish()
  }

  /** end(): close_notify (RFC 8446 §6.1), then FIN. */
  override _final(callback: (err?: Error | null) => void): void {
    this.finalCallback = callback
    if (this.secure && !this.pending) this.finish()
  }

  private finish(): void {
    const callback = this.finalCallback!
    try {
      if (!this.conn!.end()) return this.want(WRITABLE)
    } catch (err) {
      this.finalCallback = undefined
      return callback(fromNative(err))
    }
    this.finalCallback = undefined
    callback()
  }

  // ---- teardown ----

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.handshakeTimer)
    clearTimeout(this.idleTimer)
    this.conn?.destroy()
    if (this.token) unregister(this.token)
    this.setRef(false)
    this.pending?.callback(err ?? new KtlsError('ERR_STREAM_DESTROYED', 'socket destroyed'))
    this.pending = undefined
    callback(err)
  }

  // ---- node:tls / net.Socket surface ----

  getPeerCertificate(detailed = false): tls.PeerCertificate | tls.DetailedPeerCertificate {
    const chain = this.info?.peerCertificates ?? []
    if (chain.length === 0) return {} as tls.PeerCertificate
    if (!this.peerCert) {
      const legacy = chain.map((der) => new X509Certificate(der).toLegacyObject() as tls.DetailedPeerCertificate)
      for (let i = 0; i < legacy.length; i++) legacy[i].issuerCertificate = legacy[i + 1] ?? legacy[i]
      this.peerCert = legacy[0]
    }
    if (detailed) return this.peerCert
    const { issuerCertificate: _issuer, ...plain } = this.peerCert
    return plain as tls.PeerCertificate
  }

  getCipher(): tls.CipherNameAndProtocol | undefined {
    if (!this.info) return undefined
    return { name: this.info.cipher, standardName: this.info.cipher, version: this.info.protocol }
  }

  getProtocol(): string | null {
    return this.info?.protocol ?? null
  }

  isSessionReused(): boolean {
    return false
  }

  get remoteAddress(): string | undefined {
    return this.lookUp('peerAddr')?.address
  }

  get remotePort(): number | undefined {
    return this.lookUp('peerAddr')?.port
  }

  get remoteFamily(): string | undefined {
    return this.lookUp('peerAddr')?.family
  }

  get localAddress(): string | undefined {
    return this.lookUp('localAddr')?.address
  }

  get localPort(): number | undefined {
    return this.lookUp('localAddr')?.port
  }

  /** As net.Socket: asked of the descriptor on first use, then remembered. */
  private lookUp(which: 'peerAddr' | 'localAddr'): SocketAddress | undefined {
    if (this[which] === undefined && this.conn && !this.destroyed) {
      try {
        this[which] = (which === 'peerAddr' ? this.conn.peerAddress() : this.conn.localAddress()) ?? null
      } catch {
        return undefined
      }
    }
    return this[which] ?? undefined
  }

  address(): net.AddressInfo | Record<string, never> {
    const local = this.lookUp('localAddr')
    return local ? { address: local.address, port: local.port, family: local.family } : {}
  }

  setNoDelay(noDelay = true): this {
    this.whenOpen((conn) => conn.setNoDelay(noDelay))
    return this
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.whenOpen((conn) => conn.setKeepAlive(enable, Math.floor(initialDelay / 1000)))
    return this
  }

  /** As net.Socket: 0 disables the idle timer and removes `callback`. */
  setTimeout(ms: number, callback?: () => void): this {
    clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    this.timeout = ms
    if (callback) {
      if (ms > 0) this.once('timeout', callback)
      else this.removeListener('timeout', callback)
    }
    if (ms > 0) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms)
      this.idleTimer.unref()
    }
    return this
  }

  /** As net.Socket: end, then destroy once everything was written. */
  destroySoon(): void {
    if (this.writable) this.end()
    if (this.writableFinished) this.destroy()
    else this.once('finish', () => this.destroy())
  }

  ref(): this {
    this.setRef(true)
    return this
  }

  unref(): this {
    this.setRef(false)
    return this
  }

  private setRef(on: boolean): void {
    if (on === this.referenced || (on && this.destroyed)) return
    this.referenced = on
    if (on) holdLoop()
    else releaseLoop()
  }

  private touch(): void {
    this.idleTimer?.refresh()
  }

  private whenOpen(apply: (conn: Connection) => void): void {
    const run = () => {
      try {
        if (this.conn && !this.destroyed) apply(this.conn)
      } catch (err) {
        this.destroy(fromNative(err))
      }
    }
    if (this.conn) run()
    else this.once('secure', run)
  }
}

/** Bytes a paused net.Socket had already read into its stream buffer. */
function drainReadable(socket: net.Socket): Buffer {
  // Nothing buffered (a server socket accepted paused): read() would only
  // make libuv start and stop watching the descriptor.
  if (socket.readableLength === 0) return Buffer.alloc(0)
  const chunks: Buffer[] = []
  let chunk: Buffer | null
  while ((chunk = socket.read()) !== null) chunks.push(chunk)
  return Buffer.concat(chunks)
}
