// The targets of issue #5. Each is a ratio against a baseline measured in
// the same run, taken run by run; the verdict uses the median ratio, and
// min-max is printed beside it. Targets are judged natively unless marked
// kind: 'kernel' (they need real kTLS, so the harness's guest).
import { bulkRatio } from '../bulk.mjs'
import { handshakeRatio } from '../handshake.mjs'
import { memoryRatio } from '../memory.mjs'
import { httpRatio } from '../http.mjs'
import { filesRatio } from '../files.mjs'
import { ratios, summary } from './stats.mjs'

const TARGETS = [
  {
    id: 'offload-throughput',
    text: 'Offloaded data path throughput vs node net',
    limit: ['>=', 0.9],
    ratio: (r) => r.bulk && bulkRatio(r.bulk, 'gbps', 'ktls-raw', 'net'),
  },
  {
    id: 'offload-cpu-sender',
    text: 'Offloaded data path sender CPU/GiB vs node net',
    limit: ['<=', 1.15],
    ratio: (r) => r.bulk && bulkRatio(r.bulk, 'senderCpuPerGiB', 'ktls-raw', 'net'),
  },
  {
    id: 'offload-cpu-receiver',
    text: 'Offloaded data path receiver CPU/GiB vs node net',
    limit: ['<=', 1.15],
    ratio: (r) => r.bulk && bulkRatio(r.bulk, 'receiverCpuPerGiB', 'ktls-raw', 'net'),
  },
  {
    id: 'projected-cpu-receiver',
    text: 'Projected kTLS receiver CPU/GiB vs node:tls',
    limit: ['<=', 0.8],
    ratio: (r) => projectedRatio(r.bulk, 'receiverCpuPerGiB'),
  },
  {
    id: 'projected-cpu-sender',
    text: 'Projected kTLS sender CPU/GiB vs node:tls',
    limit: ['<=', 1.1],
    ratio: (r) => projectedRatio(r.bulk, 'senderCpuPerGiB'),
  },
  {
    id: 'userspace-throughput',
    text: 'Userspace path throughput vs node:tls',
    limit: ['>=', 1.0],
    ratio: (r) => r.bulk && bulkRatio(r.bulk, 'gbps', 'ktls-user', 'tls'),
  },
  {
    id: 'handshake-server-cpu',
    text: 'ECDSA P-256 server CPU per handshake vs node:tls',
    limit: ['<=', 0.6],
    ratio: (r) => r.handshake && handshakeRatio(r.handshake, 'serverCpuMs', ['ktls', 'tls'], ['tls', 'tls'], 'ecdsa'),
  },
  {
    id: 'handshake-rate',
    text: 'ECDSA P-256 handshakes/s vs node:tls server, same client load',
    limit: ['>=', 1.0],
    ratio: (r) => r.handshake && handshakeRatio(r.handshake, 'serverPerSec', ['ktls', 'tls'], ['tls', 'tls'], 'ecdsa'),
  },
  {
    id: 'http-offload-rate',
    text: 'HTTP 100 B keep-alive: offloaded data path requests/s vs node:http',
    limit: ['>=', 0.95],
    ratio: (r) => httpRatio(r.http, 'small', 'requestsPerSec', 'ktls-raw', 'http'),
  },
  {
    id: 'http-offload-cpu',
    text: 'HTTP 100 B keep-alive: offloaded data path server CPU/request vs node:http',
    limit: ['<=', 1.1],
    ratio: (r) => httpRatio(r.http, 'small', 'serverCpuPerRequest', 'ktls-raw', 'http'),
  },
  {
    id: 'http-userspace-rate',
    text: 'HTTPS 100 B keep-alive: userspace path requests/s vs node:https',
    limit: ['>=', 1.0],
    ratio: (r) => httpRatio(r.http, 'small', 'requestsPerSec', 'ktls-user', 'https'),
  },
  {
    id: 'http-new-connection-rate',
    text: 'HTTPS, a new connection per request: requests/s vs node:https',
    limit: ['>=', 1.3],
    ratio: (r) => httpRatio(r.http, 'close', 'requestsPerSec', 'ktls-user', 'https'),
  },
  {
    id: 'files-offload-rate',
    text: 'Files, 64 MiB on 4 connections: offloaded data path (sendfile) GB/s vs node:https + pipe',
    limit: ['>=', 1.8],
    ratio: (r) => filesRatio(r.files, '64m-4', 'gbps', 'ktls-raw', 'https'),
  },
  {
    id: 'files-projected-cpu',
    text: 'Files, 64 MiB on 4 connections: projected kTLS server CPU/GiB vs node:https + pipe',
    limit: ['<=', 0.45],
    ratio: (r) => filesRatio(r.files, '64m-4', 'serverCpuPerGiB', 'projected', 'https'),
  },
  {
    id: 'memory-offloaded',
    kind: 'kernel',
    text: 'RSS per idle offloaded connection vs node:tls, same guest',
    limit: ['<=', 0.5],
    ratio: (r) => r.memory?.variants.ktls && memoryRatio(r.memory, 'rss', 'ktls', 'tls'),
  },
]

function projectedRatio(bulk, metric) {
  const tls = bulk?.variants.tls
  if (!bulk?.projected || !tls) return undefined
  return summary(ratios(bulk.projected[metric].values, tls.runs.map((x) => x[metric])))
}

/**
 * [{ id, text, limit, ratio, verdict: 'PASS' | 'MISS' }] for the targets a
 * result of this kind judges: 'native' (host) or 'kernel' (guest).
 */
export function evaluate(scenarios, kind) {
  const out = []
  for (const t of TARGETS) {
    if ((t.kind ?? 'native') !== kind) continue
    const ratio = t.ratio(scenarios)
    if (!ratio || !ratio.n) continue
    const [op, limit] = t.limit
    const pass = op === '>=' ? ratio.median >= limit : ratio.median <= limit
    out.push({ id: t.id, text: t.text, limit: `${op} ${limit}`, ratio, verdict: pass ? 'PASS' : 'MISS' })
  }
  return out
}
