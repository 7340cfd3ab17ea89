// The transports under test, each with the same two operations:
//   listen(name, { tls, onSocket }) -> Promise<{ server, port }>
//   connect(name, { port, tls })     -> Promise<socket>   (ready for data)
// `tls` is { key, cert, ca } (PEM). Every TLS variant is TLS 1.3 with
// AES-128-GCM pinned, so the ciphers match `openssl speed -evp aes-128-gcm`
// and the kernel's gcm(aes).
import net from 'node:net'
import tls from 'node:tls'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
let ktlsModule
/**
 * The package as a consumer loads it (dist/, compiled from src/).
 * KTLS_BENCH_DIST=/path/to/dist measures another build (an A/B of a change).
 */
export function ktls() {
  ktlsModule ??= require(process.env.KTLS_BENCH_DIST ? `${process.env.KTLS_BENCH_DIST}/index.js` : '../../dist/index.js')
  return ktlsModule
}

const SUITE = 'TLS_AES_128_GCM_SHA256'
const HOST = '127.0.0.1'
const RAW_REASON = 'raw benchmark socket'

export const VARIANTS = {
  net: { label: 'node net (no TLS)' },
  tls: { label: 'node:tls' },
  'ktls-user': { label: 'ktls, userspace path (rustls records)', ktls: 'off' },
  'ktls-raw': { label: 'ktls, offloaded data path, kernel crypto excluded' },
  ktls: { label: 'ktls, kernel TLS offload', ktls: 'require' },
}

const tlsOptions = (t) => ({ minVersion: 'TLSv1.3', ciphers: SUITE, ...t })

export function listen(name, { tls: t, onSocket }) {
  const server = makeServer(name, t, onSocket)
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, () => resolve({ server, port: server.address().port }))
  })
}

function makeServer(name, t, onSocket) {
  switch (name) {
    case 'net':
      return net.createServer(onSocket)
    case 'tls':
      return tls.createServer({ ...tlsOptions(t) }, onSocket)
    case 'ktls-raw':
      // The key and cert go unused (no handshake), but the server builds
      // its context eagerly and would refuse to start without them.
      return ktls().createServer({ key: t.key, cert: t.cert, unencryptedBenchmarkOnly: true }, checked(name, onSocket))
    case 'ktls-user':
    case 'ktls':
      return ktls().createServer({ ...tlsOptions(t), ktls: VARIANTS[name].ktls }, checked(name, onSocket))
    default:
      throw new Error(`unknown transport ${name}`)
  }
}

export function connect(name, { port, tls: t }) {
  return new Promise((resolve, reject) => {
    const socket = makeClient(name, port, t, () => {
      socket.off('error', reject)
      try {
        assertPath(name, socket)
        resolve(socket)
      } catch (err) {
        socket.destroy()
        reject(err)
      }
    })
    socket.once('error', reject)
  })
}

function makeClient(name, port, t, ready) {
  const to = { port, host: HOST }
  switch (name) {
    case 'net':
      return net.connect(to, ready)
    case 'tls':
      return tls.connect({ ...to, ...tlsOptions({ ca: t.ca }), servername: 'localhost' }, ready)
    case 'ktls-raw':
      return ktls().connect({ ...to, unencryptedBenchmarkOnly: true }, ready)
    case 'ktls-user':
    case 'ktls':
      return ktls().connect({ ...to, ...tlsOptions({ ca: t.ca }), servername: 'localhost', ktls: VARIANTS[name].ktls }, ready)
    default:
      throw new Error(`unknown transport ${name}`)
  }
}

function checked(name, onSocket) {
  return (socket) => {
    try {
      assertPath(name, socket)
    } catch (err) {
      socket.destroy()
      throw err
    }
    onSocket(socket)
  }
}

/** Fails loudly when a socket is not on the path its variant claims to measure. */
function assertPath(name, socket) {
  const status = socket.ktls
  if (name === 'ktls-raw' && !status?.reason?.includes(RAW_REASON)) {
    throw new Error(
      'ktls-raw needs KtlsSocket\'s unencryptedBenchmarkOnly option (binding.rawConnection); ' +
        `this build reports ${JSON.stringify(status)}: rebuild dist/ with npx tsc -p tsconfig.json`,
    )
  }
  if (name === 'ktls' && !(status.tx && status.rx)) throw new Error(`not offloaded: ${JSON.stringify(status)}`)
  if (name === 'ktls-user' && (status.tx || status.rx)) throw new Error(`offloaded although ktls: 'off'`)
}

/** What the socket negotiated, for the record. */
export function describe(socket) {
  const cipher = socket.getCipher?.()?.name
  return { cipher: cipher || null, protocol: socket.getProtocol?.() ?? null, ktls: socket.ktls ?? null }
}
