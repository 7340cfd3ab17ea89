// KtlsSocket: a net.Socket whose TLS handshake runs in rustls. Once the
// kernel holds both directions' keys, libuv's own TCP handle carries the
// data (Node's native fast paths included) and ktls only acts on the
// records that are not application data. When the kernel cannot take the
// connection, rustls carries the records in userspace behind the same class.
import * as net from 'node:net'
import { constants as osConstants } from 'node:os'
import { ControlKind, HandshakeProgress, type Connection } from '../binding/index'
import { AES_GCM_RECORD_LIMIT, KeyUpdates, type KeyUpdateHost } from './keyupdate'
import { binding, holdLoop, register, releaseLoop, stickyArms, unregister, READABLE, WRITABLE } from './native'
import { KtlsError, argumentError, fromNative } from './errors'
import { hasCredentials } from './context'
import { DuplexCarrier } from './carrier'
import { TlsSurface, type KeyingSource, type KtlsSocketOptions } from './tls-surface'
import { cancelFileSends, isFileMarker, runFileWrite, sendFile, writevAroundFiles, type FileSource, type SendFileOptions } from './sendfile'
import type { Duplex } from 'node:stream'
import {
  attachHandle,
  detachHandle,
  handleOf,
  interceptReadErrors,
  lookUpAddressesThrough,
  moveHandle,
  readIntoUserBuffer,
  reopenAfterReadError,
  setParentSocket,
  timeOutAsTlsSocketsDo,
  touchTimer,
  userReadBuffer,
  type StreamHandle,
} from './internals'
import { canceledWrite, coalesce, drainReadable, isDuplex, isGone, toBuffer, wrappedAllowHalfOpen } from './transport'

export type { ALPNCallback, KtlsSocketOptions, KtlsStatus, SNICallback } from './tls-surface'

/**
 * Who moves the bytes: rustls's handshake; libuv (both directions offloaded:
 * the kernel encrypts whatever libuv writes); or ktls's own loop (rustls in
 * userspace, or an offloaded socket whose libuv handle could not be reopened
 * after a control record because a write was in flight); or a carrier (rustls
 * over a transport with no descriptor of ours: any Duplex, a TLS socket).
 */
type Engine = 'handshake' | 'libuv' | 'own' | 'carrier' | 'closed'

const READ_SIZE = 64 * 1024
const SMALL_READ = 16 * 1024

// One scratch buffer for every socket: reads are synchronous on this
// thread, so idle sockets hold no read memory at all.
let readBuffer = Buffer.allocUnsafe(READ_SIZE)
// What the binding's last read() or write() said beside its result (read:
// nothing more until readiness; write: nothing left queued). Read at once:
// user code run by a push may call the binding again.
const ioState = Buffer.alloc(1)
const DEFAULT_HANDSHAKE_TIMEOUT = 120_000

/** A connection a server accepted, still as libuv's handle (what `onconnection` gets). */
export type AcceptedHandle = StreamHandle

export function isAcceptedHandle(source: net.Socket | Duplex | AcceptedHandle): source is AcceptedHandle {
  return !isDuplex(source) && typeof (source as AcceptedHandle).getpeername === 'function'
}

interface HeldWrite {
  chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>
  callback: (err?: Error | null) => void
}

interface PendingWrite {
  chunks: Buffer[]
  index: number
  offset: number
  callback: (err?: Error | null) => void
}

const netSocket = net.Socket.prototype as unknown as {
  _read(n: number): void
  _write(chunk: unknown, encoding: BufferEncoding, cb: (err?: Error | null) => void): void
  _writev(chunks: unknown[], cb: (err?: Error | null) => void): void
  _final(cb: (err?: Error | null) => void): void
  _destroy(err: Error | null, cb: (err?: Error | null) => void): void
}

export class KtlsSocket extends TlsSurface {
  private engine: Engine = 'handshake'
  /** libuv's handle: kept out of `_handle` until both directions are offloaded. */
  private tcp?: StreamHandle
  private conn?: Connection
  private token = 0
  /** rustls seals records here, so ciphertext may wait in Rust for flush(). */
  private userspaceRecords = false
  private wantRead = false
  private wantWrite = false
  /** The interest armed and not reported yet (epoll arms are one-shot). */
  private armed = 0
  /** The stream asked for data (ktls's own loop, or before the handshake ended). */
  private reading = false
  /** A write issued before the handshake ended. */
  private held?: HeldWrite
  private ownWrite?: PendingWrite
  /** setMaxSendFragment() before the connection existed. */
  private maxSendFragment?: number
  /** KeyUpdates of our sending key, once the handshake is over. */
  private keys?: KeyUpdates
  private finalCallback?: (err?: Error | null) => void
  private handshakeTimer?: NodeJS.Timeout
  private wantRef = true
  private holdsLoop = false
  private ownBytesRead = 0
  private ownBytesWritten = 0
  /** The TCP socket still connecting: socket options wait on it. */
  private connectingRaw?: net.Socket
  /** Records carried over a transport that has no descriptor of ours. */
  private carrier?: DuplexCarrier
  /** The binding keeps key log lines for 'keylog' listeners. */
  private keylogOn = false
  /** The TCP socket of `new KtlsSocket()`, until connect() is called. */
  private pendingRaw?: net.Socket
  /** node:tls's "control released": connect() at once, a server at 'secure'; never for a socket made by hand. */
  private controlReleased = false
  /** Until control is released, an 'error' is a TLS error ('_tlsError') that never goes unhandled, as node:tls's. */
  private readonly errorAsTlsError = (err: Error): void => {
    this.emit('_tlsError', err)
  }

