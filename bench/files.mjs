// Scenario: serving files, the reason nginx and Netflix use kTLS. A forked
// server process serves one file per workload to wrk on the other core:
// node:http and node:https with fs.createReadStream().pipe(res) (what a Node
// user writes today), and ktls.serveStatic, whose bodies go out with
// sendFile: sendfile(2) from the page cache where the kernel writes the
// records. Natively the host has no kTLS: 'ktls-raw' is ktls.serveStatic on
// the offloaded data path with the crypto excluded (sendfile(2) over plain
// TCP, carried exactly as an offloaded connection), and the AES-128-GCM cost
// per GiB from `openssl speed`, measured in the same run, is added to its
// CPU for the projection. In a guest, 'ktls' is real kTLS (informational:
// UML's kernel crypto is generic C).
import { execFile } from 'node:child_process'
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { aesGcmSpeed } from './lib/aes.mjs'
import { ktls } from './lib/transports.mjs'
import { cpuSecondsSince, forkPeer, isPeer, servePeer } from './lib/peer.mjs'
import { rotate, summary } from './lib/stats.mjs'

const FILE = fileURLToPath(import.meta.url)
const KiB = 1024
const MiB = KiB * KiB
const GiB = MiB * KiB
const SUITE = 'TLS_AES_128_GCM_SHA256'

export const FILE_VARIANTS = {
  http: { label: 'node:http + createReadStream().pipe(res)', tls: false },
  https: { label: 'node:https + createReadStream().pipe(res)', tls: true },
  'ktls-raw': { label: 'ktls serveStatic, offloaded data path (sendfile(2)), kernel crypto excluded', tls: false },
  ktls: { label: 'ktls serveStatic, kernel TLS offload (sendfile(2))', tls: true },
}

export const FILE_WORKLOADS = {
  '16k-4': { label: '16 KiB file, 4 connections', size: 16 * KiB, connections: 4 },
  '16k-50': { label: '16 KiB file, 50 connections', size: 16 * KiB, connections: 50 },
  '1m-4': { label: '1 MiB file, 4 connections', size: MiB, connections: 4 },
  '1m-50': { label: '1 MiB file, 50 connections', size: MiB, connections: 50 },
  '64m-4': { label: '64 MiB file, 4 connections', size: 64 * MiB, connections: 4 },
  '64m-50': { label: '64 MiB file, 50 connections', size: 64 * MiB, connections: 50 },
}

