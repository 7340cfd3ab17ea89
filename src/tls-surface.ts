// What a KtlsSocket is as a TLS endpoint, whoever carries its records: the
// configuration a server picks once the ClientHello is in (SNI, ALPN), the
// peer's verification, and node:tls's read-only surface over what the
// handshake established. socket.ts drives the handshake and moves the data.
import * as net from 'node:net'
import * as tls from 'node:tls'
import { X509Certificate, randomBytes } from 'node:crypto'
import type { HandshakeInfo, ServerSecureContext } from '../binding/index'
import type { KtlsSocket } from './socket'
import { binding } from './native'
import { KtlsError, argumentError, fromNative, invalidArgType, verifyError } from './errors'
import { SecureContext, contextFor, createSecureContext, hasCredentials, type KtlsMode, type SecureContextOptions } from './context'
import { validateOptions } from './options'
import { opensslName } from './ciphers'
import { anchorsOf, certificateOf, judgeLegacyChain, partialChainCode, peerChain } from './chain'

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
  /** Server: ask the client for a certificate (see `rejectUnauthorized`), as node:tls. */
  requestCert?: boolean | null
  /**
   * Server: picks the context for the name the client asked for, as
   * node:tls's: `callback(null, context)` (a SecureContext; undefined keeps
   * the socket's own), or `callback(err)` to refuse the connection.
   */
  SNICallback?: SNICallback | null
  /**
   * Server: chooses the ALPN protocol, as node:tls's: called (with the socket
   * as `this`, after any SNICallback) with the name and the protocols the
   * client offered; returns one of them, or undefined to refuse them all
   * (the client gets a no_application_protocol alert). Excludes `ALPNProtocols`.
   */
  ALPNCallback?: ALPNCallback | null
  allowHalfOpen?: boolean
  /**
   * As net.Socket's: reads land in `buffer` (or each buffer a function
   * returns) and go to `callback(nread, buffer)` instead of 'data'; a
   * callback returning false pauses reading until resume().
   */
  onread?: net.OnReadOpts
  signal?: AbortSignal
  highWaterMark?: number
  /**
   * Client: a session to resume, from an earlier socket's getSession() or
   * 'session' event in this process.
   */
  session?: Buffer | null
  /**
   * Offload TLS 1.3 only where the kernel can follow the peer's KeyUpdates
   * (Linux 6.14+); elsewhere the connection stays in userspace, where
   * rustls follows them. For long-lived connections to peers that rekey.
   */
  requireKeyUpdate?: boolean
  /**
   * Offloaded path: records one sending key may seal before ktls updates it
   * (TLS 1.3 on a kernel that can rekey) or ends the connection with
   * `ERR_KTLS_RECORD_LIMIT`. Default: 2^24.5 for AES-GCM (RFC 8446 §5.5), no
   * limit for ChaCha20-Poly1305. The userspace path keeps rustls's limit.
   */
  recordLimit?: number
  /**
   * Benchmarks only: no TLS at all. The socket runs exactly the code that
   * carries records after offload (libuv's handle, ktls's read hook) over a
   * plain TCP connection, so that path can be measured where the kernel
   * has no kTLS. Never use it for real traffic: nothing is encrypted.
   */
  unencryptedBenchmarkOnly?: boolean
}

export type ALPNCallback = (this: KtlsSocket, params: { servername: string | false; protocols: string[] }) => string | undefined

export type SNICallback = (servername: string, callback: (err: Error | null, context?: SecureContext) => void) => void

/** Whether each direction is encrypted by the kernel, and why not. */
export interface KtlsStatus {
  tx: boolean
  rx: boolean
  cipher: string
  reason?: string
}

/** What can derive keying material: the connection, offloaded or in userspace. */
export interface KeyingSource {
  exportKeyingMaterial(length: number, label: Buffer, context?: Buffer): Buffer
}