  constructor(socket?: net.Socket | Duplex | AcceptedHandle | null, options: KtlsSocketOptions = {}) {
    const accepted = socket != null && isAcceptedHandle(socket)
    super(
      {
      // As tls.TLSSocket: a socket it wraps has its say, the option otherwise.
      // (A server's own connections follow the server's options.)
      allowHalfOpen: (options.server ? undefined : wrappedAllowHalfOpen(socket)) ?? options.allowHalfOpen ?? false,
      signal: options.signal,
      highWaterMark: options.highWaterMark,
      onread: options.onread ?? undefined,
      // An accepted handle is ours from the start; reading waits for the handshake.
      ...(accepted ? { handle: socket, manualStart: true } : {}),
      } as net.SocketConstructorOpts,
      options,
    )
    // Build (and so validate) the rustls configuration now, synchronously.
    if (options.unencryptedBenchmarkOnly === true) {
      // no TLS, no configuration
    } else if (!this.isServer) this.context.clientContext()
    else if (hasCredentials(this.context.options)) this.context.serverContext(options)
    const timeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT
    if (timeout > 0) {
      this.handshakeTimer = setTimeout(() => this.onHandshakeTimeout(), timeout)
      this.handshakeTimer.unref()
    }
    this.on('error', this.errorAsTlsError)
    // As node:tls's server does for its sockets: one 'error' listener always
    // there, so an error nobody else listens for (a client's reset) costs this
    // connection, not the process. Handshake failures went to 'tlsClientError'.
    if (this.isServer && options.server) this.on('error', swallowAfterSecure)
    if (accepted) {
      this.tcp = detachHandle(this) ?? undefined
      process.nextTick(() => this.begin())
    } else if (socket instanceof KtlsSocket || (isDuplex(socket) && !(socket instanceof net.Socket))) {
      this.carryOver(socket as Duplex)
    } else if (socket instanceof net.Socket) {
      this.wrapSocket(socket)
    } else if (socket == null) {
      // As `new tls.TLSSocket()`: a TCP socket of its own, secured once it connects.
      this.pendingRaw = new net.Socket({ allowHalfOpen: this.allowHalfOpen })
      this.wrapSocket(this.pendingRaw)
    } else {
      throw argumentError('ERR_INVALID_ARG_TYPE', 'KtlsSocket needs a net.Socket, a Duplex stream or an accepted handle to secure')
    }
  }

  protected keyingSource(): KeyingSource | undefined {
    return this.carrier ?? this.conn
  }

  protected resumedSessionToken(): Buffer | null | undefined {
    return this.conn?.resumedSession()
  }

  protected refuseHello(): void {
    if (this.carrier) return this.carrier.refuseHello()
    try {
      this.conn?.refuseHello()
    } catch {
      // Not at a ClientHello: the failure that follows says enough.
    }
  }

  // ---- takeover and handshake ----

  /** An existing net.Socket: its handle becomes ours, as node:tls wraps it. */
  private wrapSocket(raw: net.Socket): void {
    // Connecting, or not connected yet at all (its owner calls connect() later).
    if (raw.connecting || (!handleOf(raw) && !raw.destroyed)) {
      this.setConnecting(true)
      this.connectingRaw = raw
      raw.on('lookup', (...args) => this.emit('lookup', ...args))
      raw.once('connect', () => this.takeOver(raw))
      raw.once('error', (err) => this.fail(err))
    } else {
      process.nextTick(() => this.takeOver(raw))
    }
    setParentSocket(this, raw)
    // As with node:tls, the TCP socket and the TLS socket live and die together.
    raw.once('close', () => this.destroy())
    this.once('close', () => raw.destroy())
  }

  private takeOver(raw: net.Socket): void {
    this.connectingRaw = undefined
    if (this.destroyed) return
    this.setConnecting(false)
    if (raw.destroyed) return this.fail(new KtlsError('ERR_KTLS_NO_FD', 'socket has no file descriptor (closed)'))
    // A stream whose handle has no descriptor (not libuv's TCP or pipe): its
    // own stream API carries the records.
    const fd = handleOf(raw)?.fd
    if (typeof fd !== 'number' || fd < 0) return this.startCarrier(raw)
    raw.removeAllListeners('error')
    raw.on('error', () => {}) // its handle is ours now; its own late errors are moot
    raw.pause()
    const alreadyRead = drainReadable(raw)
    // Moving stops libuv reading (reading the stream may have started it again).
    this.tcp = moveHandle(raw, this) ?? undefined
    // http's client waits for 'connect' before arming req.setTimeout().
    if (!this.isServer) this.emit('connect')
    this.begin(alreadyRead)
  }

  /**
   * A transport with no descriptor of ours (a Duplex, a TLS socket): rustls
   * over its stream API, in userspace. They live and die together.
   */
  private carryOver(transport: Duplex): void {
    transport.once('close', () => this.destroy())
    this.once('close', () => transport.destroy())
    process.nextTick(() => this.startCarrier(transport))
  }

