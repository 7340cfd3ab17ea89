// createSecureContext: the rustls configuration built once and reused.
import { readFileSync } from 'node:fs'
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto'
import * as tls from 'node:tls'
import { binding } from './native'
import { KtlsError, argumentError, fromNative, invalidArgType } from './errors'
import { toIanaCiphers } from './ciphers'
import { completeChain } from './chain'
import { validateContextOptions } from './options'
import { readPfx } from './pfx'
import type { ClientSecureContext, ServerSecureContext } from '../binding/index'

type Pem = string | Buffer
export type KtlsMode = 'auto' | 'require' | 'off'

/** A private key: PEM (PKCS#8, PKCS#1 or SEC1; encrypted with `passphrase`), or one with its own passphrase. */
export type KeyOption = Pem | { pem: Pem; passphrase?: string }

export interface SecureContextOptions {
  /** One key, or several (an RSA and an ECDSA one), each paired with the certificate it belongs to. */
  key?: KeyOption | KeyOption[] | null | false
  /** One PEM chain (leaf first), or several. */
  cert?: Pem | Pem[] | null | false
  /** Decrypts encrypted PEM keys. */
  passphrase?: string | null
  ca?: Pem | Pem[] | null | false
  /**
   * Accept a chain that ends at a certificate of `ca` that is not
   * self-signed (an intermediate given as trusted), as node:tls's option
   * (OpenSSL's X509_V_FLAG_PARTIAL_CHAIN). Without it such a chain fails
   * with UNABLE_TO_GET_ISSUER_CERT, as with node:tls.
   */
  allowPartialTrustChain?: boolean | null
  ALPNProtocols?: Array<string | Buffer | Uint8Array> | null
  minVersion?: 'TLSv1.2' | 'TLSv1.3'
  maxVersion?: 'TLSv1.2' | 'TLSv1.3'
  /**
   * An OpenSSL cipher string, as node:tls takes it: IANA names for TLS 1.3,
   * OpenSSL names or keywords for TLS 1.2 ('ECDHE-RSA-AES128-GCM-SHA256',
   * 'HIGH:!aNULL'), in preference order. Suites rustls lacks are skipped.
   */
  ciphers?: string | null
  /** Server: choose the suite by its own order (`ciphers`) rather than the client's. Default true, as node:tls. */
  honorCipherOrder?: boolean
  /** Key exchange groups, colon-separated, in preference order ('X25519:P-256'), or 'auto' (the default), as node:tls. */
  ecdhCurve?: string | null
  /** node:tls's older way to pick the versions: 'TLSv1_2_method', 'TLS_method', ... */
  secureProtocol?: string | null
  /**
   * The signature schemes offered, accepted and signed with, in preference
   * order: OpenSSL's names ('RSA-PSS+SHA256:ECDSA+SHA256', 'ed25519') or IANA's.
   */
  sigalgs?: string | null
  /**
   * PKCS#12 (PFX) data, or several: each one's key and certificate are used
   * as `key` and `cert` would be, its other certificates as chain and as
   * trusted CAs (as node:tls). Decrypted with `passphrase`, or an entry's own.
   */
  pfx?: PfxOption | PfxOption[] | null
  /**
   * Server: the 48 bytes session tickets are sealed with (random by default,
   * as node:tls). Servers given the same keys (cluster workers) resume each
   * other's sessions.
   */
  ticketKeys?: Buffer | null
  /** Server: how long a session ticket may resume, in seconds (default 300). */
  sessionTimeout?: number | null
  /** OpenSSL engines: refused with node:tls's code for a build without them. */
  clientCertEngine?: string | null
  privateKeyEngine?: string | null
  privateKeyIdentifier?: string | null
}

/**
 * A server's client authentication, as node:tls's `requestCert` and
 * `rejectUnauthorized` (a socket's choice there; a configuration's in rustls,
 * so a context keeps one configuration per choice).
 */
export interface ClientAuth {
  requestCert?: boolean | null
  rejectUnauthorized?: boolean | null
}

/** A reusable context; client and server halves are built on first use. */
export type PfxOption = string | Buffer | { buf: string | Buffer; passphrase?: string }

