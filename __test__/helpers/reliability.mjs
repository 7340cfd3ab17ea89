// The test side of reliability-server.mjs: start it (optionally under a lower
// RLIMIT_NOFILE), ask it for its numbers, and drive node:tls clients at it.
import { fork, spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { getCerts } from './certs.mjs'
import { onCleanup } from './cleanup.mjs'
import { onceEvent, withTimeout } from './stream.mjs'

const SERVER = fileURLToPath(new URL('./reliability-server.mjs', import.meta.url))
export const HOST = '127.0.0.1'

/**
 * Starts the server process. `nofile`: its RLIMIT_NOFILE (through prlimit).
 * Resolves { port, pid, ask(msg), alive(), stop() }; stop() resolves its exit
 * code, or rejects if it had died before (an uncaught error).
 */
export async function startReliabilityServer(options = {}, { nofile } = {}) {
  const certs = getCerts()
  const env = { ...process.env, KEY: certs.server.key, CERT: certs.server.cert }
  const args = ['--expose-gc', SERVER, JSON.stringify(options)]
  const child = nofile
    ? spawn('prlimit', [`--nofile=${nofile}`, process.execPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    : fork(SERVER, [JSON.stringify(options)], { env, execArgv: ['--expose-gc'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  child.stdout.resume()
  let exit = null
  const exited = new Promise((r) => child.once('exit', (code, signal) => r((exit = { code, signal }))))
  onCleanup(() => child.kill('SIGKILL'))
  const replies = []
  const waiters = []
  child.on('message', (m) => (waiters.length ? waiters.shift()(m) : replies.push(m)))
  const next = (label) =>
    withTimeout(
      Promise.race([
        new Promise((r) => (replies.length ? r(replies.shift()) : waiters.push(r))),
        exited.then(() => Promise.reject(new Error(`server process died (${exit.code ?? exit.signal}): ${stderr}`))),
      ]),
      120000,
      label,
    )
  const { listening: port, pids } = await next('server listening')
  return {
    port,
    pid: child.pid,
    pids,
    child,
    get stderr() {
      return stderr
    },
    /** The next message it sends on its own. */
    next: () => next('server message'),
    ask(msg) {
      child.send(msg)
      return next(`server reply to ${msg.cmd}`)
    },
    stats: (gc = false) => {
      child.send({ cmd: 'stats', gc })
      return next('server stats')
    },
    /** null while it runs, else { code, signal }. */
    exit: () => exit,
    async stop() {
      if (exit) throw new Error(`server process had died (${exit.code ?? exit.signal}): ${stderr}`)
      child.kill('SIGTERM')
      return exited
    },
  }
}

/**
 * Polls the server until it holds no connection and at most `fds`
 * descriptors (closes are asynchronous); resolves its GC'd stats.
 */
export async function settled(server, { timeout = 10000, fds = Infinity } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const s = await server.stats(true)
    if ((s.connections === 0 && s.fds <= fds) || Date.now() > deadline) return s
    await new Promise((r) => setTimeout(r, 50))
  }
}

export const MiB = 1024 * 1024
export const MB = (n) => (n / MiB).toFixed(1)
export const pct = (x) => `${(x * 100).toFixed(1)} %`
// A ClientHello record header and the start of its body; never completed.
export const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xaa, 0xbb])

/**
 * `batches` rounds of `count` connections against a fresh `lib` server after
 * a warm-up of `warmup` (allocator arenas, JIT and caches reach their working
 * size). Figures after GC: { done, errors, perSecond, base, end, rssGrowth,
 * heapGrowth (base to end), outsideGrowth (RSS outside V8's heap: the least
 * any batch grew it; a leak grows it in every batch, a warm-up step that came
 * late in one only), samples (stats every `sampleMs`, without GC), summary }.
 */
export async function churnFigures({ lib, count, warmup = count, batches = 1, ms, concurrency = 8, sampleMs = 1000 }) {
  const server = await startReliabilityServer({ lib })
  await churn(server.port, { count: warmup, ms, concurrency })
  const base = await settled(server)
  const samples = []
  const sampler = setInterval(() => server.stats().then((s) => samples.push(s), () => {}), sampleMs)
  const outside = (s) => s.rss - s.v8Physical
  const outsideGrowths = []
  const r = { done: 0, errors: [], perSecond: 0 }
  let end = base
  for (let i = 0; i < batches; i++) {
    const before = end
    const batch = await churn(server.port, { count, ms, concurrency })
    end = await settled(server, { timeout: 10000, fds: base.fds })
    outsideGrowths.push((outside(end) - outside(before)) / outside(before))
    r.done += batch.done
    r.errors.push(...batch.errors)
    r.perSecond += batch.perSecond / batches
  }
  clearInterval(sampler)
  await server.stop()
  const rssGrowth = (end.rss - base.rss) / base.rss
  const heapGrowth = (end.heapUsed - base.heapUsed) / base.heapUsed
  const outsideGrowth = Math.min(...outsideGrowths)
  const totalOutside = pct((outside(end) - outside(base)) / outside(base))
  const perBatch = batches > 1 ? `; per batch ${outsideGrowths.map(pct).join(', ')}` : ''
  const summary = `${r.done} connections at ${r.perSecond.toFixed(0)}/s; RSS ${MB(base.rss)} -> ${MB(end.rss)} MiB (${pct(rssGrowth)}), outside V8's heap ${MB(outside(base))} -> ${MB(outside(end))} MiB (${totalOutside}${perBatch}), JS heap used ${MB(base.heapUsed)} -> ${MB(end.heapUsed)} MiB (${pct(heapGrowth)}), fds ${base.fds} -> ${end.fds}`
  return { ...r, base, end, rssGrowth, heapGrowth, outsideGrowth, outsideGrowths, samples, summary }
}

/**
 * Starts a server with `options` and holds `counts.idle` silent clients,
 * `counts.slowLoris` sending a ClientHello one byte a second, and
 * `counts.nonReading` asking for 16 MiB and reading none against it. Its
 * serving rate is compared with an identical server's without them, in
 * alternating windows (`window` ms in all), so that what other processes take
 * from the cores falls on both alike; and its memory per stalled connection.
 */
export async function stalledFigures(options, counts, { window, settle = 500, rounds = 6 }) {
  const server = await startReliabilityServer(options)
  const reference = await startReliabilityServer(options)
  for (const s of [server, reference]) await churn(s.port, { count: 100, ms: window })
  await settled(server)
  const base = await server.stats(true) // the churn's garbage returned first
  const stalled = counts.idle + counts.slowLoris + counts.nonReading
  const held = []
  for (let i = 0; i < counts.idle; i++) held.push(await rawConnect(server.port))
  const loris = []
  for (let i = 0; i < counts.slowLoris; i++) loris.push(await rawConnect(server.port))
  let sent = 0
  const dribble = setInterval(() => {
    const at = sent++ % PARTIAL_CLIENT_HELLO.length
    for (const s of loris) if (!s.destroyed) s.write(PARTIAL_CLIENT_HELLO.subarray(at, at + 1))
  }, 1000)
  for (let i = 0; i < counts.nonReading; i++) {
    const sock = await tlsClient(server.port)
    sock.on('error', () => {})
    sock.pause()
    sock.write(`${16 * MiB}\n`)
    held.push(sock)
  }
  await new Promise((r) => setTimeout(r, settle)) // the non-readers' answers fill the buffers
  const loaded = await server.stats(true)
  const perConnection = { rss: (loaded.rss - base.rss) / stalled, heap: (loaded.heapUsed - base.heapUsed) / stalled }
  const windows = { unloaded: [], underLoad: [] }
  for (let i = 0; i < rounds; i++) {
    windows.unloaded.push(await churn(reference.port, { count: Infinity, ms: window / rounds }))
    windows.underLoad.push(await churn(server.port, { count: Infinity, ms: window / rounds }))
  }
  await reference.stop()
  const rate = (runs) => ({
    perSecond: runs.reduce((n, r) => n + r.done, 0) / runs.reduce((n, r) => n + r.seconds, 0),
    errors: runs.flatMap((r) => r.errors),
  })
  const unloaded = rate(windows.unloaded)
  const underLoad = rate(windows.underLoad)
  const ratio = underLoad.perSecond / unloaded.perSecond
  const summary = `${counts.idle} idle, ${counts.slowLoris} slow-loris, ${counts.nonReading} non-reading clients: ${(perConnection.rss / 1024).toFixed(1)} KiB RSS and ${(perConnection.heap / 1024).toFixed(1)} KiB JS heap per stalled connection; serving ${underLoad.perSecond.toFixed(0)}/s with them, ${unloaded.perSecond.toFixed(0)}/s without (${pct(ratio)})`
  const release = () => {
    clearInterval(dribble)
    for (const s of [...held, ...loris]) s.destroy()
  }
  return { server, stalled, base, loaded, perConnection, unloaded, underLoad, ratio, summary, release }
}

/** A node:tls client to the server, resolving once secure. */
export function tlsClient(port, extra = {}) {
  const certs = getCerts()
  const sock = tls.connect({ host: HOST, port, servername: 'localhost', ca: certs.ca.cert, ...extra })
  return onceEvent(sock, 'secureConnect', { timeout: 60000 }).then(() => sock)
}

/** One request of `n` bytes on a fresh connection, then a clean close. Resolves the bytes read. */
export async function fetchOnce(port, n = 1024) {
  const sock = await tlsClient(port)
  return new Promise((resolve, reject) => {
    let got = 0
    sock.on('error', reject)
    sock.on('data', (d) => {
      got += d.length
      if (got >= n) sock.end()
    })
    sock.on('close', () => (got >= n ? resolve(got) : reject(new Error(`short read: ${got}/${n}`))))
    sock.write(`${n}\n`)
  })
}

/**
 * Runs fetchOnce `concurrency` at a time until `count` are done or `ms` has
 * passed. Resolves { done, errors: [codes], perSecond }.
 */
export async function churn(port, { count, ms, concurrency = 4, bytes = 1024, onTick } = {}) {
  const t0 = performance.now()
  let started = 0
  let done = 0
  const errors = []
  const more = () => started < count && performance.now() - t0 < ms
  async function lane() {
    while (more()) {
      started++
      await fetchOnce(port, bytes).then(
        () => done++,
        (e) => errors.push(e.code ?? e.message),
      )
      onTick?.(done)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  const seconds = (performance.now() - t0) / 1000
  return { done, errors, perSecond: done / seconds, seconds }
}

/** Opens a plain TCP connection that sends nothing (an idle or half-open client). */
export function rawConnect(port) {
  const sock = net.connect(port, HOST)
  sock.on('error', () => {})
  return onceEvent(sock, 'connect', { timeout: 60000 }).then(() => sock)
}

const APPLICATION_DATA = 0x17

/**
 * A TCP relay to `targetPort` that resets the server's side of a connection
 * at one stage of the TLS conversation (the client's side is destroyed too):
 *   'betweenFlights'  the server's first flight arrived: it waits for the client's Finished
 *   'midRecord'       half of the client's first application data record was forwarded
 *   'midResponse'     `after` bytes of the server's answer were forwarded
 * Resolves { port, cuts (how many resets so far), close() }.
 */
export async function startCutter(targetPort, stage, { after = 64 * 1024 } = {}) {
  const state = { cuts: 0 }
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, HOST)
    for (const s of [client, upstream]) s.on('error', () => {})
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    const cut = () => {
      if (upstream.destroyed) return
      state.cuts++
      upstream.resetAndDestroy()
      client.destroy()
    }
    let toClient = 0
    upstream.on('data', (d) => {
      if (stage === 'betweenFlights') return cut()
      toClient += d.length
      client.write(d)
      if (stage === 'midResponse' && toClient >= after) cut()
    })
    let buf = Buffer.alloc(0)
    let encrypted = 0 // 0x17 records from the client: its Finished, then data
    client.on('data', (d) => {
      if (stage !== 'midRecord') return upstream.write(d)
      buf = Buffer.concat([buf, d])
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
        const len = 5 + buf.readUInt16BE(3)
        if (buf[0] === APPLICATION_DATA && ++encrypted === 2) {
          upstream.write(buf.subarray(0, len >> 1), () => setTimeout(cut, 20))
          buf = Buffer.alloc(0)
          return
        }
        upstream.write(buf.subarray(0, len))
        buf = buf.subarray(len)
      }
    })
  })
  await new Promise((r) => server.listen(0, HOST, r))
  onCleanup(() => server.close())
  return {
    port: server.address().port,
    get cuts() {
      return state.cuts
    },
    close: () => new Promise((r) => server.close(r)),
  }
}

const SUITES = {
  TLS_AES_128_GCM_SHA256: { hash: 'sha256', keyLen: 16 },
  TLS_AES_256_GCM_SHA384: { hash: 'sha384', keyLen: 32 },
  TLS_CHACHA20_POLY1305_SHA256: { hash: 'sha256', keyLen: 32 },
}

/** HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, for lengths of one hash block. */
function expandLabel(hash, secret, label, length) {
  const full = Buffer.from(`tls13 ${label}`)
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])])
  return createHmac(hash, secret).update(info).update(Buffer.from([1])).digest().subarray(0, length)
}