  private startCarrier(transport: Duplex): void {
    if (this.destroyed) return
    if ((this.options.ktls ?? 'auto') === 'require') {
      return this.fail(new KtlsError('ERR_KTLS_UNAVAILABLE', `kTLS required, but ${NO_DESCRIPTOR}`))
    }
    let conn
    try {
      if (!this.isServer) {
        conn = binding.streamClient(this.context.clientContext(), this.serverName())
      } else if (this.choosesContext()) {
        conn = binding.streamServerChoosing()
      } else {
        conn = binding.streamServer(this.context.serverContext(this.options))
      }
    } catch (err) {
      return this.fail(fromNative(err))
    }
    transport.pause()
    const alreadyRead = transport instanceof net.Socket ? drainReadable(transport) : undefined
    const carrier = new DuplexCarrier(transport, conn, {
      clientHello: (servername, protocols) => this.chooseContext(servername, protocols, (context) => carrier.acceptWith(context)),
      secure: () => this.onHandshakeDone(),
      data: (plaintext) => {
        this.ownBytesRead += plaintext.length
        touchTimer(this)
        return this.pushPlaintext(plaintext)
      },
      end: () => {
        this.push(null)
        this.read(0)
      },
      fail: (err) => this.fail(err),
      keylog: (lines) => this.emitKeylog(lines),
    })
    this.carrier = carrier
    if (this.wantsKeylog()) carrier.logKeys()
    if (!this.isServer) this.emit('connect')
    this.carrier.start(alreadyRead)
  }

  private begin(alreadyRead?: Buffer): void {
    if (this.destroyed) return
    const fd = this.tcp?.fd
    if (typeof fd !== 'number' || fd < 0) {
      return this.fail(new KtlsError('ERR_KTLS_NO_FD', 'socket has no file descriptor (closed, or not a libuv stream)'))
    }
    if (this.options.unencryptedBenchmarkOnly === true) return this.onHandshakeDone()
    const { token, reactor } = register(this)
    this.token = token
    try {
      // A server without a key or certificate finds out here, as node:tls does.
      this.conn = this.openConnection(fd, reactor)
      if (this.options.requireKeyUpdate) this.conn.requireKeyUpdate()
      if (this.maxSendFragment !== undefined) this.conn.setMaxSendFragment(this.maxSendFragment)
      if (this.wantsKeylog()) {
        this.conn.logKeys(true)
        this.keylogOn = true
      }
      if (alreadyRead && alreadyRead.length > 0) this.conn.prependReceived(alreadyRead)
    } catch (err) {
      return this.fail(fromNative(err))
    }
    this.updateLoopHold()
    this.handshakeStep()
  }

  private openConnection(fd: number, reactor: ReturnType<typeof register>['reactor']): Connection {
    const mode = this.options.ktls ?? 'auto'
    // With an SNICallback or ALPNCallback the context is chosen once the ClientHello is in.
    if (this.isServer && this.choosesContext()) return binding.acceptServerChoosing(fd, mode, reactor, this.token)
    if (this.isServer) return binding.acceptServer(this.context.serverContext(this.options), fd, mode, reactor, this.token)
    const servername = this.serverName()
    const session = Buffer.isBuffer(this.options.session) ? this.options.session : undefined
    return binding.connectClient(this.context.clientContext(), fd, servername, mode, reactor, this.token, session)
  }

  private handshakeStep(): void {
    let progress: HandshakeProgress
    try {
      progress = this.conn!.handshake()
    } catch (err) {
      this.takeKeylog()
      return this.fail(fromNative(err))
    }
    this.takeKeylog()
    if (progress === HandshakeProgress.Done) return this.onHandshakeDone()
    if (progress === HandshakeProgress.ClientHello) {
      const conn = this.conn!
      return this.chooseContext(conn.requestedServername() ?? null, conn.offeredAlpn() ?? null, (context) => {
        conn.acceptWith(context)
        this.handshakeStep()
      })
    }
    this.setArmed(progress === HandshakeProgress.WantRead ? READABLE : WRITABLE) // the binding armed it
  }

  private onHandshakeDone(): void {
    clearTimeout(this.handshakeTimer)
    const raw = this.options.unencryptedBenchmarkOnly === true
    if (this.conn || this.carrier) {
      this.info = this.carrier ? this.carrier.info(NO_DESCRIPTOR) : this.conn!.info()
      const offload = this.info.offload
      this.ktls = { tx: offload.tx, rx: offload.rx, cipher: this.info.cipher }
      if (offload.reason !== undefined) this.ktls.reason = offload.reason
      this.alpnProtocol = this.info.alpnProtocol ?? false
      this.servername = this.info.servername ?? false
      if (!this.isServer && !this.verifyPeer()) return
      if (this.isServer && this.options.requestCert && !this.verifyClient()) return
    } else {
      this.ktls = { tx: false, rx: false, cipher: '', reason: 'raw benchmark socket: no TLS' }
    }
    const offloaded = raw || (this.ktls.tx && this.ktls.rx)
    if (this.carrier) this.engine = 'carrier'
    else if (offloaded) this.useLibuv()
    else this.useOwnLoop()
    this.secure = true
    // A TLS 1.2 session exists at the handshake's end: getSession() has it in
    // 'secureConnect', and 'session' follows, as node:tls's.
    const sessions = this.isServer ? [] : this.takeSessions()
    if (sessions.length > 0) this.sessionToken = sessions[sessions.length - 1]
    this.emit('secure')
    if (!this.isServer) this.emit('secureConnect')
    this.emitSessions(sessions)
    this.releaseHeld()
    // A read the stream asked for during the handshake is still owed; else
    // start reading (up to the high-water mark, paused or not, as node:tls)
    // so that EOF and alerts are noticed. On the next turn of the loop, as
    // node:tls's next read: code awaiting 'secureConnect' still finds the
    // socket open when the peer closed right after its Finished.
    setImmediate(() => {
      if (this.destroyed) return
      if (this.reading) this._read(READ_SIZE)
      else this.read(0)
    })
  }