/**
 * What a server offers when its ALPNCallback refuses every protocol: no
 * client asks for it (random per process), so rustls ends the handshake
 * with the no_application_protocol alert node:tls sends.
 */
const REFUSE_EVERY_PROTOCOL = `ktls-refuses-${randomBytes(12).toString('hex')}`

export abstract class TlsSurface extends net.Socket {
  readonly encrypted = true
  authorized = false
  authorizationError: string | null = null
  alpnProtocol: string | false = false
  servername: string | false = false
  ktls: KtlsStatus = { tx: false, rx: false, cipher: '', reason: 'handshake not finished' }

  protected readonly options: KtlsSocketOptions
  protected readonly isServer: boolean
  protected context: SecureContext
  /** What the handshake established; set once it is over. */
  protected info?: HandshakeInfo
  protected secure = false
  /** Client: the newest session rustls stored, as a token (getSession()). */
  protected sessionToken?: Buffer
  private peerCert?: tls.DetailedPeerCertificate
  /** The peer's chain as node:tls links it, worked out once (both certificate getters use it). */
  private peerIssuance?: { chain: X509Certificate[]; rooted: boolean }
  /** setServername()'s choice. */
  private sniName?: string

  constructor(netOptions: net.SocketConstructorOpts, options: KtlsSocketOptions) {
    super(netOptions)
    this.options = options
    this.isServer = options.isServer === true
    validateOptions(options)
    this.context = contextFor(options)
  }

  /** Ends the connection with a TLS error, as node:tls reports it (socket.ts). */
  protected abstract fail(err: Error): void
  /** The established connection, for exportKeyingMaterial(). */
  protected abstract keyingSource(): KeyingSource | undefined
  /** Client: the session a resumed connection resumed with. */
  protected abstract resumedSessionToken(): Buffer | null | undefined
  /** Server at the ClientHello: answers it with a handshake_failure alert (nothing to serve). */
  protected abstract refuseHello(): void

  /** A server whose configuration waits for the ClientHello (or that has no certificate of its own). */
  protected choosesContext(): boolean {
    return Boolean(this.options.SNICallback || this.options.ALPNCallback) || !hasCredentials(this.context.options)
  }

  /**
   * The ClientHello is in: the SNICallback picks the context (as node:tls
   * calls it only when the client sent a name), then the ALPNCallback the
   * protocol (only when the client offered some), then the handshake goes on.
   */
  protected chooseContext(servername: string | null, protocols: string[] | null, acceptWith: (context: ServerSecureContext) => void): void {
    // Known from here on, 'tlsClientError' included, as node:tls's.
    this.servername = servername ?? false
    let settled = false
    const chosen = (err: Error | null, context?: SecureContext | null) => {
      if (this.destroyed) return
      if (settled) return this.destroy(new KtlsError('ERR_MULTIPLE_CALLBACK', 'Callback called multiple times'))
      settled = true
      if (err) return this.fail(err)
      if (context) {
        // node:tls's words; a SecureContext of createSecureContext() is what works.
        if (!(context instanceof SecureContext)) return this.fail(argumentError('ERR_INVALID_ARG_TYPE', 'Invalid SNI context'))
        this.context = context
      }
      let alpn: string[] | undefined
      try {
        alpn = this.chooseProtocol(protocols)
      } catch (e) {
        return this.fail(e as Error)
      }
      // No certificate to serve: the client reads a handshake_failure alert,
      // and the server node:tls's code for how it came to have none.
      if (!hasCredentials(this.context.options)) {
        this.refuseHello()
        return this.fail(context ? noCertificateFromSni() : noCertificate())
      }
      try {
        acceptWith(this.context.serverContext(this.options, alpn))
      } catch (e) {
        this.fail(fromNative(e))
      }
    }
    const callback = this.options.SNICallback
    if (servername && callback) callback(servername, chosen)
    else chosen(null)
  }

