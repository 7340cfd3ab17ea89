// Compiled (never run) by `npm run lint` against the published typings
// (dist/index.d.ts): the public API as a TypeScript user writes it.
// `@ts-expect-error` lines must stay errors.
import * as net from 'node:net'
import * as ktls from '../../dist/index'

const key = Buffer.from('')
const cert = Buffer.from('')

const server: ktls.Server = ktls.createServer({ key, cert, ALPNProtocols: ['http/1.1'], requestCert: false }, (socket) => {
  const socketIsNet: net.Socket = socket
  const status: ktls.KtlsStatus = socket.ktls
  const offloaded: boolean = status.tx && status.rx
  const reason: string | undefined = status.reason
  void [socketIsNet, offloaded, reason]
  socket.sendFile('/etc/hostname', { offset: 0, length: 4 }).then((bytes: number) => bytes)
  socket.updateKeys({ requestPeerUpdate: false }).catch((err: ktls.KtlsError) => err.code)
  const capped: boolean = socket.setMaxSendFragment(1024)
  const exported: Buffer = socket.exportKeyingMaterial(32, 'EXPORTER-label')
  void [capped, exported]
})
server.listen(0)

const client: ktls.KtlsSocket = ktls.connect({ host: 'example.com', port: 443, ktls: 'require', recordLimit: 1 << 20 }, () => {
  client.getPeerCertificate(true)
  client.getProtocol()
})
// @ts-expect-error: the mode is one of 'auto' | 'require' | 'off'
ktls.connect({ host: 'example.com', port: 443, ktls: 'always' })

const caps: ktls.Capabilities = ktls.capabilities()
const rekey: boolean = caps.rekey && caps.ciphers.TLS_AES_128_GCM_SHA256
void rekey

const context: ktls.SecureContext = ktls.createSecureContext({ ca: cert, minVersion: 'TLSv1.3' })
ktls.upgrade(new net.Socket(), { secureContext: context, servername: 'example.com' }).then((s: ktls.KtlsSocket) => s.ktls)

const handler: ktls.StaticHandler = ktls.serveStatic('./public', { maxAge: 60_000, dotfiles: 'deny' })
const web = ktls.createHttpsServer({ key, cert }, handler)
void web
const agent: ktls.Agent = new ktls.Agent({ keepAlive: true })
ktls.https.get({ host: 'example.com', agent }, (res) => res.resume())
const connector = ktls.undiciConnector({ timeout: 5000 })
void connector
const ciphers: string = ktls.DEFAULT_CIPHERS
void ciphers
