// createSecureContext: the rustls configuration built once and reused.
import { binding } from './native'
import { fromNative } from './errors'
import type { ClientSecureContext, ServerSecureContext } from '../binding/index'

type Pem = string | Buffer
export type KtlsMode = 'auto' | 'require' | 'off'

export interface SecureContextOptions {
  key?: Pem
  cert?: Pem
  ca?: Pem | Pem[]
  ALPNProtocols?: Array<string | Buffer | Uint8Array>
  minVersion?: 'TLSv1.2' | 'TLSv1.3'
  maxVersion?: 'TLSv1.2' | 'TLSv1.3'
  /** Colon-separated IANA suite names, in preference order, e.g. 'TLS_AES_256_GCM_SHA384'. */
  ciphers?: string
  /** Server: choose the suite by its own order (`ciphers`) rather than the client's. Default true, as node:tls. */
  honorCipherOrder?: boolean
}

/** A reusable context; client and server halves are built on first use. */
export class SecureContext {
  private client?: ClientSecureContext
  private server?: ServerSecureContext

  constructor(readonly options: SecureContextOptions) {}

  clientContext(): ClientSecureContext {
    this.client ??= build(() => new binding.ClientSecureContext(nativeOptions(this.options)))
    return this.client
  }

  serverContext(): ServerSecureContext {
    this.server ??= build(() => new binding.ServerSecureContext(nativeOptions(this.options)))
    return this.server
  }
}

/** Validates now: with key/cert it is a server context, else a client one. */
export function createSecureContext(options: SecureContextOptions = {}): SecureContext {
  const context = new SecureContext(options)
  if (options.key !== undefined || options.cert !== undefined) context.serverContext()
  else context.clientContext()
  return context
}

function build<T>(make: () => T): T {
  try {
    return make()
  } catch (err) {
    throw fromNative(err)
  }
}

const toBuffer = (pem: Pem | Uint8Array): Buffer => (typeof pem === 'string' ? Buffer.from(pem) : Buffer.from(pem))

function nativeOptions(o: SecureContextOptions) {
  const ca = o.ca === undefined ? undefined : Array.isArray(o.ca) ? o.ca : [o.ca]
  return {
    alpnProtocols: o.ALPNProtocols?.map(toBuffer),
    minVersion: o.minVersion,
    maxVersion: o.maxVersion,
    ciphers: o.ciphers,
    ca: ca?.map(toBuffer),
    cert: o.cert === undefined ? undefined : toBuffer(o.cert),
    key: o.key === undefined ? undefined : toBuffer(o.key),
    honorCipherOrder: o.honorCipherOrder,
  }
}

/** The context a connection uses: `secureContext`, else one built from the inline options. */
export function contextFor(options: SecureContextOptions & { secureContext?: SecureContext }): SecureContext {
  return options.secureContext ?? new SecureContext(options)
}
