// A ktls server in its own process (run with --expose-gc, through fork()),
// for the reliability suite: no 'error' listener on any socket and none for
// 'tlsClientError', so an error nobody could have listened for kills it, and
// the test sees the exit. Its memory and descriptors are its own to measure.
//
//   fork(thisFile, [JSON options], { execArgv: ['--expose-gc'], env: { KEY, CERT } })
//   options: { lib ('ktls' | 'tls'), noDelay, handshakeTimeout, timeout (idle ms, then destroy), file (for 'F') }
//
// Each connection reads lines: "<n>" answers n bytes, "F<n>" sends the first
// n bytes of `file` with sendFile, "P" answers this process's pid; "E" ends.
// Messages in: 'stats' (after GC when { gc: true }), 'snapshot' (a V8 heap
// snapshot's path). Out: { listening: port }, and the answers. With
// { cluster: true }: two workers, each replaced when it dies ({ respawned: pid }).
import cluster from 'node:cluster'
import tls from 'node:tls'
import { readdirSync, readlinkSync } from 'node:fs'
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const ktls = require('../../dist/index.js')
const options = JSON.parse(process.argv[2] ?? '{}')
const PAYLOAD = Buffer.alloc(64 * 1024, 'ktls reliability ')
const serverErrors = []
let served = 0
let secured = 0
const live = new Set() // secure sockets not yet closed
let offloaded = 0
const userspace = {} // why secure connections were not offloaded: reason -> count

if (options.cluster && cluster.isPrimary) primary()
else serve()
// The test that started it went away: so does it (a worker's primary sees to its own).
if (!cluster.isWorker) process.on('disconnect', () => process.exit(0))

/** Two workers on one port; a worker that dies is replaced, as a cluster app does. */
function primary() {
  const fork = () => cluster.fork({ ...process.env })
  let started = 0
  cluster.on('listening', (worker, address) => {
    if (++started === 2) process.send?.({ listening: address.port, pids: workerPids() })
    else if (started > 2) process.send?.({ respawned: worker.process.pid })
  })
  cluster.on('exit', () => fork())
  fork()
  fork()
}

function workerPids() {
  return Object.values(cluster.workers).map((w) => w.process.pid)
}

function serve() {
  // lib 'tls': node:tls under the same load, as a reference.
  const lib = options.lib === 'tls' ? tls : ktls
  const server = lib.createServer(
    { key: process.env.KEY, cert: process.env.CERT, handshakeTimeout: options.handshakeTimeout, noDelay: options.noDelay },
    onSecure,
  )
  // net.Server emits accept errors (EMFILE) on the server: listened to, as an app would.
  server.on('error', (err) => serverErrors.push(err.code))
  server.listen(0, '127.0.0.1', () => process.send?.({ listening: server.address().port }))
  if (!cluster.isWorker) process.on('message', (m) => answer(server, m))
}

function onSecure(socket) {
  secured++
  live.add(socket)
  socket.on('close', () => live.delete(socket))
  if (socket.ktls?.tx && socket.ktls?.rx) offloaded++
  else if (socket.ktls) userspace[socket.ktls.reason] = (userspace[socket.ktls.reason] ?? 0) + 1
  if (options.timeout) socket.setTimeout(options.timeout, () => socket.destroy())
  let line = ''
  socket.on('data', (d) => {
    line += d.toString('latin1')
    let nl
    while ((nl = line.indexOf('\n')) >= 0) {
      request(socket, line.slice(0, nl))
      line = line.slice(nl + 1)
    }
  })
}

function request(socket, req) {
  served++
  if (req === 'P') socket.write(`${process.pid}\n`)
  else if (req === 'E') socket.end()
  else if (req.startsWith('F')) socket.sendFile(options.file, { length: Number(req.slice(1)) }).catch(() => {})
  else sendBytes(socket, Number(req))
}

function sendBytes(socket, n) {
  while (n > 0) {
    const chunk = PAYLOAD.subarray(0, Math.min(n, PAYLOAD.length))
    n -= chunk.length
    socket.write(chunk)
  }
}

async function answer(server, m) {
  if (m.cmd === 'stats') {
    if (m.gc) await collectGarbage()
    const connections = await new Promise((r) => server.getConnections((_e, n) => r(n)))
    // At the descriptor limit reading /proc fails: those figures are null then.
    const mem = orNull(() => process.memoryUsage()) ?? {}
    const fds = orNull(() => readdirSync('/proc/self/fd'))
    process.send({
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      // What V8's heap holds in RAM (its young generation grows under churn):
      // RSS minus this is the memory outside V8 (native code's, libuv's).
      v8Physical: getHeapStatistics().total_physical_size,
      external: mem.external,
      fds: fds?.length,
      fdTargets: fds?.map(target),
      connections,
      cpu: process.cpuUsage(),
      served,
      secured,
      offloaded,
      userspace,
      serverErrors,
      // Secure ones still open (what did not close, when something did not).
      live: [...live].map((s) => ({ queued: s.writableLength, written: s.bytesWritten, destroyed: s.destroyed, timeout: s.timeout })),
    })
  } else if (m.cmd === 'snapshot') {
    await collectGarbage()
    process.send({ snapshot: writeHeapSnapshot(m.path) })
  }
}

/** Several rounds: finalizers (native connections) free memory a round later. */
async function collectGarbage() {
  for (let i = 0; i < 4; i++) {
    global.gc()
    await new Promise((r) => setImmediate(r))
  }
}

/** What a descriptor points at (gone already: ''); for diagnostics. */
function target(fd) {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    return ''
  }
}

function orNull(f) {
  try {
    return f()
  } catch {
    return null
  }
}
