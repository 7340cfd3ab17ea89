// Result tables, rendered as text (stdout) or Markdown (docs/benchmarks.md).
// Cells are "median [min-max]" over the runs.
import { bulkRatio } from '../bulk.mjs'
import { handshakeKey, handshakeRatio, CERTS, PAIRS } from '../handshake.mjs'
import { memoryRatio } from '../memory.mjs'
import { httpRatio } from '../http.mjs'
import { filesRatio } from '../files.mjs'
import { fmt, summary as summaryOf, table } from './stats.mjs'

const KiB = (s) => s && { ...s, min: s.min / 1024, median: s.median / 1024, max: s.max / 1024 }

export function bulkTable(bulk) {
  const header = ['transport', 'GB/s', 'sender CPU-s/GiB', 'receiver CPU-s/GiB', 'GB/s vs net', 'GB/s vs node:tls']
  const rows = Object.entries(bulk.variants).map(([name, v]) => [
    v.label,
    fmt(v.gbps),
    fmt(v.senderCpuPerGiB, 3),
    fmt(v.receiverCpuPerGiB, 3),
    fmt(bulkRatio(bulk, 'gbps', name, 'net')),
    fmt(bulkRatio(bulk, 'gbps', name, 'tls')),
  ])
  if (bulk.projected) {
    rows.push([bulk.projected.label, '-', fmt(bulk.projected.senderCpuPerGiB, 3), fmt(bulk.projected.receiverCpuPerGiB, 3), '-', '-'])
  }
  if (bulk.aes) {
    rows.push([
      'AES-128-GCM alone, one core (openssl speed)',
      `enc ${fmt(bulk.aes.encryptGBps)} / dec ${fmt(bulk.aes.decryptGBps)}`,
      fmt(bulk.aes.encryptCpuPerGiB, 3),
      fmt(bulk.aes.decryptCpuPerGiB, 3),
      '-',
      '-',
    ])
  }
  return { header, rows }
}

/** Where the CPU goes: user (the code under test) vs system (the kernel), and both processes together. */
export function bulkSplitTable(bulk) {
  const header = ['transport', 'sender user', 'sender system', 'receiver user', 'receiver system', 'sender + receiver', 'total vs net']
  const rows = Object.entries(bulk.variants)
    .filter(([, v]) => v.senderUserPerGiB)
    .map(([name, v]) => {
      const system = (all, user) => summaryOf(v.runs.map((r) => r[all] - r[user]))
      return [
        v.label,
        fmt(v.senderUserPerGiB, 3),
        fmt(system('senderCpuPerGiB', 'senderUserPerGiB'), 3),
        fmt(v.receiverUserPerGiB, 3),
        fmt(system('receiverCpuPerGiB', 'receiverUserPerGiB'), 3),
        fmt(v.totalCpuPerGiB, 3),
        fmt(bulkRatio(bulk, 'totalCpuPerGiB', name, 'net')),
      ]
    })
  return { header, rows }
}

/** Each workload's variants, with ratios against node:http and node:https of the same rounds. */
export function httpTable(h) {
  const header = ['workload', 'server', 'requests/s', 'server CPU-us/req', 'req/s vs node:http', 'CPU/req vs node:http', 'req/s vs node:https', 'CPU/req vs node:https']
  const rows = []
  const us = (s) => s && { ...s, min: s.min * 1e6, median: s.median * 1e6, max: s.max * 1e6 }
  for (const [workload, w] of Object.entries(h.workloads)) {
    for (const [name, v] of Object.entries(w.variants)) {
      rows.push([
        workload,
        v.label,
        fmt(v.requestsPerSec, 0),
        fmt(us(v.serverCpuPerRequest), 1),
        fmt(httpRatio(h, workload, 'requestsPerSec', name, 'http')),
        fmt(httpRatio(h, workload, 'serverCpuPerRequest', name, 'http')),
        fmt(httpRatio(h, workload, 'requestsPerSec', name, 'https')),
        fmt(httpRatio(h, workload, 'serverCpuPerRequest', name, 'https')),
      ])
    }
  }
  return { header, rows }
}