  /**
   * The ALPNCallback's answer as the protocols the server will offer: its
   * choice alone, or for undefined one no client offers, so that rustls
   * refuses them all with node:tls's alert. undefined: no callback applies.
   */
  private chooseProtocol(protocols: string[] | null): string[] | undefined {
    const callback = this.options.ALPNCallback
    if (!callback || !protocols) return undefined
    // KtlsSocket is the one subclass: the callback's `this` is typed as users see it.
    const selected = callback.call(this as unknown as KtlsSocket, { servername: this.servername, protocols })
    if (selected === undefined) return [REFUSE_EVERY_PROTOCOL]
    if (!protocols.includes(selected)) {
      throw new KtlsError('ERR_TLS_ALPN_CALLBACK_INVALID_RESULT', `ALPN callback returned a value (${String(selected)}) that did not match any of the client's offered protocols (${protocols.join(', ')})`)
    }
    return [selected]
  }

  /**
   * Server, from its ALPNCallback (or before the handshake): serve this
   * connection with `context`'s key and certificate, as node:tls's.
   */
  setKeyCert(context: SecureContext | SecureContextOptions): void {
    if (this.destroyed || !this.isServer) return
    const given = context instanceof SecureContext ? context : createSecureContext(context)
    this.context = this.context.withKeyCertOf(given)
  }

  /** node:tls's 'keylog' is wanted: on the server for its sockets, on a client socket for itself. */
  protected wantsKeylog(): boolean {
    const server = this.options.server
    return server ? server.listenerCount('keylog') > 0 : this.listenerCount('keylog') > 0
  }

  /** NSS key log lines, as node:tls emits them: `(line)` on a client, `(line, socket)` on the server. */
  protected emitKeylog(lines: string[]): void {
    const server = this.options.server
    for (const line of lines) {
      const buffer = Buffer.from(line)
      if (server) server.emit('keylog', buffer, this)
      else this.emit('keylog', buffer)
    }
  }

  /** Node's order: chain first, then checkServerIdentity; reject only if asked. */
  protected verifyPeer(): boolean {
    const chainCode = this.chainCode()
    let error: Error | undefined = chainCode ? verifyError(chainCode) : undefined
    if (!error) {
      const check = this.options.checkServerIdentity ?? tls.checkServerIdentity
      const host = this.serverName()
      error = check(host, this.getPeerCertificate()) ?? undefined
    }
    if (!error) {
      this.authorized = true
      return true
    }
    this.authorizationError = (error as { code?: string }).code ?? error.message
    // As node:tls: NODE_TLS_REJECT_UNAUTHORIZED=0 is the default's off switch.
    const reject = this.options.rejectUnauthorized ?? process.env.NODE_TLS_REJECT_UNAUTHORIZED !== '0'
    if (!reject) return true
    this.destroy(error)
    return false
  }

  /**
   * A server with requestCert, as node:tls: `authorized` when the client's
   * chain is trusted, else `authorizationError`; rejectUnauthorized (the
   * default) refuses it ('tlsClientError' with that code). A client that
   * sent no certificate was already refused by the handshake itself.
   */
  protected verifyClient(): boolean {
    const code = this.chainCode()
    if (!code) {
      this.authorized = true
      return true
    }
    this.authorizationError = code
    if (this.options.rejectUnauthorized === false) return true
    this.fail(verifyError(code))
    return false
  }

  /** What is wrong with the peer's chain, in OpenSSL's (Node's) words, if anything. */
  private chainCode(): string | null {
    const { chainError, peerCertificates } = this.info!
    const { ca, allowPartialTrustChain } = this.context.options
    if (!chainError) return allowPartialTrustChain ? null : partialChainCode(peerCertificates, ca, this.context.options)
    // A leaf webpki cannot read (X.509 v1) is judged as OpenSSL would.
    if (chainError === 'UNREADABLE_LEAF') return judgeLegacyChain(peerCertificates, this.context.options.ca)
    return this.refineChainError(chainError)
  }

