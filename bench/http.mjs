// Scenario: HTTP serving, the workload most users run. The server is Node's
// own HTTP machinery (http.Server, or http2) fed by each transport, in a
// forked process that reports its CPU; the load comes from a C generator
// (wrk for HTTP/1.1, h2load for HTTP/2) on the other core.
//
// Workloads: 'small' 100-byte responses on 50 keep-alive connections (a
// Buffer and a string body), 'close' a new connection per request, 'bulk'
// 64 MiB responses on 4 connections, 'h2' HTTP/2 with 64 KiB responses and
// 10 streams per connection. Variants: node:http and node:https (baselines),
// ktls's userspace path, and ktls's offloaded data path with the kernel's
// crypto excluded (a plain TCP connection carried exactly as an offloaded
// one: libuv's handle, ktls's read hook; natively the host has no kTLS).
import { execFile } from 'node:child_process'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import { fileURLToPath } from 'node:url'
import { ktls } from './lib/transports.mjs'
import { cpuSecondsSince, forkPeer, isPeer, servePeer } from './lib/peer.mjs'
import { rotate, summary } from './lib/stats.mjs'

const FILE = fileURLToPath(import.meta.url)
const MiB = 2 ** 20
const SUITE = 'TLS_AES_128_GCM_SHA256'

export const HTTP_VARIANTS = {
  http: { label: 'node:http (no TLS)', tls: false },
  https: { label: 'node:https', tls: true },
  'ktls-user': { label: 'ktls.https, userspace path', tls: true },
  'ktls-raw': { label: 'ktls.https, offloaded data path, kernel crypto excluded', tls: false },
  ktls: { label: 'ktls.https, kernel TLS offload', tls: true },
}

export const WORKLOADS = {
  small: { label: '100 B responses, 50 keep-alive connections (Buffer body)', body: 100, connections: 50 },
  'small-string': { label: '100 B responses, 50 keep-alive connections (string body)', body: 100, connections: 50, string: true },
  close: { label: '100 B responses, a new connection per request', body: 100, connections: 50, close: true },
  bulk: { label: '64 MiB responses, 4 connections', body: 64 * MiB, connections: 4 },
  h2: { label: 'HTTP/2, 64 KiB responses, 10 streams per connection', body: 64 * 1024, connections: 4, h2: true },
}

/** Every workload x variant, `runs` rounds, variants interleaved in a rotated order. */
export async function httpServing({ variants, workloads, runs, seconds, bulkBytes, certs, execArgv = [], log = () => {} }) {
  const results = {}
  for (const workload of workloads) {
    const perVariant = Object.fromEntries(variants.map((v) => [v, []]))
    for (let run = 0; run < runs; run++) {
      for (const variant of rotate(variants, run)) {
        const r = await serveOnce(variant, workload, { seconds, bulkBytes, certs, execArgv })
        perVariant[variant].push(r)
        log(`http ${workload} run ${run + 1}/${runs} ${variant}: ${r.requestsPerSec.toFixed(0)} req/s, ` +
          `${(r.serverCpuPerRequest * 1e6).toFixed(1)} server CPU-us/req`)
      }
    }
    results[workload] = {
      label: WORKLOADS[workload].label,
      variants: Object.fromEntries(
        Object.entries(perVariant).map(([v, rs]) => [
          v,
          {
            label: HTTP_VARIANTS[v].label,
            runs: rs,
            requestsPerSec: summary(rs.map((r) => r.requestsPerSec)),
            serverCpuPerRequest: summary(rs.map((r) => r.serverCpuPerRequest)),
          },
        ]),
      ),
    }
  }
  return { seconds, runs, bulkBytes: bulkBytes ?? WORKLOADS.bulk.body, workloads: results }
}

async function serveOnce(variant, workload, { seconds, bulkBytes, certs, execArgv }) {
  const server = forkPeer(FILE, { execArgv, label: `http ${variant} server` })
  try {
    const { port } = await server.call('listen', { variant, workload, bulkBytes, tls: certs.ecdsa })
    const w = WORKLOADS[workload]
    const url = `${HTTP_VARIANTS[variant].tls ? 'https' : 'http'}://127.0.0.1:${port}/`
    // A warm-up (JIT, connection set-up), then the measured run; a smoke run has none.
    if (seconds > 1) await load(w, url, 1)
    await server.call('resetCpu')
    const { requests } = await load(w, url, seconds)
    const { cpuSeconds, paths } = await server.call('stats')
    if (requests === 0) throw new Error(`http ${variant} ${workload}: no request completed`)
    const loaded = Math.max(1, Math.round(seconds))
    return { requestsPerSec: requests / loaded, serverCpuPerRequest: cpuSeconds / requests, paths }
  } finally {
    await server.close()
  }
}

