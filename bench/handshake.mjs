// Scenario 2: full TLS 1.3 handshakes, a new connection each. A server
// process and a load-generator process (50 concurrent connect loops; each
// connection is ended on secureConnect and replaced). After a warm-up,
// both processes count completed handshakes and their own CPU over the
// same window.
//   server comparison: ktls server vs node:tls server, node:tls clients
//   client comparison: ktls client vs node:tls client, node:tls server
//   control (ECDSA): a ktls server given node:tls's suite order, so both
//   servers negotiate the same suite (ktls prefers AES-128-GCM-SHA256,
//   node:tls AES-256-GCM-SHA384): what ktls's own default is worth
import os from 'node:os'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { ktls } from './lib/transports.mjs'
import { cpuSeconds, forkPeer, isPeer, nowNs, servePeer, sleep } from './lib/peer.mjs'
import { ratios, rotate, summary } from './lib/stats.mjs'

const FILE = fileURLToPath(import.meta.url)
const HOST = '127.0.0.1'

/** [server, client] implementations; node:tls <-> node:tls is the baseline of both comparisons. */
export const PAIRS = [
  ['tls', 'tls'],
  ['ktls', 'tls'],
  ['ktls-tls-order', 'tls'],
  ['tls', 'ktls'],
]
export const CERTS = ['ecdsa', 'rsa']
/** node:tls's TLS 1.3 suite order (tls.DEFAULT_CIPHERS). */
const NODE_TLS13_ORDER = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256'
/** The control runs with the ECDSA certificate only. */
const controlSkipped = (server, cert) => server === 'ktls-tls-order' && cert !== 'ecdsa'
const key = (server, client, cert) => `${cert}/${server}-server/${client}-client`

export async function handshake({ runs, seconds, warmup, concurrency, certs, execArgv = [], log = () => {} }) {
  const configs = CERTS.flatMap((cert) =>
    PAIRS.filter(([server]) => !controlSkipped(server, cert)).map(([server, client]) => ({ server, client, cert })),
  )
  const perConfig = Object.fromEntries(configs.map((c) => [key(c.server, c.client, c.cert), []]))
  for (let run = 0; run < runs; run++) {
    for (const config of rotate(configs, run)) {
      const r = await handshakeOnce({ ...config, seconds, warmup, concurrency, tls: certs[config.cert], execArgv })
      perConfig[key(config.server, config.client, config.cert)].push(r)
      log(`handshake run ${run + 1}/${runs} ${key(config.server, config.client, config.cert)}: ` +
        `${r.serverPerSec.toFixed(0)}/s, server ${r.serverCpuMs.toFixed(3)} / client ${r.clientCpuMs.toFixed(3)} CPU-ms each`)
    }
  }
  return summarize(perConfig, { runs, seconds, warmup, concurrency })
}

async function handshakeOnce({ server, client, seconds, warmup, concurrency, tls: pem, execArgv }) {
  const s = forkPeer(FILE, { execArgv, label: `handshake ${server} server` })
  const c = forkPeer(FILE, { execArgv, label: `handshake ${client} client` })
  try {
    const { port } = await s.call('listen', { impl: server, tls: pem })
    await c.call('start', { impl: client, port, concurrency, tls: pem })
    await sleep(warmup * 1000)
    const [s0, c0] = await Promise.all([s.call('mark'), c.call('mark')])
    await sleep(seconds * 1000)
    const [s1, c1] = await Promise.all([s.call('mark'), c.call('mark')])
    await c.call('stop')
    const window = (a, b) => ({ count: b.count - a.count, seconds: (b.ns - a.ns) / 1e9, cpu: b.cpu - a.cpu, errors: b.errors - a.errors })
    const sw = window(s0, s1)
    const cw = window(c0, c1)
    if (sw.count === 0 || cw.count === 0) throw new Error(`no handshakes completed (server ${sw.count}, client ${cw.count}, errors ${sw.errors}/${cw.errors})`)
    return {
      serverPerSec: sw.count / sw.seconds,
      clientPerSec: cw.count / cw.seconds,
      serverCpuMs: (sw.cpu * 1000) / sw.count,
      clientCpuMs: (cw.cpu * 1000) / cw.count,
      serverCores: sw.cpu / sw.seconds,
      clientCores: cw.cpu / cw.seconds,
      errors: { server: sw.errors, client: cw.errors },
      negotiated: c1.negotiated,
      loadavg1: os.loadavg()[0],
    }
  } finally {
    await Promise.all([c.close(), s.close()])
  }
}

