// A cluster of two workers sharing one ktls HTTPS port (for clusterSuite in
// http-suites.mjs). The primary prints {"port":N,"workers":[pid,pid]} once both
// listen; each answer is {"pid","url","ktls","resumed"} from the worker that served it
// (no ticketKeys given: cluster shares the first worker's, as with node:tls).
// Env: KTLS_TEST_KEY, KTLS_TEST_CERT (PEM paths); NODE_CLUSTER_SCHED_POLICY.
import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { ktls } from './ktls.mjs'

const WORKERS = 2

if (cluster.isPrimary) {
  const listening = new Map()
  for (let i = 0; i < WORKERS; i++) cluster.fork()
  cluster.on('listening', (worker, address) => {
    listening.set(worker.process.pid, address.port)
    if (listening.size === WORKERS) {
      const ports = new Set(listening.values())
      if (ports.size !== 1) throw new Error(`workers listen on different ports: ${[...ports]}`)
      console.log(JSON.stringify({ port: [...ports][0], workers: [...listening.keys()] }))
    }
  })
  let stopping = false
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} died (${code ?? signal})`)
      process.exit(1)
    }
    if (Object.keys(cluster.workers).length === 0) process.exit(0)
  })
  process.on('SIGTERM', () => {
    stopping = true
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM')
  })
} else {
  const server = ktls.createHttpsServer(
    { key: readFileSync(process.env.KTLS_TEST_KEY), cert: readFileSync(process.env.KTLS_TEST_CERT) },
    (req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ pid: process.pid, url: req.url, ktls: req.socket.ktls, resumed: req.socket.isSessionReused() }))
    },
  )
  // Port 0 in every worker: the primary hands all of them the same port.
  server.listen(0, '127.0.0.1')
}