export class SecureContext {
  private client?: ClientSecureContext
  private readonly servers = new Map<string, ServerSecureContext>()
  private leaves?: X509Certificate[]
  /** One set for every server configuration of this context (one per client-auth choice). */
  private ticketKeys: Buffer

  options: SecureContextOptions
  /** node:tls's `secureContext.context`: the part of OpenSSL's context applications reach into. */
  readonly context: { addCACert(ca: Pem): void }

  constructor(options: SecureContextOptions) {
    this.context = { addCACert: (ca) => this.addCACert(ca) }
    validateContextOptions(options)
    checkEngines(options)
    this.options = withPfx(options)
    const given = options.ticketKeys
    if (given !== undefined && given !== null) checkTicketKeys(given, 'options.ticketKeys')
    this.ticketKeys = given ? Buffer.from(given) : randomBytes(TICKET_KEYS_LEN)
  }

  /**
   * Trusts `ca` too, beside what the context trusted (Node's root store when
   * it was given no `ca`): for connections made from now on.
   */
  private addCACert(ca: Pem): void {
    if (typeof ca !== 'string' && !ArrayBuffer.isView(ca)) throw invalidArgType('ca', 'of type string or an instance of Buffer, TypedArray, or DataView', ca)
    const trusted = trustAnchors(this.options.ca) ?? tls.rootCertificates.map(toBuffer)
    this.options = { ...this.options, ca: [...trusted, toBuffer(ca)] }
    this.client = undefined
    this.servers.clear()
  }

  /**
   * This context with `other`'s key and certificate (node:tls's
   * `setKeyCert()`): its other settings and its ticket keys stay.
   */
  withKeyCertOf(other: SecureContext): SecureContext {
    const { key, cert, passphrase } = other.options
    return new SecureContext({ ...this.options, key, cert, passphrase, pfx: undefined, ticketKeys: this.ticketKeys })
  }

  /** server.getTicketKeys(). */
  getTicketKeys(): Buffer {
    return Buffer.from(this.ticketKeys)
  }

  /** server.setTicketKeys(keys): tickets sealed before no longer resume. */
  setTicketKeys(keys: ArrayBufferView): void {
    this.ticketKeys = Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength)
    for (const server of this.servers.values()) build(() => server.setTicketKeys(this.ticketKeys))
  }

  /** The leaf of `cert`'s `index`th chain (the one a handshake served), if any. */
  certificate(index = 0): X509Certificate | undefined {
    this.leaves ??= listOf(this.options.cert).map((pem) => new X509Certificate(toBuffer(pem)))
    return this.leaves[index]
  }

  clientContext(): ClientSecureContext {
    if (!this.client) {
      // Option errors (thrown as Node throws them) before the binding's own.
      const options = nativeOptions(this.options)
      this.client = build(() => new binding.ClientSecureContext(options))
    }
    return this.client
  }

  /** The server configuration for `auth`; `alpn`: the protocols to offer instead of `ALPNProtocols` (an ALPNCallback's choice). */
  serverContext(auth: ClientAuth = {}, alpn?: string[]): ServerSecureContext {
    const requestCert = auth.requestCert === true
    // As node:tls: rejectUnauthorized matters only with requestCert, and defaults to true.
    const rejectUnauthorized = requestCert && auth.rejectUnauthorized !== false
    const key = `${requestCert}/${rejectUnauthorized}${alpn ? `/${alpn.join(',')}` : ''}`
    let server = this.servers.get(key)
    if (!server) {
      const sessionTimeout = this.options.sessionTimeout ?? undefined
      const native = nativeOptions(this.options)
      if (alpn) native.alpnProtocols = alpn.map((protocol) => Buffer.from(protocol))
      const options = { ...native, requestCert, rejectUnauthorized, ticketKeys: this.ticketKeys, sessionTimeout }
      server = build(() => new binding.ServerSecureContext(options))
      this.servers.set(key, server)
    }
    return server
  }
}