  /**
   * webpki reports "unknown issuer"; Node (OpenSSL) says why, from the chain
   * it builds out of what the peer sent: ending in a self-signed certificate
   * nobody trusts, or at an issuer it cannot find (for the leaf itself, or
   * further up).
   */
  private refineChainError(code: string): string {
    if (code !== 'UNKNOWN_ISSUER') return code
    const sent = this.info!.peerCertificates.map(certificateOf)
    const chain = [sent[0]]
    for (;;) {
      const last = chain[chain.length - 1]
      if (last.subject === last.issuer && last.verify(last.publicKey)) {
        return chain.length === 1 ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN'
      }
      const issuer = sent.find((c) => !chain.includes(c) && last.checkIssued(c) && last.verify(c.publicKey))
      if (!issuer) return chain.length === 1 ? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
      chain.push(issuer)
    }
  }

  getPeerCertificate(detailed = false): tls.PeerCertificate | tls.DetailedPeerCertificate {
    const sent = this.info?.peerCertificates ?? []
    if (sent.length === 0) return {} as tls.PeerCertificate
    // The leaf alone (checkServerIdentity's, on every handshake) needs no chain.
    if (!detailed && !this.peerCert) return certificateOf(sent[0]).toLegacyObject() as tls.PeerCertificate
    if (!this.peerCert) {
      // Only a self-signed end links to itself.
      const { chain, rooted } = this.peerChainLinks(sent)
      const legacy = chain.map((c) => c.toLegacyObject() as tls.DetailedPeerCertificate)
      for (let i = 0; i + 1 < legacy.length; i++) legacy[i].issuerCertificate = legacy[i + 1]
      if (rooted) legacy[legacy.length - 1].issuerCertificate = legacy[legacy.length - 1]
      this.peerCert = legacy[0]
    }
    if (detailed) return this.peerCert
    const { issuerCertificate: _issuer, ...plain } = this.peerCert
    return plain as tls.PeerCertificate
  }

  /**
   * Keying material (RFC 8446 §7.5, RFC 5705), as node:tls: derived from the
   * handshake's secrets, kept for this purpose, so it answers the same once
   * the kernel holds the traffic keys.
   */
  exportKeyingMaterial(length: number, label: string, context?: Buffer | NodeJS.TypedArray | DataView): Buffer {
    if (typeof length !== 'number' || !Number.isInteger(length)) throw invalidArgType('length', 'of type number', length)
    if (length < 1 || length > 0xffff_ffff) throw argumentError('ERR_OUT_OF_RANGE', `The value of "length" is out of range. It must be >= 1 && <= 4294967295. Received ${length}`)
    if (typeof label !== 'string') throw invalidArgType('label', 'of type string', label)
    if (context !== undefined && !ArrayBuffer.isView(context)) {
      throw invalidArgType('context', 'an instance of Buffer, TypedArray, or DataView', context)
    }
    const connection = this.keyingSource()
    if (!this.secure || !connection || this.destroyed) throw new KtlsError('ERR_TLS_INVALID_STATE', 'TLS socket connection must be securely established')
    const bytes = (view: ArrayBufferView) => Buffer.from(view.buffer, view.byteOffset, view.byteLength)
    try {
      return connection.exportKeyingMaterial(length, Buffer.from(label), context === undefined ? undefined : bytes(context))
    } catch (err) {
      throw fromNative(err)
    }
  }

  /** The peer's leaf certificate, as node:tls: undefined when there is none. */
  getPeerX509Certificate(): X509Certificate | undefined {
    const sent = this.info?.peerCertificates ?? []
    if (sent.length === 0 || this.destroyed) return undefined
    // New objects each call, as node:tls's; `issuerCertificate` walks the chain.
    const chain = this.peerChainLinks(sent).chain.map((cert) => new X509Certificate(cert.raw))
    chain.forEach((cert, i) => Object.defineProperty(cert, 'issuerCertificate', { value: chain[i + 1], enumerable: false }))
    return chain[0]
  }

