// ktls's API on the native binding; index.ts picks it, or node:tls
// (fallback.ts) where the binding cannot load.
import { binding, bindingLoadError } from './native'

export { KtlsSocket, type KtlsSocketOptions, type KtlsStatus } from './socket'
export { Server, createServer, type ServerOptions } from './server'
export { connect, upgrade, type ConnectOptions } from './connect'
export { SecureContext, createSecureContext, type SecureContextOptions, type KtlsMode } from './context'
export { KtlsError } from './errors'
export type { FileSource, SendFileOptions } from './sendfile'
export { serveStatic, type ServeStaticOptions, type StaticHandler } from './static'

/** The suites used when `ciphers` is not given, in preference order (as tls.DEFAULT_CIPHERS). */
export const DEFAULT_CIPHERS: string = bindingLoadError ? '' : binding.defaultCiphers()

export interface Capabilities {
  kernel: string
  ulp: boolean
  reason?: string
  ciphers: {
    TLS_AES_128_GCM_SHA256: boolean
    TLS_AES_256_GCM_SHA384: boolean
    TLS_CHACHA20_POLY1305_SHA256: boolean
  }
  rekey: boolean
  rxExpectNoPad: boolean
  /** `TLS_TX_ZEROCOPY_RO` (Linux 5.19+): sendFile's `zeroCopy` option takes effect. */
  txZeroCopy: boolean
  /** `TLS_TX_MAX_PAYLOAD_LEN` (Linux 6.19+): the kernel honours `setMaxSendFragment()`. */
  txMaxPayload: boolean
}

/** What this kernel can offload (probed once per process). */
export function capabilities(): Capabilities {
  const c = binding.capabilities()
  const result: Capabilities = {
    kernel: c.kernel,
    ulp: c.ulp,
    ciphers: {
      TLS_AES_128_GCM_SHA256: c.aes128Gcm,
      TLS_AES_256_GCM_SHA384: c.aes256Gcm,
      TLS_CHACHA20_POLY1305_SHA256: c.chacha20Poly1305,
    },
    rekey: c.rekey,
    rxExpectNoPad: c.rxExpectNoPad,
    txZeroCopy: c.txZeroCopy,
    txMaxPayload: c.txMaxPayload,
  }
  if (c.reason !== undefined) result.reason = c.reason
  return result
}
export { HttpsServer, createHttpsServer, Agent, undiciConnector, type HttpsServerOptions, type AgentOptions, type UndiciConnectorOptions } from './http'
export * as https from './https'