  /** Both directions offloaded: libuv's handle carries the data from now on. */
  private useLibuv(): void {
    this.engine = 'libuv'
    if (this.conn) {
      const aesGcm = /AES_\d+_GCM/.test(this.ktls.cipher)
      const limit = this.options.recordLimit ?? (aesGcm ? AES_GCM_RECORD_LIMIT : undefined)
      this.keys = new KeyUpdates(this.keyUpdateHost(), limit, binding.capabilities().rekey && this.getProtocol() === 'TLSv1.3')
    }
    // libuv reads from here on: the handshake's last interest must not report.
    if (this.conn && this.armed !== 0) {
      this.conn.disarm()
      this.setArmed(0)
    }
    const tcp = this.tcp!
    if (this.conn) interceptReadErrors(tcp, (errno) => this.onKernelReadError(errno))
    attachHandle(this, tcp)
    readIntoUserBuffer(this, tcp)
    this.updateLoopHold()
  }

  private useOwnLoop(): void {
    this.engine = 'own'
    // rustls keeps the records-per-key limit on this path.
    if (this.conn && !this.keys) this.keys = new KeyUpdates(this.keyUpdateHost(), undefined, false)
    this.userspaceRecords = !this.ktls.tx
    this.updateLoopHold()
  }

  /** Replays what was written or ended during the handshake, in order. */
  private releaseHeld(): void {
    const held = this.held
    this.held = undefined
    if (held) this._writev(held.chunks, held.callback)
    const final = this.finalCallback
    if (final && !held) {
      this.finalCallback = undefined
      this._final(final)
    }
  }

  /** Emits what the last handshake step logged, when 'keylog' is wanted. */
  private takeKeylog(): void {
    if (!this.conn || !this.keylogOn) return
    const lines = this.conn.takeKeylog()
    if (lines.length > 0) this.emitKeylog(lines)
  }

  private onHandshakeTimeout(): void {
    if (this.secure || this.destroyed) return
    this.fail(new KtlsError('ERR_TLS_HANDSHAKE_TIMEOUT', 'TLS handshake timeout'))
  }

  /**
   * As node:tls: every TLS error is '_tlsError' first (through the standing
   * listener until control is released); a server socket's handshake failure
   * goes to its server ('tlsClientError'). Until control is released an
   * 'error' reaches only those who listen for it, never goes unhandled.
   */
  protected fail(err: Error): void {
    if (this.destroyed) return
    const error = this.secure ? err : asNodeReports(err, this.isServer, this.options)
    if (this.controlReleased) this.emit('_tlsError', error)
    if (!this.secure && this.isServer) this.options.server?.emit('tlsClientError', error, this)
    this.destroy(error)
  }

  /**
   * node:tls's `_releaseControl()`: errors from now on are the user's, unhandled
   * if nobody listens. false if it was released already.
   * @internal
   */
  _releaseControl(): boolean {
    if (this.controlReleased) return false
    this.controlReleased = true
    this.off('error', this.errorAsTlsError)
    return true
  }

  // ---- control records on an offloaded socket ----

  /** What libuv's read of an offloaded socket failed with, in ktls's terms. */
  private onKernelReadError(errno: number): boolean {
    if (errno === errnos.EIO) {
      this.onControlRecord()
      return true
    }
    if (!RECORD_ERRNOS.has(errno)) return false
    // ktls answers the peer with the alert its record earned, then reports.
    try {
      this.conn!.readFailed(errno)
    } catch (err) {
      this.destroy(fromNative(err))
    }
    return true
  }

  /**
   * libuv's read stopped at a record that is not application data (EIO).
   * Read and act on it, then let libuv read again.
   */
  private onControlRecord(): void {
    const tcp = this.tcp!
    let record
    try {
      record = this.conn!.controlRecord(readBuffer)
    } catch (err) {
      this.destroy(fromNative(err))
      return
    }
    if (!this.isServer) this.pullSessions() // a NewSessionTicket, read from the kernel
    const nodeWantsData = tcp.reading !== false
    // A write in flight keeps libuv from reopening, and the rest of a split
    // handshake message must be read by ktls (nothing may come between its
    // fragments): carry on with ktls's own loop.
    if (record.kind === ControlKind.Fragment || !reopenAfterReadError(tcp)) {
      detachHandle(this)
      this.useOwnLoop()
      if (this.deliverControl(record.kind, record.bytes) && nodeWantsData) this._read(READ_SIZE)
      return
    }
    if (!this.deliverControl(record.kind, record.bytes)) return
    this.flushControl()
    // libuv stops reading once this callback returns; restart it after that.
    setImmediate(() => {
      if (this.engine !== 'libuv' || this.destroyed || tcp.reading === false) return
      const err = tcp.readStart()
      if (err) this.destroy(new KtlsError('ERR_KTLS_IO', `read restart failed (${err})`))
    })
  }