  /** As node:tls: what the peer sent, linked by issuance and completed from the trust anchors. */
  private peerChainLinks(sent: Buffer[]): { chain: X509Certificate[]; rooted: boolean } {
    this.peerIssuance ??= peerChain(sent, () => anchorsOf(this.context.options.ca, this.context.options))
    return this.peerIssuance
  }

  /** The certificate this side presented, in getPeerCertificate()'s form: `{}` when none, null once destroyed. */
  getCertificate(): tls.PeerCertificate | object | null {
    if (this.destroyed) return null
    const own = this.getX509Certificate()
    return own ? (own.toLegacyObject() as tls.PeerCertificate) : {}
  }

  /** This side's certificate (`cert`: a server's, or a client's for servers that ask), undefined when none. */
  getX509Certificate(): X509Certificate | undefined {
    return this.destroyed ? undefined : this.context.certificate(this.isServer ? (this.info?.identity ?? 0) : 0)
  }

  getCipher(): tls.CipherNameAndProtocol | undefined {
    if (!this.info) return undefined
    return { name: opensslName(this.info.cipher), standardName: this.info.cipher, version: this.info.protocol }
  }

  /**
   * As node:tls: the session to resume with (the `session` option of a later
   * connect), or undefined. ktls's sessions are tokens naming a session this
   * process keeps: they resume only within it (rustls's sessions cannot be
   * serialized), and a TLS 1.3 ticket resumes once.
   */
  getSession(): Buffer | undefined {
    if (this.sessionToken) return Buffer.from(this.sessionToken)
    // As node:tls: a TLS 1.3 client has a session before any ticket, one that resumes nothing.
    if (this.secure && !this.isServer) return Buffer.from(NO_TICKET_YET)
    return undefined
  }

  /**
   * Client: the ticket of this connection's session, as node:tls: of the
   * newest one received (during each 'session', that session's), else on a
   * resumed connection the one it resumed with. undefined on a server or
   * before there is one, null once destroyed.
   */
  getTLSTicket(): Buffer | null | undefined {
    if (this.destroyed) return null
    if (this.isServer) return undefined
    let token = this.sessionToken
    try {
      if (this.secure) token ??= this.resumedSessionToken() ?? undefined
    } catch {
      return undefined
    }
    return (token && binding.sessionTicket(token)) ?? undefined
  }

  getProtocol(): string | null {
    return this.info?.protocol ?? null
  }

  /** Whether the handshake resumed a session (rustls resumes within one context by itself). */
  isSessionReused(): boolean {
    return this.info?.resumed ?? false
  }

  /**
   * The verify_data of the latest Finished message this side sent, as
   * node:tls: undefined before the handshake ends, null once destroyed.
   * Known from the handshake itself, so the same once the kernel holds the keys.
   */
  getFinished(): Buffer | null | undefined {
    if (this.destroyed) return null
    return this.info?.finished ? Buffer.from(this.info.finished, 'hex') : undefined
  }

  /**
   * The signature algorithms both sides allow, with node:tls's names
   * ('RSA-PSS+SHA256', 'ECDSA+SHA384', 'Ed25519+UNDEF'): on a server, its
   * own list (`sigalgs`, or OpenSSL's default) kept where the ClientHello's
   * allows; on a client, a CertificateRequest's list kept where its own
   * allows, else []. As node:tls: [] before the handshake ends, null once destroyed.
   */
  getSharedSigalgs(): string[] | null {
    if (this.destroyed) return null
    return this.info?.sharedSigalgs ? this.info.sharedSigalgs.split(':') : []
  }

  /** The verify_data of the latest Finished message the peer sent (see getFinished()). */
  getPeerFinished(): Buffer | null | undefined {
    if (this.destroyed) return null
    return this.info?.peerFinished ? Buffer.from(this.info.peerFinished, 'hex') : undefined
  }

