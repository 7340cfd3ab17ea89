// createSecureContext: the rustls configuration built once and reused.
import { readFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import * as tls from 'node:tls'
import { binding } from './native'
import { fromNative } from './errors'
import { toIanaCiphers } from './ciphers'
import { completeChain } from './chain'
import type { ClientSecureContext, ServerSecureContext } from '../binding/index'

type Pem = string | Buffer
export type KtlsMode = 'auto' | 'require' | 'off'

export interface SecureContextOptions {
  key?: Pem | null | false
  cert?: Pem | null | false
  ca?: Pem | Pem[] | null | false
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
export class SecureContext {
  private client?: ClientSecureContext
  private readonly servers = new Map<string, ServerSecureContext>()
  private leaf?: X509Certificate | null

  constructor(readonly options: SecureContextOptions) {}

  /** The certificate this side presents (the first of `cert`), if any. */
  certificate(): X509Certificate | undefined {
    if (this.leaf === undefined) {
      const cert = this.options.cert
      this.leaf = present(cert) ? new X509Certificate(toBuffer(cert)) : null
    }
    return this.leaf ?? undefined
  }

  clientContext(): ClientSecureContext {
    this.client ??= build(() => new binding.ClientSecureContext(nativeOptions(this.options)))
    return this.client
  }

  serverContext(auth: ClientAuth = {}): ServerSecureContext {
    const requestCert = auth.requestCert === true
    // As node:tls: rejectUnauthorized matters only with requestCert, and defaults to true.
    const rejectUnauthorized = requestCert && auth.rejectUnauthorized !== false
    const key = `${requestCert}/${rejectUnauthorized}`
    let server = this.servers.get(key)
    if (!server) {
      const options = { ...nativeOptions(this.options), requestCert, rejectUnauthorized }
      server = build(() => new binding.ServerSecureContext(options))
      this.servers.set(key, server)
    }
    return server
  }
}

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
  return present(options.key) || present(options.cert)
}

function build<T>(make: () => T): T {
  try {
    return make()
  } catch (err) {
    throw fromNative(err)
  }
}

const toBuffer = (pem: Pem | Uint8Array): Buffer => (typeof pem === 'string' ? Buffer.from(pem) : Buffer.from(pem))

// As node:tls, null means "not given"; for key, cert and ca, so does any
// falsy value (node:tls tests `if (key)`).
const given = <T>(value: T | null | undefined): value is T => value !== undefined && value !== null
const present = <T>(value: T | null | undefined | false | ''): value is T => Boolean(value)

function nativeOptions(o: SecureContextOptions) {
  return {
    alpnProtocols: given(o.ALPNProtocols) ? o.ALPNProtocols.map(toBuffer) : undefined,
    minVersion: o.minVersion ?? undefined,
    maxVersion: o.maxVersion ?? undefined,
    ciphers: given(o.ciphers) && o.ciphers !== '' ? toIanaCiphers(o.ciphers) : undefined,
    ca: trustAnchors(o.ca),
    // As OpenSSL: the issuers found in `ca` go out after the certificate.
    cert: present(o.cert) ? completeChain(o.cert, o.ca) : undefined,
    key: present(o.key) ? toBuffer(o.key) : undefined,
    honorCipherOrder: o.honorCipherOrder ?? undefined,
  }
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