  /**
   * Client: sessions rustls stored (a TLS 1.2 session, TLS 1.3 tickets) go
   * out as 'session' events, as node:tls's; the newest is getSession()'s.
   */
  private pullSessions(): void {
    this.emitSessions(this.takeSessions())
  }

  private takeSessions(): Buffer[] {
    try {
      return this.conn?.takeSessions() ?? []
    } catch {
      return []
    }
  }

  private emitSessions(tokens: Buffer[]): void {
    // As node:tls: during each 'session', getSession() is that session.
    for (const token of tokens) {
      this.sessionToken = token
      this.emit('session', Buffer.from(token))
    }
  }

  /** Pushes what a control read produced; false when the stream has ended. */
  private deliverControl(kind: ControlKind, bytes: number): boolean {
    if (kind === ControlKind.Eof) {
      this.push(null)
      this.read(0)
      return false
    }
    if (kind === ControlKind.Data) {
      this.ownBytesRead += bytes
      this.pushPlaintext(Buffer.from(readBuffer.subarray(0, bytes)))
    }
    return true
  }

  /** A KeyUpdate answer the socket could not take yet goes out when writable. */
  private flushControl(): void {
    try {
      if (!this.conn!.flush()) this.want(WRITABLE)
      else this.keys?.flushed()
    } catch (err) {
      this.destroy(fromNative(err))
    }
  }

  // ---- readiness (the handshake, ktls's own loop, control sends) ----

  /**
   * Called by the reactor; one report per arm. Native failures are caught
   * where they happen; what a user callback throws goes on to the dispatcher.
   * @internal
   */
  onReady(bits: number): void {
    if (!stickyArms) this.armed = 0 // one report per arm: nothing is armed any more
    if (this.destroyed) return
    if (this.engine === 'handshake') return this.handshakeStep()
    const wantedRead = this.wantRead
    const wantedWrite = this.wantWrite
    this.wantRead = false
    this.wantWrite = false
    if (bits & WRITABLE && wantedWrite) this.onWritable()
    else if (wantedWrite) this.wantWrite = true
    if (bits & READABLE && wantedRead) this.readLoop()
    else if (wantedRead) this.wantRead = true
    this.arm()
    this.updateHold()
  }

  private want(bits: number): void {
    if (bits & READABLE) this.wantRead = true
    if (bits & WRITABLE) this.wantWrite = true
    this.arm()
  }

  private arm(): void {
    if (!this.conn || this.destroyed) return
    const interest = (this.wantRead ? READABLE : 0) | (this.wantWrite ? WRITABLE : 0)
    if (interest === this.armed) return
    try {
      // A sticky interest nobody wants any more would keep reporting.
      if (interest === 0) this.conn.disarm()
      else this.conn.arm(interest)
    } catch (err) {
      return this.fail(fromNative(err))
    }
    this.setArmed(interest)
  }

  private onWritable(): void {
    if (this.engine === 'libuv') {
      this.flushControl()
      if (this.finalCallback) this.finishOffloaded(this.finalCallback)
      return
    }
    if (this.keys?.pending) this.flushControl()
    if (this.ownWrite) this.writeLoop()
    else if (this.finalCallback) this.finish()
  }

  // ---- reading ----

  override _read(n: number): void {
    if (this.engine === 'libuv') return netSocket._read.call(this, n)
    if (this.engine === 'carrier') return this.carrier!.resume()
    this.reading = true
    if (this.engine === 'own' && !this.wantRead) this.readLoop()
  }

  private readLoop(): void {
    const conn = this.conn
    while (conn && !this.destroyed && this.engine === 'own') {
      let n: number
      const rearm = this.wantWrite ? READABLE | WRITABLE : READABLE
      const user = userReadBuffer(this)
      try {
        // On EAGAIN, or data that leaves nothing more, the binding re-arms `rearm` in the same call.
        n = conn.read(user ? viewOf(user.buffer) : readBuffer, rearm, ioState)
      } catch (err) {
        this.destroy(fromNative(err))
        return
      }
      const waits = n > 0 && ioState[0] === 1
      if (waits) this.setArmed(rearm) // the binding armed it
      // A NewSessionTicket comes alone: it may be all this read did.
      if (!this.isServer) this.pullSessions()
      if (n < 0) {
        this.wantRead = true
        this.setArmed(rearm)
        return
      }
      if (n === 0) {
        this.reading = false
        this.push(null)
        this.read(0) // as net.Socket: lets 'end' fire when nothing is buffered
        return
      }
      this.ownBytesRead += n
      touchTimer(this)
      if (!(user ? user.deliver(n) : this.push(this.takeChunk(n)))) {
        this.reading = false
        return
      }
      // Nothing more until readiness; what the push ran may have changed the interest.
      if (waits) {
        if (conn === this.conn && !this.destroyed && this.engine === 'own') this.want(READABLE)
        return
      }
    }
  }

  /**
   * Plaintext read some other way than readLoop (a carrier, a control
   * read): to the stream, or in pieces to the `onread` buffer. False: stop reading.
   */
  private pushPlaintext(chunk: Buffer): boolean {
    const user = userReadBuffer(this)
    if (!user) return this.push(chunk)
    let more = true
    for (let at = 0; at < chunk.length; ) {
      const n = Math.min(user.buffer.length, chunk.length - at)
      if (n === 0) break // a zero-length buffer takes nothing, as with net.Socket
      user.buffer.set(chunk.subarray(at, at + n))
      at += n
      // Nothing may be lost: a false only stops reading after this chunk.
      if (!user.deliver(n)) more = false
    }
    return more
  }