  /**
   * The key exchange, as node:tls reports it: on a client, `{ type, name,
   * size }` for an (EC)DH group; `{}` for a hybrid post-quantum one, on a
   * server or before the handshake; null once destroyed.
   */
  getEphemeralKeyInfo(): object | null {
    if (this.destroyed) return null
    const group = this.info?.keyExchangeGroup
    if (this.isServer || !group) return {}
    // A hybrid post-quantum group (X25519MLKEM768): reported as this Node's node:tls does.
    return EPHEMERAL_KEYS[group] ?? hybridKeyInfo(group)
  }

  /**
   * As node:tls: asks that renegotiation be refused. rustls never
   * renegotiates (TLS 1.3 has none; a TLS 1.2 peer's request is refused), so
   * this is always in force.
   */
  disableRenegotiation(): void {}

  /**
   * Renegotiation is not available (see disableRenegotiation): false, and the
   * callback gets why, as node:tls reports a refusal; on TLS 1.3, which has
   * none, node:tls's own error for it. undefined once destroyed, as there.
   */
  renegotiate(options: object, callback?: (err: Error | null) => void): boolean | undefined {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgType('options', 'of type object', options)
    if (callback !== undefined && typeof callback !== 'function') throw invalidArgType('callback', 'of type function', callback)
    if (this.destroyed) return undefined
    const err =
      this.getProtocol() === 'TLSv1.3'
        ? Object.assign(new KtlsError('ERR_SSL_WRONG_SSL_VERSION', 'error:0A00010A:SSL routines::wrong ssl version'), { library: 'SSL routines', reason: 'wrong ssl version' })
        : new KtlsError('ERR_TLS_RENEGOTIATION_DISABLED', 'TLS session renegotiation disabled for this socket')
    if (callback) process.nextTick(callback, err)
    return false
  }

  /** The name to send as SNI, before the handshake starts (as node:tls's client setServername). */
  setServername(name: string): void {
    if (typeof name !== 'string') throw invalidArgType('name', 'of type string', name)
    if (this.isServer) throw new KtlsError('ERR_TLS_SNI_FROM_SERVER', 'Cannot issue SNI from a TLS server-side socket')
    this.sniName = name
  }

  /** The name a client asks for (SNI) and checks the certificate against. */
  protected serverName(): string {
    return this.sniName || this.options.servername || this.options.host || 'localhost'
  }
}

// node:tls's getEphemeralKeyInfo() for the groups rustls negotiates.
const EPHEMERAL_KEYS: Record<string, object> = {
  X25519: { type: 'ECDH', name: 'X25519', size: 253 },
  secp256r1: { type: 'ECDH', name: 'prime256v1', size: 256 },
  secp384r1: { type: 'ECDH', name: 'secp384r1', size: 384 },
}

/** node:tls on Node 24+ names a group it has no key type for; Node 22 (OpenSSL 3.5 too) gives {}. */
function hybridKeyInfo(group: string): object {
  const major = Number(process.versions.node.split('.')[0])
  return major >= 24 ? { type: 'TLSGroup', name: group, size: undefined } : {}
}

/** getSession() before a TLS 1.3 ticket came: a token naming no session. */
const NO_TICKET_YET = Buffer.from('ktls: no ticket yet')

// OpenSSL's words (so node:tls's), which programs match on.
const noCertificate = () => new KtlsError('ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM', 'error:0A000076:SSL routines::no suitable signature algorithm')
// Node 20's node:tls hands OpenSSL the SNI context's missing certificate
// (a null parameter); later lines fail as a server without one does.
const noCertificateFromSni = () =>
  Number(process.versions.node.split('.')[0]) < 22
    ? new KtlsError('ERR_SSL_PASSED_A_NULL_PARAMETER', 'error:0A0C0102:SSL routines::passed a null parameter')
    : noCertificate()