/**
 * The application traffic secrets a node:tls peer logged ('keylog' lines)
 * and the record keys and IVs derived from them (RFC 8446 §7.3), by name:
 * { CLIENT_TRAFFIC_SECRET_0, 'CLIENT_TRAFFIC_SECRET_0 key', '... iv', SERVER_... }.
 */
export function trafficKeys(keylogLines, suite) {
  const { hash, keyLen } = SUITES[suite]
  const out = {}
  for (const line of keylogLines) {
    const [label, , hex] = line.toString().trim().split(' ')
    if (!/^(CLIENT|SERVER)_TRAFFIC_SECRET_0$/.test(label)) continue
    const secret = Buffer.from(hex, 'hex')
    out[label] = secret
    out[`${label} key`] = expandLabel(hash, secret, 'key', keyLen)
    out[`${label} iv`] = expandLabel(hash, secret, 'iv', 12)
  }
  return out
}

/**
 * Searches every readable, writable mapping of process `pid` (heap, stacks,
 * anonymous memory: /proc/pid/maps, read through /proc/pid/mem) for each
 * needle. Resolves the names of the needles found, with where.
 */
export function searchMemory(pid, needles) {
  const found = []
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n')
  const fd = openSync(`/proc/${pid}/mem`, 'r')
  const CHUNK = 1 << 20
  const overlap = Math.max(...Object.values(needles).map((n) => n.length)) - 1
  const buf = Buffer.alloc(CHUNK + overlap)
  try {
    for (const line of maps) {
      const [range, perms, , , , path = ''] = line.split(/\s+/)
      if (!perms.startsWith('rw')) continue
      const [start, end] = range.split('-').map((h) => BigInt(`0x${h}`))
      let carried = 0
      for (let at = start; at < end; at += BigInt(CHUNK)) {
        const want = Number(end - at < BigInt(CHUNK) ? end - at : BigInt(CHUNK))
        let n
        try {
          n = readSync(fd, buf, carried, want, at)
        } catch {
          break // a guard page or a mapping gone meanwhile
        }
        const view = buf.subarray(0, carried + n)
        for (const [name, needle] of Object.entries(needles)) {
          if (view.indexOf(needle) >= 0) found.push(`${name} in ${path || 'anonymous'} ${range}`)
        }
        carried = Math.min(overlap, view.length)
        view.copyWithin(0, view.length - carried)
      }
    }
  } finally {
    closeSync(fd)
  }
  return [...new Set(found)]
}
