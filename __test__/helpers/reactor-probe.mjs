// Run as a script (main thread or worker): one ktls connection to a ktls
// server in this thread, 256 KiB each way; then report which threads the
// process has and whether anything was lost. Options come as JSON in argv[2]
// or workerData. With `throwInTick`, the server's first 'data' schedules a
// nextTick that throws, to check it surfaces as an uncaught exception.
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { ktls } from './ktls.mjs'
import { getCerts } from './certs.mjs'

const options = isMainThread ? JSON.parse(process.argv[2] ?? '{}') : workerData
const report = (result) => (isMainThread ? process.stdout.write(JSON.stringify(result)) : parentPort.postMessage(result))
const threadNames = () => readdirSync('/proc/self/task').map((tid) => readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim())

if (options.throwInTick) {
  process.once('uncaughtException', (err) => {
    report({ uncaught: err.message })
    process.exit(0)
  })
}

const certs = getCerts()
const SIZE = 256 * 1024
const payload = Buffer.alloc(SIZE, 'k')
const digest = (b) => createHash('sha256').update(b).digest('hex')

const server = ktls.createServer({ key: certs.server.key, cert: certs.server.cert }, (s) => {
  const chunks = []
  s.once('data', () => {
    if (options.throwInTick) process.nextTick(() => { throw new Error('thrown in a nextTick of a data handler') })
  })
  s.on('data', (d) => chunks.push(d))
  s.on('end', () => {
    s.end(Buffer.concat(chunks))
  })
})
server.listen(0, '127.0.0.1', () => {
  const c = ktls.connect({ port: server.address().port, host: '127.0.0.1', servername: 'localhost', ca: certs.ca.cert }, () => {
    c.end(payload)
  })
  const back = []
  c.on('data', (d) => back.push(d))
  c.on('end', () => {
    const echoed = Buffer.concat(back)
    server.close()
    report({ intact: echoed.length === SIZE && digest(echoed) === digest(payload), threads: threadNames() })
  })
})