/** Runs the load generator for whole seconds (all wrk takes); resolves the requests it completed. */
function load(w, url, wanted) {
  const seconds = Math.max(1, Math.round(wanted))
  if (w.h2) {
    const args = ['-D', String(seconds), '-c', String(w.connections), '-m', '10', '-t', '1', url]
    return run('h2load', args).then((out) => ({ requests: Number(/(\d+) succeeded/.exec(out)?.[1] ?? 0) }))
  }
  // wrk counts a response slower than --timeout (default 2 s) as an error: a
  // 64 MiB one can take longer than that, in a guest above all.
  const args = ['-t', '1', '-c', String(w.connections), '-d', `${seconds}s`, '--timeout', '60s', ...(w.close ? ['-H', 'Connection: close'] : []), url]
  return run('wrk', args).then((out) => ({ requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0) }))
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) {
        const missing = err.code === 'ENOENT' ? ` (${cmd} is not installed: apt-get install ${cmd === 'wrk' ? 'wrk' : 'nghttp2-client'})` : ''
        reject(new Error(`${cmd} ${args.join(' ')} failed${missing}: ${stderr || err.message}`))
      } else resolve(stdout)
    })
  })
}

export { workloadRatio as httpRatio } from './lib/stats.mjs'

// ---- the server process ----

function peer() {
  let cpuStart = process.cpuUsage()
  const paths = new Set()
  servePeer({
    async listen({ variant, workload, bulkBytes, tls }) {
      const w = WORKLOADS[workload]
      const size = workload === 'bulk' && bulkBytes ? bulkBytes : w.body
      const body = w.string ? 'x'.repeat(size) : Buffer.alloc(size, 'x')
      const handler = (req, res) => {
        res.setHeader('content-type', 'text/plain')
        res.end(body)
      }
      const h2handler = (stream) => {
        stream.on('error', () => {}) // h2load leaves at the end of its run, mid-stream
        stream.respond({ ':status': 200 })
        stream.end(body)
      }
      const server = makeServer(variant, w, tls, handler, h2handler, (socket) => paths.add(pathOf(variant, socket)))
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
      return { port: server.address().port }
    },
    resetCpu() {
      cpuStart = process.cpuUsage()
    },
    stats() {
      return { cpuSeconds: cpuSecondsSince(cpuStart), paths: [...paths] }
    },
  })
}

function makeServer(variant, w, t, handler, h2handler, onSocket) {
  const tlsOptions = { key: t.key, cert: t.cert, ciphers: SUITE, minVersion: 'TLSv1.3' }
  const secure = variant !== 'http' && variant !== 'ktls-raw'
  const ktlsMode = variant === 'ktls' ? { ktls: 'require' } : variant === 'ktls-user' ? { ktls: 'off' } : {}
  if (w.h2) {
    if (variant === 'http') return http2.createServer().on('stream', h2handler).on('connection', onSocket)
    if (variant === 'https') return http2.createSecureServer({ ...tlsOptions, allowHTTP1: false }).on('stream', h2handler).on('secureConnection', onSocket)
    // ktls sockets handed to http2, as docs/integration.md shows.
    const h2 = http2.createServer().on('stream', h2handler)
    const options = secure ? { ...tlsOptions, ...ktlsMode, ALPNProtocols: ['h2'] } : { unencryptedBenchmarkOnly: true }
    return ktls()
      .createServer(options)
      .on('secureConnection', (socket) => {
        onSocket(socket)
        // What ALPN would have said on an offloaded connection (the raw one has no TLS).
        if (!secure) socket.alpnProtocol = 'h2'
        h2.emit('connection', socket)
      })
  }
  if (variant === 'http') return http.createServer({ keepAlive: true }, handler).on('connection', onSocket)
  if (variant === 'https') return https.createServer(tlsOptions, handler).on('secureConnection', onSocket)
  const options = secure ? { ...tlsOptions, ...ktlsMode } : { unencryptedBenchmarkOnly: true }
  return ktls().https.createServer(options, handler).on('secureConnection', onSocket)
}

/** What carried the connection, so a run can't silently measure the wrong path. */
function pathOf(variant, socket) {
  const status = socket.ktls
  if (!status) return variant
  if (variant === 'ktls' && !(status.tx && status.rx)) throw new Error(`not offloaded: ${JSON.stringify(status)}`)
  if (variant === 'ktls-user' && (status.tx || status.rx)) throw new Error("offloaded although ktls: 'off'")
  return status.tx && status.rx ? 'kernel' : (status.reason ?? 'userspace')
}

if (isPeer(import.meta.url)) peer()
