// Scenario 1 (and 4 in the guest): bulk throughput over one connection.
// Two processes (a server and a client, both forked); in each run the
// client sends `bytes` in 64 KiB writes, then the server sends `bytes`
// back, so every transport is measured in both directions. Each process
// reports process.cpuUsage() (all threads) over its part; throughput is
// bytes over (last byte received - first write), on CLOCK_MONOTONIC.
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { connect, describe, listen, VARIANTS } from './lib/transports.mjs'
import { cpuSplitSince, forkPeer, isPeer, nowNs, servePeer } from './lib/peer.mjs'
import { ratios, rotate, summary } from './lib/stats.mjs'
import { aesGcmSpeed } from './lib/aes.mjs'

const FILE = fileURLToPath(import.meta.url)
const WRITE_SIZE = 64 * 1024
const GiB = 2 ** 30

/**
 * Runs `runs` rounds; each round measures every variant once (in a rotated
 * order) and, when `aes` is set, the AES-GCM cost with openssl speed
 * ('parallel': encrypt and decrypt at once, for a smoke run).
 */
export async function bulk({ variants, bytes, runs, certs, aes = true, execArgv = [], log = () => {} }) {
  const perVariant = Object.fromEntries(variants.map((v) => [v, []]))
  const aesRuns = []
  for (let run = 0; run < runs; run++) {
    if (aes) aesRuns.push(await aesGcmSpeed({ parallel: aes === 'parallel' }))
    for (const variant of rotate(variants, run)) {
      const result = await bulkOnce(variant, { bytes, certs, execArgv })
      perVariant[variant].push(result)
      log(`bulk run ${run + 1}/${runs} ${variant}: ${result.gbps.toFixed(2)} GB/s, ` +
        `sender ${result.senderCpuPerGiB.toFixed(3)} / receiver ${result.receiverCpuPerGiB.toFixed(3)} CPU-s/GiB`)
    }
  }
  return summarize(perVariant, aesRuns, { bytes, runs, writeSize: WRITE_SIZE })
}

async function bulkOnce(variant, { bytes, certs, execArgv }) {
  const server = forkPeer(FILE, { execArgv, label: `bulk ${variant} server` })
  const client = forkPeer(FILE, { execArgv, label: `bulk ${variant} client` })
  try {
    const { port } = await server.call('listen', { variant, tls: certs.ecdsa })
    const clientInfo = await client.call('connect', { variant, port, tls: certs.ecdsa })
    const serverInfo = await server.call('accepted')
    const upload = await leg(client, server, bytes)
    const download = await leg(server, client, bytes)
    await client.call('end')
    return combine(variant, [upload, download], { client: clientInfo, server: serverInfo })
  } finally {
    await Promise.all([client.close(), server.close()])
  }
}

/** One direction: arm the receiver, then send; both report their CPU. */
async function leg(sender, receiver, bytes) {
  await receiver.call('expect', { bytes })
  const [sent, received] = await Promise.all([sender.call('send', { bytes }), receiver.call('received')])
  const seconds = (received.lastByteNs - sent.startNs) / 1e9
  return {
    bytes,
    seconds,
    senderCpu: sent.cpu.total,
    receiverCpu: received.cpu.total,
    senderUser: sent.cpu.user,
    receiverUser: received.cpu.user,
  }
}

function combine(variant, legs, negotiated) {
  const total = (f) => legs.reduce((a, l) => a + f(l), 0)
  const bytes = total((l) => l.bytes)
  const gib = bytes / GiB
  return {
    variant,
    gbps: bytes / total((l) => l.seconds) / 1e9,
    senderCpuPerGiB: total((l) => l.senderCpu) / gib,
    receiverCpuPerGiB: total((l) => l.receiverCpu) / gib,
    // The user/system split: user time is the code under test (JS, V8, the
    // binding, rustls); system time is the kernel's, and on loopback the
    // receive side's TCP work lands in whichever process the scheduler finds.
    senderUserPerGiB: total((l) => l.senderUser) / gib,
    receiverUserPerGiB: total((l) => l.receiverUser) / gib,
    totalCpuPerGiB: total((l) => l.senderCpu + l.receiverCpu) / gib,
    legs: legs.map((l) => ({ ...l, direction: l === legs[0] ? 'client->server' : 'server->client' })),
    negotiated,
    loadavg1: os.loadavg()[0], // others' load on this shared machine, for the record
  }
}