  /** As net.Socket with `onread`: pausing and resuming reach the reads themselves. */
  override pause(): this {
    if (this.engine === 'own' && userReadBuffer(this)) this.reading = false
    return super.pause()
  }

  override resume(): this {
    if (this.engine === 'own' && !this.reading && userReadBuffer(this)) this._read(READ_SIZE)
    return super.resume()
  }

  /** Big reads hand over the scratch buffer; small ones are copied out of it. */
  private takeChunk(n: number): Buffer {
    if (n < SMALL_READ) return Buffer.from(readBuffer.subarray(0, n))
    const chunk = readBuffer.subarray(0, n)
    readBuffer = Buffer.allocUnsafe(READ_SIZE)
    return chunk
  }

  // ---- writing ----

  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (isFileMarker(chunk)) return runFileWrite(this, chunk, callback)
    if (this.engine === 'libuv') {
      if (!this.withinRecordLimit(Buffer.byteLength(chunk, encoding), callback)) return
      return netSocket._write.call(this, chunk, encoding, callback)
    }
    this._writev([{ chunk, encoding }], callback)
  }

  override _writev(
    chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>,
    callback: (err?: Error | null) => void,
  ): void {
    if (chunks.some((c) => isFileMarker(c.chunk))) return writevAroundFiles(this, chunks, (c, cb) => this._writev(c, cb), callback)
    switch (this.engine) {
      case 'libuv': {
        const bytes = chunks.reduce((n, c) => n + Buffer.byteLength(c.chunk, c.encoding), 0)
        if (!this.withinRecordLimit(bytes, callback)) return
        return netSocket._writev.call(this, chunks, callback)
      }
      case 'handshake':
        this.held = { chunks, callback }
        return
      case 'own': {
        const buffers = coalesce(chunks.map(toBuffer))
        // The kernel may still seal this connection's records (its own loop after a control record).
        if (!this.userspaceRecords && !this.withinRecordLimit(buffers.reduce((n, b) => n + b.length, 0), callback)) return
        this.ownWrite = { chunks: buffers, index: 0, offset: 0, callback }
        return this.writeLoop()
      }
      case 'carrier': {
        const buffers = chunks.map(toBuffer)
        this.ownBytesWritten += buffers.reduce((n, b) => n + b.length, 0)
        return this.carrier!.write(coalesce(buffers), callback)
      }
      case 'closed':
        return callback(new KtlsError('ERR_STREAM_DESTROYED', 'socket destroyed'))
    }
  }

  private writeLoop(): void {
    const job = this.ownWrite!
    const conn = this.conn!
    let sent = false // nothing written yet: queued ciphertext, if any, is flush()'s
    try {
      while (job.index < job.chunks.length) {
        const chunk = job.chunks[job.index]
        const n = job.offset < chunk.length ? conn.write(chunk.subarray(job.offset), ioState) : 0
        if (n < 0) return this.want(WRITABLE)
        if (n > 0) sent = ioState[0] === 1
        job.offset += n
        this.ownBytesWritten += n
        if (job.offset >= chunk.length) {
          job.index++
          job.offset = 0
        }
      }
      if (this.userspaceRecords && !sent && !conn.flush()) return this.want(WRITABLE)
    } catch (err) {
      this.ownWrite = undefined
      return job.callback(fromNative(err))
    }
    this.ownWrite = undefined
    touchTimer(this)
    // Completed on the next tick, as node:tls's: a write() bigger than the
    // high-water mark returns false even when the kernel took it at once.
    process.nextTick(job.callback)
    if (this.finalCallback) this.finish()
  }

  /** end(): close_notify (RFC 8446 §6.1), then FIN. */
  override _final(callback: (err?: Error | null) => void): void {
    switch (this.engine) {
      case 'libuv':
        return this.finishOffloaded(callback)
      case 'own':
        this.finalCallback = callback
        if (!this.ownWrite) this.finish()
        return
      case 'handshake':
        this.finalCallback = callback
        return
      case 'carrier':
        return this.carrier!.end(callback)
      case 'closed':
        return callback()
    }
  }

  /** Offloaded: libuv's write queue is empty here; close_notify, then libuv's FIN. */
  private finishOffloaded(callback: (err?: Error | null) => void): void {
    this.finalCallback = undefined
    if (this.conn) {
      try {
        if (!this.conn.closeNotify()) {
          this.finalCallback = callback
          this.wantWrite = true
          this.setArmed(WRITABLE) // armed by the binding
          return
        }
      } catch (err) {
        // A peer that is gone has nothing to be notified of, as net's shutdown.
        if (!isGone(err)) return callback(fromNative(err))
      }
    }
    netSocket._final.call(this, callback)
  }

  private finish(): void {
    const callback = this.finalCallback!
    try {
      if (!this.conn!.end()) return this.want(WRITABLE)
    } catch (err) {
      this.finalCallback = undefined
      if (isGone(err)) return callback()
      return callback(fromNative(err))
    }
    this.finalCallback = undefined
    callback()
  }

  // ---- teardown ----

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.handshakeTimer)
    cancelFileSends(this, err)
    this.keys?.abandon(err ?? canceledWrite())
    this.engine = 'closed'
    this.conn?.destroy()
    this.carrier?.destroy()
    if (this.token) unregister(this.token)
    this.updateLoopHold()
    // As libuv cancels the writes still queued on a handle it closes.
    for (const pending of [this.ownWrite, this.held]) pending?.callback(canceledWrite())
    this.ownWrite = undefined
    this.held = undefined
    // net.Socket closes the handle it holds: give it back if it is detached.
    if (this.tcp && !handleOf(this)) attachHandle(this, this.tcp)
    netSocket._destroy.call(this, err, callback)
  }

  // ---- sendFile (src/sendfile.ts) ----

  /**
   * Sends a file range after the writes before it, and before those after
   * it; resolves with the bytes sent. sendfile(2) where the kernel writes
   * the records (offloaded TX), reads and writes otherwise.
   */
  sendFile(file: FileSource, options?: SendFileOptions): Promise<number> {
    return sendFile(this, file, options)
  }

  /**
   * The descriptor sendfile(2) may write to: the kernel writes this socket's records (or there is no TLS).
   * @internal
   */
  kernelTxFd(): number | undefined {
    const fd = this.tcp?.fd
    const kernelWrites = this.engine === 'libuv' || (this.engine === 'own' && !this.userspaceRecords)
    return kernelWrites && typeof fd === 'number' && fd >= 0 ? fd : undefined
  }

  /**
   * One chunk through this socket's engine, bypassing the stream's queue (sendFile's fallback).
   * @internal
   */
  writeDirect(chunk: Buffer, callback: (err?: Error | null) => void): void {
    this._writev([{ chunk, encoding: 'buffer' as BufferEncoding }], callback)
  }

  /**
   * sendfile(2) is about to hand the kernel `bytes` to seal: the sending
   * key's record limit comes first. False when that ended the connection.
   * @internal
   */
  beforeKernelWrite(bytes: number): boolean {
    this.keys?.beforeWrite(bytes)
    return !this.destroyed
  }

  /**
   * The largest slice sendfile(2) may hand the kernel at once: small
   * enough that the record limit is checked before the key could pass it.
   * @internal
   */
  kernelWriteSlice(): number {
    return this.keys?.bytesBetweenChecks ?? Infinity
  }

  /**
   * Bytes sendfile(2) wrote, which libuv's counter does not see.
   * @internal
   */
  countWritten(bytes: number): void {
    this.ownBytesWritten += bytes
  }

  // ---- node:tls / net.Socket surface ----

  /**
   * `new KtlsSocket()` then `connect(...)`, as with tls.TLSSocket: the TCP
   * socket it wraps connects, and TLS starts once it has.
   */
  override connect(...args: unknown[]): this {
    const raw = this.connectingRaw ?? this.pendingRaw
    if (!raw) throw new KtlsError('ERR_SOCKET_CONNECTION_IN_PROGRESS', 'socket is already connected or connecting')
    this.pendingRaw = undefined
    const last = args[args.length - 1]
    if (typeof last === 'function') {
      this.once('connect', last as () => void)
      args = args.slice(0, -1)
    }
    ;(raw.connect as (...a: unknown[]) => net.Socket)(...args)
    return this
  }

  /**
   * ktls's own: a TLS 1.3 KeyUpdate of this side's sending key (RFC 8446
   * §4.6.3), asking the peer to update its own too unless
   * `requestPeerUpdate` is false (the userspace path always asks). Resolves
   * once the KeyUpdate is sent and later writes use the next key. Offloaded,
   * it needs a kernel that can rekey (Linux 6.14+): elsewhere it rejects with
   * `ERR_KTLS_KEY_UPDATE_UNSUPPORTED` before sending anything, and the
   * connection goes on as before.
   */
  updateKeys(options: { requestPeerUpdate?: boolean } = {}): Promise<void> {
    if (!this.secure || this.destroyed || !this.keys) {
      return Promise.reject(new KtlsError('ERR_TLS_INVALID_STATE', 'TLS socket connection must be securely established'))
    }
    if (this.getProtocol() !== 'TLSv1.3') {
      return Promise.reject(new KtlsError('ERR_TLS_INVALID_STATE', 'KeyUpdate exists only in TLS 1.3'))
    }
    return this.keys.request(options.requestPeerUpdate !== false)
  }

  /**
   * As node:tls: the largest plaintext per record this side sends, 512 to
   * 16384 bytes; false when out of range or not applicable. Offloaded, the
   * kernel caps its records (`TLS_TX_MAX_PAYLOAD_LEN`, Linux 6.19+;
   * `capabilities().txMaxPayload`); set before the handshake ends on a
   * kernel without it, the connection stays in userspace to honour it.
   */
  setMaxSendFragment(size: number): boolean {
    if (typeof size !== 'number') throw argumentError('ERR_INVALID_ARG_TYPE', `The "size" argument must be of type number. Received type ${typeof size}`)
    if (!Number.isInteger(size) || size < -(2 ** 31) || size >= 2 ** 31) {
      throw argumentError('ERR_OUT_OF_RANGE', `The value of "size" is out of range. It must be an integer. Received ${size}`)
    }
    if (size < 512 || size > 16384 || this.carrier) return false
    if (!this.conn) {
      this.maxSendFragment = size
      return true
    }
    try {
      return this.conn.setMaxSendFragment(size)
    } catch {
      return false
    }
  }

  /** KeyUpdates this side sent (on request, at the record limit), for monitoring. */
  get keyUpdatesSent(): number {
    return this.keys?.sent ?? 0
  }

  private keyUpdateHost(): KeyUpdateHost {
    return {
      conn: this.conn,
      waitWritable: () => this.want(WRITABLE),
      fail: (err) => {
        // A clean end where it can be had: close_notify before the error.
        try {
          this.conn?.closeNotify()
        } catch {}
        this.destroy(err)
      },
    }
  }

  /** Offloaded writes: the sending key's record limit comes first (keyupdate.ts). */
  private withinRecordLimit(bytes: number, callback: (err?: Error | null) => void): boolean {
    this.keys?.beforeWrite(bytes)
    if (!this.destroyed) return true
    callback(canceledWrite())
    return false
  }

  override setNoDelay(noDelay = true): this {
    const handle = handleOf(this) ?? this.tcp
    if (handle) handle.setNoDelay?.(noDelay)
    else this.connectingRaw?.setNoDelay(noDelay) // applied once it connects
    return this
  }

  override setKeepAlive(enable = false, initialDelay = 0): this {
    const handle = handleOf(this) ?? this.tcp
    if (handle) handle.setKeepAlive?.(enable, Math.floor(initialDelay / 1000))
    else this.connectingRaw?.setKeepAlive(enable, initialDelay)
    return this
  }

  override ref(): this {
    this.wantRef = true
    this.updateLoopHold()
    return this
  }

  override unref(): this {
    this.wantRef = false
    this.updateLoopHold()
    return this
  }

  /**
   * What keeps Node's loop alive for this socket: libuv's handle once it
   * carries the data (an active read, as any net.Socket), else one shared
   * timer while the handshake or ktls's own loop waits on the reactor.
   */
  private updateLoopHold(): void {
    const handle = handleOf(this) ?? this.tcp
    if (this.wantRef) handle?.ref?.()
    else handle?.unref?.()
    this.updateHold()
  }

  /**
   * As a libuv handle is active only while it reads or writes: the handshake
   * holds the loop, ktls's own loop only while it waits for a report (not
   * when paused, after EOF, or idle with nothing to send). Nothing to hold
   * before the handshake starts: a connecting TCP socket is libuv's to keep
   * alive (or not: a `lookup` that never answers lets the process exit).
   */
  private updateHold(): void {
    const waits = (this.engine === 'handshake' && this.conn !== undefined) || (this.engine !== 'closed' && this.armed !== 0)
    const hold = this.wantRef && !this.destroyed && waits
    if (hold === this.holdsLoop) return
    this.holdsLoop = hold
    if (hold) holdLoop()
    else releaseLoop()
  }

  private setArmed(bits: number): void {
    this.armed = bits
    this.updateHold()
  }

  /** `connecting` is net.Socket's, read-only in its typings; set while a wrapped socket connects. */
  private setConnecting(on: boolean): void {
    ;(this as { connecting: boolean }).connecting = on
  }

  /** libuv's handle while it is kept out of `_handle`. */
  private hiddenHandle(): StreamHandle | undefined {
    return handleOf(this) ? undefined : this.tcp
  }

  /** Plaintext bytes: libuv counts what it moved, ktls's own loop the rest. */
  private plaintextBytes(which: 'bytesRead' | 'bytesWritten'): number {
    const own = which === 'bytesRead' ? this.ownBytesRead : this.ownBytesWritten
    return (this.tcp?.[which] ?? 0) + own
  }
}