const NAMES = { tls: 'node:tls', ktls: 'ktls', 'ktls-tls-order': "ktls, node:tls's suite order" }

export function filesTable(f) {
  const header = ['file, connections', 'server', 'GB/s', 'server CPU-s/GiB', 'GB/s vs node:https', 'CPU/GiB vs node:https', 'GB/s vs node:http']
  const rows = []
  for (const [workload, w] of Object.entries(f.workloads)) {
    for (const [name, v] of Object.entries(w.variants)) {
      rows.push([
        w.label,
        v.label,
        fmt(v.gbps, 2),
        fmt(v.serverCpuPerGiB, 3),
        fmt(filesRatio(f, workload, 'gbps', name, 'https')),
        fmt(filesRatio(f, workload, 'serverCpuPerGiB', name, 'https')),
        fmt(filesRatio(f, workload, 'gbps', name, 'http')),
      ])
    }
  }
  return { header, rows }
}

export function handshakeTable(hs) {
  const header = ['cert', 'server', 'client', 'suite', 'handshakes/s', 'server CPU-ms/hs', 'client CPU-ms/hs', 'hs/s vs baseline', 'CPU/hs vs baseline']
  const rows = []
  for (const cert of CERTS) {
    for (const [server, client] of PAIRS) {
      const c = hs.configs[handshakeKey(server, client, cert)]
      if (!c) continue
      // The server comparison judges the server's CPU; the client one the client's.
      const side = client === 'ktls' ? 'client' : 'server'
      const base = server === 'tls' && client === 'tls'
      const rate = side === 'client' ? 'clientPerSec' : 'serverPerSec'
      const cpu = side === 'client' ? 'clientCpuMs' : 'serverCpuMs'
      rows.push([
        cert === 'ecdsa' ? 'ECDSA P-256' : 'RSA-2048',
        NAMES[server],
        NAMES[client],
        c.negotiated?.cipher?.replace(/^TLS_/, '') ?? '-',
        fmt(c[rate], 0),
        fmt(c.serverCpuMs, 3),
        fmt(c.clientCpuMs, 3),
        base ? '(baseline)' : fmt(handshakeRatio(hs, rate, [server, client], ['tls', 'tls'], cert)),
        base ? '(baseline)' : `${side} ${fmt(handshakeRatio(hs, cpu, [server, client], ['tls', 'tls'], cert))}`,
      ])
    }
  }
  return { header, rows }
}

export function memoryTable(mem) {
  const header = ['server', 'RSS KiB/conn', 'JS heap KiB/conn', 'external KiB/conn', 'kernel slab KiB/conn', 'RSS vs node:tls', 'offloaded']
  const labels = { tls: 'node:tls', 'ktls-user': 'ktls, userspace path', ktls: 'ktls, offloaded' }
  const rows = Object.entries(mem.variants).map(([name, v]) => [
    labels[name] ?? name,
    fmt(KiB(v.rss), 1),
    fmt(KiB(v.heapUsed), 1),
    fmt(KiB(v.external), 1),
    fmt(KiB(v.kernelSlab), 1),
    name === 'tls' ? '(baseline)' : fmt(memoryRatio(mem, 'rss', name, 'tls')),
    name === 'tls' ? '-' : `${v.offloaded ?? 0}/${mem.config.connections}`,
  ])
  return { header, rows }
}

export function targetsTable(targets) {
  const header = ['target', 'limit', 'ratio median [min-max]', 'verdict']
  const rows = targets.map((t) => [t.text, t.limit, fmt(t.ratio), t.verdict])
  return { header, rows }
}

export const text = ({ header, rows }) => table(header, rows)

export function markdown({ header, rows }) {
  const esc = (c) => String(c).replace(/\|/g, '\\|')
  const line = (r) => `| ${r.map(esc).join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}