/** Every workload x variant, `runs` rounds in rotated order; the AES cost once per round. */
export async function files({ variants, workloads, runs, seconds, sizeCap, certs, aes = true, execArgv = [], log = () => {} }) {
  const dir = mkdtempSync(join(tmpdir(), 'ktls-bench-files-'))
  try {
    const results = {}
    const aesRuns = []
    for (let run = 0; run < runs && aes; run++) aesRuns.push(await aesGcmSpeed({ parallel: aes === 'parallel' }))
    for (const workload of workloads) {
      const w = FILE_WORKLOADS[workload]
      const size = Math.min(w.size, sizeCap ?? Infinity)
      writeFileSync(join(dir, 'file'), Buffer.alloc(size, 'k'))
      const perVariant = Object.fromEntries(variants.map((v) => [v, []]))
      for (let run = 0; run < runs; run++) {
        for (const variant of rotate(variants, run)) {
          const r = await serveOnce(variant, w, { dir, size, seconds, certs, execArgv })
          perVariant[variant].push(r)
          log(`files ${workload} run ${run + 1}/${runs} ${variant}: ${r.gbps.toFixed(2)} GB/s, ${r.serverCpuPerGiB.toFixed(3)} server CPU-s/GiB`)
        }
      }
      results[workload] = { label: w.label, size, variants: summarize(perVariant, aesRuns) }
    }
    // `window`: run.mjs keeps a scenario's duration in `seconds`.
    return { window: seconds, runs, aes: aesRuns.length ? aesSummary(aesRuns) : undefined, workloads: results }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function summarize(perVariant, aesRuns) {
  const out = {}
  for (const [v, rs] of Object.entries(perVariant)) {
    out[v] = { label: FILE_VARIANTS[v].label, runs: rs, gbps: summary(rs.map((r) => r.gbps)), serverCpuPerGiB: summary(rs.map((r) => r.serverCpuPerGiB)) }
  }
  // The projection: the offloaded data path plus the kernel's AES-128-GCM work per GiB sent.
  const raw = perVariant['ktls-raw']
  if (raw && aesRuns.length) {
    const projected = raw.map((r, i) => ({ serverCpuPerGiB: r.serverCpuPerGiB + GiB / aesRuns[i % aesRuns.length].encryptBytesPerSec, gbps: r.gbps }))
    out.projected = {
      label: 'ktls serveStatic, projected kTLS (offloaded data path + AES-128-GCM per GiB)',
      runs: projected,
      gbps: summary(projected.map((r) => r.gbps)),
      serverCpuPerGiB: summary(projected.map((r) => r.serverCpuPerGiB)),
    }
  }
  return out
}

function aesSummary(runs) {
  return { method: runs[0].method, encryptCpuPerGiB: summary(runs.map((r) => GiB / r.encryptBytesPerSec)) }
}

async function serveOnce(variant, w, { dir, size, seconds, certs, execArgv }) {
  const server = forkPeer(FILE, { execArgv, label: `files ${variant} server` })
  try {
    const { port } = await server.call('listen', { variant, dir, tls: certs.ecdsa })
    const url = `${FILE_VARIANTS[variant].tls ? 'https' : 'http'}://127.0.0.1:${port}/file`
    if (seconds > 1) await wrk(w.connections, url, 1)
    await server.call('resetCpu')
    const { requests, bytes } = await wrk(w.connections, url, seconds)
    const { cpuSeconds, paths } = await server.call('stats')
    // 64 MiB to each of 50 connections may not finish in the window: the bytes wrk read count.
    if (requests === 0 && bytes === 0) throw new Error(`files ${variant}: nothing served`)
    const served = Math.max(bytes, requests * size)
    return { gbps: served / 1e9 / Math.max(1, Math.round(seconds)), serverCpuPerGiB: cpuSeconds / (served / GiB), requests, paths }
  } finally {
    await server.close()
  }
}

/** wrk for whole seconds; the requests and bytes it read. */
function wrk(connections, url, wanted) {
  const seconds = Math.max(1, Math.round(wanted))
  const args = ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '--timeout', '60s', url]
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk ${args.join(' ')} failed: ${stderr || err.message}`))
      const m = /(\d+) requests in [\d.]+\w+, ([\d.]+)(\w+) read/.exec(stdout)
      const unit = { B: 1, KB: KiB, MB: MiB, GB: GiB }[m?.[3] ?? 'B'] ?? 1
      resolve({ requests: Number(m?.[1] ?? 0), bytes: Number(m?.[2] ?? 0) * unit })
    })
  })
}

export { workloadRatio as filesRatio } from './lib/stats.mjs'

// ---- the server process ----

function peer() {
  let cpuStart = process.cpuUsage()
  const paths = new Set()
  servePeer({
    async listen({ variant, dir, tls }) {
      const server = makeServer(variant, dir, tls, (socket) => paths.add(pathOf(variant, socket)))
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

function makeServer(variant, dir, t, onSocket) {
  // What a Node user writes today: a stream piped into the response.
  const piped = (req, res) => {
    res.setHeader('content-type', 'application/octet-stream')
    createReadStream(join(dir, 'file')).pipe(res)
  }
  const tlsOptions = { key: t.key, cert: t.cert, ciphers: SUITE, minVersion: 'TLSv1.3' }
  if (variant === 'http') return http.createServer({ keepAlive: true }, piped).on('connection', onSocket)
  if (variant === 'https') return https.createServer(tlsOptions, piped).on('secureConnection', onSocket)
  const k = ktls()
  const options = variant === 'ktls' ? { ...tlsOptions, ktls: 'require' } : { unencryptedBenchmarkOnly: true }
  return k.https.createServer(options, k.serveStatic(dir)).on('secureConnection', onSocket)
}

function pathOf(variant, socket) {
  const status = socket.ktls
  if (!status) return variant
  if (variant === 'ktls' && !(status.tx && status.rx)) throw new Error(`not offloaded: ${JSON.stringify(status)}`)
  return status.tx && status.rx ? 'kernel' : (status.reason ?? 'userspace')
}

if (isPeer(import.meta.url)) peer()