function summarize(perConfig, config) {
  const configs = {}
  for (const [name, runs] of Object.entries(perConfig)) {
    const metric = (m) => summary(runs.map((r) => r[m]))
    configs[name] = {
      serverPerSec: metric('serverPerSec'),
      clientPerSec: metric('clientPerSec'),
      serverCpuMs: metric('serverCpuMs'),
      clientCpuMs: metric('clientCpuMs'),
      serverCores: metric('serverCores'),
      clientCores: metric('clientCores'),
      negotiated: runs[0]?.negotiated,
      runs,
    }
  }
  return { config, configs }
}

/** Per-run ratio of `metric` between two configurations. */
export function handshakeRatio(result, metric, [server, client], [baseServer, baseClient], cert) {
  const a = result.configs[key(server, client, cert)]?.runs.map((r) => r[metric])
  const b = result.configs[key(baseServer, baseClient, cert)]?.runs.map((r) => r[metric])
  return a && b ? summary(ratios(a, b)) : undefined
}

export { key as handshakeKey }

// ---- the peer process ----

function peer() {
  let count = 0
  let errors = 0
  let negotiated
  let stopping = false
  let loops = []
  const mark = () => ({ ns: nowNs(), cpu: cpuSeconds(), count, errors, negotiated })
  servePeer({
    async listen({ impl, tls: pem }) {
      const options = { key: pem.key, cert: pem.cert, minVersion: 'TLSv1.3' }
      if (impl === 'ktls-tls-order') options.ciphers = NODE_TLS13_ORDER
      const server = impl.startsWith('ktls') ? ktls().createServer(options) : tls.createServer(options)
      server.on('secureConnection', (socket) => {
        count++
        socket.on('error', () => {})
        socket.resume() // read, as a real server does, so the client's FIN closes it
      })
      server.on('tlsClientError', () => errors++)
      await new Promise((resolve) => server.listen({ port: 0, host: HOST, backlog: 1024 }, resolve))
      return { port: server.address().port }
    },
    async start({ impl, port, concurrency, tls: pem }) {
      const context = impl === 'ktls' ? ktls().createSecureContext({ ca: pem.ca }) : tls.createSecureContext({ ca: pem.ca })
      const connect = impl === 'ktls' ? ktls().connect : tls.connect
      const options = { port, host: HOST, servername: 'localhost', secureContext: context, minVersion: 'TLSv1.3' }
      const once = () =>
        new Promise((resolve) => {
          let secure = false
          const socket = connect(options, () => {
            secure = true
            count++
            negotiated ??= { cipher: socket.getCipher()?.name, protocol: socket.getProtocol() }
            // end(), not destroy(): node:tls emits secureConnect before its
            // Finished has left the process, and destroy() would drop it.
            socket.end()
            socket.resume() // drain session tickets; the server's FIN then closes it
            resolve()
          })
          socket.on('error', () => {
            if (secure) return // late errors of a finished connection (e.g. reset while closing)
            errors++
            resolve()
          })
        })
      const loop = async () => {
        while (!stopping) await once()
      }
      loops = Array.from({ length: concurrency }, loop)
    },
    mark: async () => mark(),
    async stop() {
      stopping = true
      await Promise.all(loops)
    },
  })
}

if (isPeer(import.meta.url)) peer()
