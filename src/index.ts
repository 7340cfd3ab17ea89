// ktls: kernel TLS offload for Node.js, with node:tls's vocabulary. Where
// no ktls binary loads (another OS or architecture), the same names are
// node:tls's, never offloaded, and `capabilities().reason` says why.
import * as native from './api'
import * as fallback from './fallback'
import { bindingLoadError } from './native'

if (bindingLoadError) fallback.useFallback(bindingLoadError)
// The fallback's sockets and servers are node:tls's with ktls's members.
const api = (bindingLoadError ? { ...native, ...fallback, https: fallback.httpsModule } : native) as unknown as typeof native

export type { KtlsSocketOptions, KtlsStatus, ServerOptions, ConnectOptions, SecureContextOptions, KtlsMode } from './api'
export type { FileSource, SendFileOptions, ServeStaticOptions, StaticHandler, Capabilities } from './api'
export type { HttpsServerOptions, AgentOptions, UndiciConnectorOptions } from './api'
export { KtlsError, serveStatic } from './api'

export const KtlsSocket: typeof native.KtlsSocket = api.KtlsSocket
export type KtlsSocket = native.KtlsSocket
export const Server: typeof native.Server = api.Server
export type Server = native.Server
export const createServer: typeof native.createServer = api.createServer
export const connect: typeof native.connect = api.connect
export const upgrade: typeof native.upgrade = api.upgrade
export const SecureContext: typeof native.SecureContext = api.SecureContext
export type SecureContext = native.SecureContext
export const createSecureContext: typeof native.createSecureContext = api.createSecureContext
export const DEFAULT_CIPHERS: typeof native.DEFAULT_CIPHERS = api.DEFAULT_CIPHERS
export const capabilities: typeof native.capabilities = api.capabilities
export const HttpsServer: typeof native.HttpsServer = api.HttpsServer
export type HttpsServer = native.HttpsServer
export const createHttpsServer: typeof native.createHttpsServer = api.createHttpsServer
export const Agent: typeof native.Agent = api.Agent
export type Agent = native.Agent
export const undiciConnector: typeof native.undiciConnector = api.undiciConnector
export const https: typeof native.https = api.https