function summarize(perVariant, aesRuns, config) {
  const variants = {}
  for (const [name, runs] of Object.entries(perVariant)) {
    variants[name] = {
      label: VARIANTS[name].label,
      gbps: summary(runs.map((r) => r.gbps)),
      senderCpuPerGiB: summary(runs.map((r) => r.senderCpuPerGiB)),
      receiverCpuPerGiB: summary(runs.map((r) => r.receiverCpuPerGiB)),
      senderUserPerGiB: summary(runs.map((r) => r.senderUserPerGiB)),
      receiverUserPerGiB: summary(runs.map((r) => r.receiverUserPerGiB)),
      totalCpuPerGiB: summary(runs.map((r) => r.totalCpuPerGiB)),
      negotiated: runs[0]?.negotiated,
      runs,
    }
  }
  const out = { config, variants }
  if (aesRuns.length) out.aes = summarizeAes(aesRuns)
  if (variants['ktls-raw'] && aesRuns.length) out.projected = project(variants['ktls-raw'], aesRuns)
  return out
}

function summarizeAes(runs) {
  return {
    method: runs[0].method,
    encryptGBps: summary(runs.map((r) => r.encryptBytesPerSec / 1e9)),
    decryptGBps: summary(runs.map((r) => r.decryptBytesPerSec / 1e9)),
    encryptCpuPerGiB: summary(runs.map((r) => GiB / r.encryptBytesPerSec)),
    decryptCpuPerGiB: summary(runs.map((r) => GiB / r.decryptBytesPerSec)),
  }
}

/**
 * Projected kTLS CPU per GiB, run by run: what the offloaded data path
 * costs here plus what AES-128-GCM costs per GiB on one core (the kernel
 * encrypts on send and decrypts on receive, in the calling thread).
 */
function project(raw, aesRuns) {
  const sender = raw.runs.map((r, i) => r.senderCpuPerGiB + GiB / aesRuns[i].encryptBytesPerSec)
  const receiver = raw.runs.map((r, i) => r.receiverCpuPerGiB + GiB / aesRuns[i].decryptBytesPerSec)
  return {
    label: 'ktls, projected kTLS (offloaded data path + AES-128-GCM per GiB)',
    senderCpuPerGiB: summary(sender),
    receiverCpuPerGiB: summary(receiver),
  }
}

/** Per-run ratios of one metric between two variants (same run index). */
export function bulkRatio(result, metric, variant, baseline) {
  const a = result.variants[variant]?.runs.map((r) => r[metric])
  const b = result.variants[baseline]?.runs.map((r) => r[metric])
  return a && b ? summary(ratios(a, b)) : undefined
}

// ---- the peer process ----

function peer() {
  let socket
  let accepted
  let receiving
  const ready = (s) => {
    socket = s
    s.on('error', (err) => receiving?.reject(err))
    s.on('data', (chunk) => receiving?.onData(chunk.length))
    return describe(s)
  }
  servePeer({
    async listen({ variant, tls }) {
      let resolve
      accepted = new Promise((r) => (resolve = r))
      const { server, port } = await listen(variant, { tls, onSocket: (s) => resolve(ready(s)) })
      server.on('connection', () => server.close()) // one connection per run
      return { port }
    },
    async connect({ variant, port, tls }) {
      return ready(await connect(variant, { port, tls }))
    },
    accepted: () => accepted,
    expect({ bytes }) {
      receiving = expectBytes(bytes)
    },
    received: () => receiving.done,
    send: ({ bytes }) => send(socket, bytes),
    async end() {
      socket.end()
    },
  })
}

function expectBytes(bytes) {
  const cpu0 = process.cpuUsage()
  let got = 0
  let resolve
  let reject
  const done = new Promise((res, rej) => ((resolve = res), (reject = rej)))
  return {
    done,
    reject,
    onData(n) {
      got += n
      if (got >= bytes) resolve({ lastByteNs: nowNs(), cpu: cpuSplitSince(cpu0), bytes: got })
    },
  }
}

/** 64 KiB writes, waiting for 'drain' whenever write() says so. */
async function send(socket, bytes) {
  const chunk = randomBytes(WRITE_SIZE)
  const cpu0 = process.cpuUsage()
  const startNs = nowNs()
  let sent = 0
  while (sent + WRITE_SIZE < bytes) {
    sent += WRITE_SIZE
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve))
  }
  await new Promise((resolve, reject) => socket.write(chunk.subarray(0, bytes - sent), (err) => (err ? reject(err) : resolve())))
  return { startNs, cpu: cpuSplitSince(cpu0) }
}

if (isPeer(import.meta.url)) peer()