/** `pfx` read into `key`, `cert` and `ca`, which the rest of the context knows. */
function withPfx(options: SecureContextOptions): SecureContextOptions {
  if (!present(options.pfx)) return options
  const entries = Array.isArray(options.pfx) ? options.pfx : [options.pfx]
  const keys: KeyOption[] = listOf(options.key)
  const certs: Pem[] = listOf(options.cert)
  const extras: Pem[] = []
  for (const entry of entries) {
    const isObject = typeof entry === 'object' && !Buffer.isBuffer(entry)
    const data = isObject ? entry.buf : entry
    const passphrase = (isObject ? entry.passphrase : undefined) ?? options.passphrase ?? ''
    const read = readPfx(toBuffer(data), passphrase)
    keys.push(read.key)
    certs.push(read.cert)
    extras.push(...read.others)
  }
  if (extras.length === 0) return { ...options, key: keys, cert: certs }
  // Added to what is trusted anyway (`ca`, else Node's roots), as node:tls adds them.
  const trusted: Pem[] = present(options.ca) ? listOf(options.ca) : [...tls.rootCertificates]
  return { ...options, key: keys, cert: certs, ca: [...trusted, ...extras] }
}

const TICKET_KEYS_LEN = 48

/** node:tls's checks: a Buffer, TypedArray or DataView of exactly 48 bytes, in its words. */
export function checkTicketKeys(keys: unknown, name: string): void {
  if (!ArrayBuffer.isView(keys)) throw invalidArgType(name, 'an instance of Buffer, TypedArray, or DataView', keys)
  if (keys.byteLength !== TICKET_KEYS_LEN) {
    const message = name === 'keys' ? 'Session ticket keys must be a 48-byte buffer' : `The property '${name}' must be exactly 48 bytes. Received ${keys.byteLength}`
    throw argumentError('ERR_INVALID_ARG_VALUE', message)
  }
}

/**
 * OpenSSL engines have no rustls counterpart: node:tls's argument checks,
 * then the code node:tls gives where its OpenSSL was built without engines.
 */
function checkEngines(o: SecureContextOptions): void {
  const { clientCertEngine, privateKeyEngine, privateKeyIdentifier } = o
  const stringOrNothing = 'of type string or one of null or undefined'
  if (given(privateKeyIdentifier)) {
    if (!given(privateKeyEngine)) throw argumentError('ERR_INVALID_ARG_VALUE', `The property 'options.privateKeyEngine' is invalid. Received ${privateKeyEngine}`)
    if (typeof privateKeyIdentifier !== 'string') throw invalidArgType('options.privateKeyIdentifier', stringOrNothing, privateKeyIdentifier)
    if (typeof privateKeyEngine !== 'string') throw invalidArgType('options.privateKeyEngine', stringOrNothing, privateKeyEngine)
    throw engineUnsupported()
  }
  if (typeof clientCertEngine === 'string') throw engineUnsupported()
  if (given(clientCertEngine)) throw invalidArgType('options.clientCertEngine', stringOrNothing, clientCertEngine)
}

// node:tls's words for an OpenSSL without engines, which is what rustls is to it.
const engineUnsupported = () => new KtlsError('ERR_CRYPTO_CUSTOM_ENGINE_NOT_SUPPORTED', 'Custom engines not supported by this OpenSSL')

/** Validates now: with key/cert it is a server context, else a client one. */
export function createSecureContext(options: SecureContextOptions = {}): SecureContext {
  const context = new SecureContext(options)
  if (hasCredentials(options)) context.serverContext()
  else context.clientContext()
  return context
}

/**
 * A server given a key or a certificate checks them at once; as with
 * node:tls, one without either can still be created (its handshakes fail).
 */
export function hasCredentials(options: SecureContextOptions): boolean {
  // Only a key and a certificate together can be checked; either alone is
  // accepted as node:tls accepts it, and its handshakes fail.
  return present(options.key) && present(options.cert)
}

function build<T>(make: () => T): T {
  try {
    return make()
  } catch (err) {
    throw fromNative(err)
  }
}

/** A PEM given as a string, Buffer, TypedArray, DataView or ArrayBuffer. */
function toBuffer(pem: Pem | ArrayBufferView | ArrayBuffer): Buffer {
  if (typeof pem === 'string') return Buffer.from(pem)
  if (ArrayBuffer.isView(pem)) return Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength)
  return Buffer.from(pem)
}

