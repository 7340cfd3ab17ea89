// What one keep-alive request costs in calls into the binding on the
// userspace path: each call pays napi's per-call bookkeeping, so the read
// that would only answer "nothing more" and the flush after a write that
// sent everything are skipped (docs/benchmarks.md).
import test from 'ava'
import https from 'node:https'
import { createRequire } from 'node:module'
import { ktls } from '../helpers/ktls.mjs'
import { getCerts } from '../helpers/certs.mjs'

const require = createRequire(import.meta.url)
const { Connection } = require('../../binding/index.js')

const REQUESTS = 200

function countCalls(names) {
  const counts = Object.fromEntries(names.map((n) => [n, 0]))
  const originals = names.map((n) => [n, Connection.prototype[n]])
  for (const [name, original] of originals) {
    Connection.prototype[name] = function (...args) {
      counts[name]++
      return original.apply(this, args)
    }
  }
  return { counts, restore: () => originals.forEach(([n, f]) => (Connection.prototype[n] = f)) }
}

function get(agent, port) {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: '/', agent, ca: getCerts().ca.cert, servername: 'localhost' }, (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString()))
      })
      .on('error', reject)
  })
}

test('a keep-alive request on the userspace path costs the server one read and one write in the binding', async (t) => {
  const { server: cert } = getCerts()
  const server = ktls.https.createServer({ key: cert.key, cert: cert.cert, ktls: 'off' }, (req, res) => res.end('ok'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address()
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  t.is(await get(agent, port), 'ok') // the handshake and its tickets, outside the count

  const { counts, restore } = countCalls(['read', 'write', 'flush'])
  try {
    for (let i = 0; i < REQUESTS; i++) t.is(await get(agent, port), 'ok')
  } finally {
    restore()
  }
  t.log(`per request: ${counts.read / REQUESTS} reads, ${counts.write / REQUESTS} writes, ${counts.flush / REQUESTS} flushes`)
  // The client is node:https: every call counted is the server's.
  t.true(counts.read <= REQUESTS * 1.1, `${counts.read} reads for ${REQUESTS} requests`)
  t.true(counts.write <= REQUESTS * 1.1, `${counts.write} writes for ${REQUESTS} requests`)
  t.is(counts.flush, 0)
})