lookUpAddressesThrough(KtlsSocket.prototype, (socket) => (socket as KtlsSocket)['hiddenHandle']())
timeOutAsTlsSocketsDo(KtlsSocket.prototype)
// net.Socket's (deprecated) name for the bytes waiting to be written; its
// own getter answers only while `_handle` is set: undefined once destroyed.
Object.defineProperty(KtlsSocket.prototype, 'bufferSize', {
  get(this: KtlsSocket) {
    return this.destroyed ? undefined : this.writableLength
  },
  configurable: true,
})
for (const which of ['bytesRead', 'bytesWritten'] as const) {
  Object.defineProperty(KtlsSocket.prototype, which, {
    get(this: KtlsSocket) {
      return this['plaintextBytes'](which)
    },
    configurable: true,
  })
}

const NO_DESCRIPTOR = 'the transport is a stream with no TCP descriptor: records stay in userspace'

const errnos = osConstants.errno
// Not in os.constants.errno: Linux's "Key has expired", what kTLS reads return after a KeyUpdate it cannot follow.
const EKEYEXPIRED = 127

/** What the kernel's record layer fails a read with; ktls turns them into coded errors. */
const RECORD_ERRNOS = new Set([errnos.EBADMSG, errnos.EMSGSIZE, EKEYEXPIRED])

/**
 * A connection lost during the handshake, as node:tls reports it: "socket
 * hang up" on a server; on a client, with where it was connecting to.
 */
function asNodeReports(err: Error, isServer: boolean, options: KtlsSocketOptions & { port?: number; path?: string; localAddress?: string }): Error {
  if ((err as { code?: string }).code !== 'ECONNRESET') return err
  if (isServer) return new KtlsError('ECONNRESET', 'socket hang up')
  return Object.assign(err, { path: options.path ?? undefined, host: options.host, port: options.port, localAddress: options.localAddress })
}

/** A server socket's standing 'error' listener: the error is already the socket's end. */
function swallowAfterSecure(): void {}

/** A Buffer over the bytes of `view` (the binding reads into Buffers). */
function viewOf(view: Uint8Array): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}