// As node:tls, null means "not given"; for key, cert and ca, so does any
// falsy value (node:tls tests `if (key)`).
const given = <T>(value: T | null | undefined): value is T => value !== undefined && value !== null
const present = <T>(value: T | null | undefined | false | ''): value is T => Boolean(value)

function nativeOptions(o: SecureContextOptions) {
  return {
    alpnProtocols: given(o.ALPNProtocols) ? o.ALPNProtocols.map(toBuffer) : undefined,
    ...versions(o),
    groups: groups(o.ecdhCurve),
    ciphers: given(o.ciphers) && o.ciphers !== '' ? toIanaCiphers(o.ciphers) : undefined,
    ca: trustAnchors(o.ca),
    ...identities(o),
    honorCipherOrder: o.honorCipherOrder ?? undefined,
    sigalgs: sigalgs(o.sigalgs),
    // getSharedSigalgs() is node:tls's on this Node: its OpenSSL's default list.
    opensslVersion: process.versions.openssl,
  }
}

/** node:tls's check: a non-empty string; the names are the binding's to judge. */
function sigalgs(list: unknown): string | undefined {
  if (list === undefined || list === null) return undefined
  if (typeof list !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', 'The "options.sigalgs" property must be of type string.')
  if (list === '') throw argumentError('ERR_INVALID_ARG_VALUE', "The property 'options.sigalgs' is invalid. Received ''")
  return list
}

// OpenSSL's curve names (and NIST's) for the groups rustls has.
const GROUPS: Record<string, string> = {
  x25519: 'X25519',
  'p-256': 'secp256r1',
  prime256v1: 'secp256r1',
  secp256r1: 'secp256r1',
  'p-384': 'secp384r1',
  secp384r1: 'secp384r1',
}

function groups(ecdhCurve: string | null | undefined): string[] | undefined {
  if (ecdhCurve == null || ecdhCurve === 'auto') return undefined
  const names = ecdhCurve.split(':').map((name) => GROUPS[name.trim().toLowerCase()])
  // node:tls (OpenSSL) refuses a list with a curve it does not know.
  if (names.length === 0 || names.some((n) => n === undefined)) {
    throw new KtlsError('ERR_CRYPTO_OPERATION_FAILED', 'Failed to set ECDH curve')
  }
  return names as string[]
}

// secureProtocol: OpenSSL method names; TLS 1.0 and 1.1 do not exist in rustls.
const METHODS: Record<string, [string | undefined, string | undefined]> = {
  TLS_method: [undefined, undefined],
  TLS_client_method: [undefined, undefined],
  TLS_server_method: [undefined, undefined],
  SSLv23_method: [undefined, undefined],
  SSLv23_client_method: [undefined, undefined],
  SSLv23_server_method: [undefined, undefined],
  TLSv1_2_method: ['TLSv1.2', 'TLSv1.2'],
  TLSv1_2_client_method: ['TLSv1.2', 'TLSv1.2'],
  TLSv1_2_server_method: ['TLSv1.2', 'TLSv1.2'],
}

/** minVersion/maxVersion, or what secureProtocol means (never both, as node:tls). */
/**
 * node:tls's defaults, which applications (and `--tls-min-v1.3`-style
 * flags) change: read when a context is made, as node:tls reads them. A
 * minimum below TLS 1.2 allows what ktls has anyway, TLS 1.2 on.
 */
function defaultMinVersion(): string | undefined {
  const min = tls.DEFAULT_MIN_VERSION
  return min === 'TLSv1.2' || min === 'TLSv1.3' ? min : undefined
}

function defaultMaxVersion(): string | undefined {
  return tls.DEFAULT_MAX_VERSION
}

function versions(o: SecureContextOptions): { minVersion?: string; maxVersion?: string } {
  const method = o.secureProtocol
  if (method == null) return { minVersion: o.minVersion ?? defaultMinVersion(), maxVersion: o.maxVersion ?? defaultMaxVersion() }
  if (o.minVersion != null || o.maxVersion != null) {
    throw argumentError('ERR_TLS_PROTOCOL_VERSION_CONFLICT', `TLS protocol version "${o.minVersion ?? o.maxVersion}" conflicts with secureProtocol "${method}"`)
  }
  const range = METHODS[method]
  // node:tls's own refusals, word for word.
  const disabled = /^(SSLv2|SSLv3)_(client_|server_)?method$/.exec(method)
  if (disabled) throw argumentError('ERR_TLS_INVALID_PROTOCOL_METHOD', `${disabled[1]} methods disabled`)
  if (!range) {
    const known = /^(TLSv1|TLSv1_1|DTLS\w*)_(client_|server_)?method$/.test(method)
    throw known
      ? argumentError('ERR_TLS_INVALID_PROTOCOL_VERSION', `${method}: TLS 1.0 and TLS 1.1 are not supported (TLSv1.2, TLSv1.3 are)`)
      : argumentError('ERR_TLS_INVALID_PROTOCOL_METHOD', `Unknown method: ${method}`)
  }
  return { minVersion: range[0], maxVersion: range[1] }
}

const listOf = <T>(value: T | T[] | null | undefined | false): T[] => (present(value) ? (Array.isArray(value) ? value : [value]) : [])

/**
 * `cert` and `key` as the binding takes them: chains (completed from `ca`,
 * as OpenSSL sends them) paired by index with unencrypted PEM keys. Several
 * keys, or encrypted ones, go through Node's own key parser (the passphrase,
 * every PEM form), each key paired with the certificate it belongs to.
 */
function identities(o: SecureContextOptions): { cert?: Buffer[]; key?: Buffer[] } {
  const certs = listOf(o.cert)
  const keys = listOf(o.key)
  const chains = certs.map((cert) => completeChain(toBuffer(cert), o.ca))
  const simple = keys.length <= 1 && certs.length <= 1 && !present(o.passphrase)
  if (simple && keys.every((k) => !isKeyObjectOption(k) && !toBuffer(k).includes('ENCRYPTED'))) {
    return { cert: chains.length ? chains : undefined, key: keys.length ? keys.map((k) => toBuffer(k as Pem)) : undefined }
  }
  // No passphrase is the empty one, as OpenSSL (so node:tls) tries it: an
  // encrypted key then fails with ERR_OSSL_BAD_DECRYPT, as there.
  const parsed = keys.map((k) =>
    isKeyObjectOption(k)
      ? createPrivateKey({ key: toBuffer(k.pem), passphrase: k.passphrase ?? o.passphrase ?? '' })
      : createPrivateKey({ key: toBuffer(k), passphrase: o.passphrase ?? '' }),
  )
  const paired = certs.map((cert, i) => {
    const leaf = new X509Certificate(toBuffer(cert))
    const key = parsed.find((k) => leaf.checkPrivateKey(k))
    if (!key) throw new KtlsError('ERR_INVALID_ARG_VALUE', `key/cert: no key given matches certificate ${i} (${leaf.subject.split('\n').join(', ')})`)
    return Buffer.from(key.export({ type: 'pkcs8', format: 'pem' }) as string)
  })
  return { cert: chains.length ? chains : undefined, key: paired.length ? paired : parsed.slice(0, 1).map((k) => Buffer.from(k.export({ type: 'pkcs8', format: 'pem' }) as string)) }
}

function isKeyObjectOption(k: KeyOption): k is { pem: Pem; passphrase?: string } {
  return typeof k === 'object' && k !== null && !Buffer.isBuffer(k) && 'pem' in k
}

/**
 * `ca`, else nothing (the Mozilla list, as Node's bundled roots); with
 * NODE_EXTRA_CA_CERTS, Node's roots plus that file, as node:tls does.
 */
function trustAnchors(ca: Pem | Pem[] | null | undefined | false): Buffer[] | undefined {
  if (present(ca)) return (Array.isArray(ca) ? ca : [ca]).filter(present).map(toBuffer)
  const extra = process.env.NODE_EXTRA_CA_CERTS
  if (!extra) return undefined
  return [...tls.rootCertificates.map(toBuffer), readFileSync(extra)]
}

/** The context a connection uses: `secureContext`, else one built from the inline options. */
export function contextFor(options: SecureContextOptions & { secureContext?: SecureContext }): SecureContext {
  return options.secureContext ?? new SecureContext(options)
}
