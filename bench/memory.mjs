// Scenario 3: memory of idle established connections. A server process
// (started with --expose-gc) and two node:tls client processes that open
// `connections` TLS connections between them and keep them open. The
// server reads its sockets (as a real server would, so reads are armed)
// and measures RSS, JS heap and external memory after a full GC, before
// and after; the difference divided by the count is the cost per connection.
import { readFileSync } from 'node:fs'
import os from 'node:os'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { listen } from './lib/transports.mjs'
import { forkPeer, isPeer, servePeer, sleep } from './lib/peer.mjs'
import { ratios, rotate, summary } from './lib/stats.mjs'

const FILE = fileURLToPath(import.meta.url)
const HOST = '127.0.0.1'
const OPEN_CONCURRENCY = 100
// Opening thousands of node:tls connections is client-bound: two client
// processes use both cores.
const CLIENT_PROCESSES = 2
const METRICS = ['rss', 'heapUsed', 'external', 'kernelSlab']

export async function memory({ variants, connections, runs, idle, certs, log = () => {} }) {
  const perVariant = Object.fromEntries(variants.map((v) => [v, []]))
  for (let run = 0; run < runs; run++) {
    for (const variant of rotate(variants, run)) {
      const r = await memoryOnce(variant, { connections, idle, tls: certs.ecdsa })
      perVariant[variant].push(r)
      log(`memory run ${run + 1}/${runs} ${variant}: ${(r.rss / 1024).toFixed(1)} KiB RSS, ` +
        `${(r.heapUsed / 1024).toFixed(1)} KiB heap, ${(r.external / 1024).toFixed(1)} KiB external per connection`)
    }
  }
  const out = {}
  for (const [name, runs] of Object.entries(perVariant)) {
    out[name] = { runs, offloaded: runs[0]?.offloaded }
    for (const m of METRICS) out[name][m] = summary(runs.map((r) => r[m]))
  }
  return { config: { connections, runs, idle, openConcurrency: OPEN_CONCURRENCY, clientProcesses: CLIENT_PROCESSES, client: 'node:tls' }, variants: out }
}

async function memoryOnce(variant, { connections, idle, tls: pem }) {
  const server = forkPeer(FILE, { execArgv: ['--expose-gc'], label: `memory ${variant} server` })
  const clients = Array.from({ length: CLIENT_PROCESSES }, (_, i) => forkPeer(FILE, { label: `memory client ${i}` }))
  try {
    const { port } = await server.call('listen', { variant, tls: pem })
    const before = await server.call('snapshot')
    const share = (i) => Math.floor(connections / CLIENT_PROCESSES) + (i < connections % CLIENT_PROCESSES ? 1 : 0)
    await Promise.all(clients.map((c, i) => c.call('open', { port, connections: share(i), tls: pem })))
    const established = await server.call('waitFor', { connections })
    await sleep(idle * 1000)
    const after = await server.call('snapshot')
    const per = (m) => (after[m] - before[m]) / connections
    return {
      connections,
      rss: per('rss'),
      heapUsed: per('heapUsed'),
      external: per('external'),
      kernelSlab: per('kernelSlab'),
      offloaded: established.offloaded,
      loadavg1: os.loadavg()[0],
      before,
      after,
    }
  } finally {
    await Promise.all([...clients.map((c) => c.close()), server.close()])
  }
}

export function memoryRatio(result, metric, variant, baseline) {
  const a = result.variants[variant]?.runs.map((r) => r[metric])
  const b = result.variants[baseline]?.runs.map((r) => r[metric])
  return a && b ? summary(ratios(a, b)) : undefined
}

/** Kernel slab memory (bytes): socket and kTLS state live there, outside RSS. */
function kernelSlab() {
  const m = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))
  return m ? Number(m[1]) * 1024 : NaN
}

// ---- the peer processes ----

function peer() {
  const sockets = []
  let waiter
  servePeer({
    async listen({ variant, tls: pem }) {
      const onSocket = (socket) => {
        sockets.push(socket)
        socket.on('error', () => {})
        socket.on('data', () => {})
        waiter?.()
      }
      const { server, port } = await listen(variant, { tls: pem, onSocket })
      server.maxConnections = Infinity
      return { port }
    },
    async snapshot() {
      for (let i = 0; i < 4; i++) {
        globalThis.gc()
        await sleep(50)
      }
      const m = process.memoryUsage()
      return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers, kernelSlab: kernelSlab(), sockets: sockets.length }
    },
    async waitFor({ connections }) {
      while (sockets.length < connections) await new Promise((resolve) => (waiter = resolve))
      const offloaded = sockets.filter((s) => s.ktls?.tx && s.ktls?.rx).length
      return { established: sockets.length, offloaded }
    },
    async open({ port, connections, tls: pem }) {
      const secureContext = tls.createSecureContext({ ca: pem.ca })
      const options = { port, host: HOST, servername: 'localhost', secureContext, minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' }
      let next = 0
      const worker = async () => {
        while (next < connections) {
          next++
          const socket = await new Promise((resolve, reject) => {
            const s = tls.connect(options, () => resolve(s))
            s.once('error', reject)
          })
          sockets.push(socket)
        }
      }
      await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, worker))
      return { open: sockets.length }
    },
  })
}

if (isPeer(import.meta.url)) peer()
