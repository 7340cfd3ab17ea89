// Orderly shutdown with offloaded sockets: half-close both ways, close_notify.
import { getCerts } from '../helpers/certs.mjs'
import { startOpensslServer } from '../helpers/peers.mjs'
import { KiB, MiB, delay, expectedSha256, hashStream, writePayload } from '../helpers/stream.mjs'
import { kernelTest, assertOffloaded } from '../helpers/kernel.mjs'
import { startNodeServer, startKtlsServer, ktlsConnect, nodeConnect, collectErrors, closed } from '../helpers/tls.mjs'
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const certs = getCerts()
const UP = { seed: 'kernel half-close up' }
const DOWN = { seed: 'kernel half-close down' }

kernelTest('offloaded client end() half-closes: the server sees end and can still send', async (t) => {
  const srv = await startNodeServer({ allowHalfOpen: true })
  const c = await ktlsConnect({ port: srv.port, allowHalfOpen: true })
  assertOffloaded(t, c)
  const peer = await srv.nextPeer()
  const errors = collectErrors(c)
  const peerGot = hashStream(peer)
  const clientGot = hashStream(c)
  await writePayload(c, 64 * KiB, { ...UP, end: true })
  t.is((await peerGot).sha256, expectedSha256(64 * KiB, UP))
  await writePayload(peer, 1 * MiB, { ...DOWN, end: true })
  const down = await clientGot
  t.is(down.bytes, 1 * MiB)
  t.is(down.sha256, expectedSha256(1 * MiB, DOWN))
  await closed(c)
  t.deepEqual(errors, [])
  await srv.close()
})

kernelTest('offloaded server end() half-closes: the client sees end and can still send', async (t) => {
  const srv = await startKtlsServer({ allowHalfOpen: true })
  const client = await nodeConnect({ port: srv.port, allowHalfOpen: true })
  const s = await srv.nextSocket()
  assertOffloaded(t, s)
  const errors = collectErrors(s)
  const clientGot = hashStream(client)
  const serverGot = hashStream(s)
  await writePayload(s, 64 * KiB, { ...DOWN, end: true })
  t.is((await clientGot).sha256, expectedSha256(64 * KiB, DOWN))
  await writePayload(client, 1 * MiB, { ...UP, end: true })
  const up = await serverGot
  t.is(up.bytes, 1 * MiB)
  t.is(up.sha256, expectedSha256(1 * MiB, UP))
  await closed(s)
  t.deepEqual(errors, [])
  await srv.close()
})

kernelTest('offloaded client end() sends close_notify before closing', async (t) => {
  const peer = await startOpensslServer({ cert: certs.server.certPath, key: certs.server.keyPath, quiet: false })
  try {
    let out = ''
    peer.stdout.on('data', (d) => (out += d.toString('latin1')))
    const c = await ktlsConnect({ port: peer.port })
    assertOffloaded(t, c)
    await delay(100)
    c.end()
    await peer.exited
    t.regex(out, /^DONE$/m, 'openssl reports DONE only after a close_notify')
    t.notRegex(out, /^ERROR$/m)
    await closed(c)
  } finally {
    await peer.kill()
  }
})

kernelTest('offloaded client destroy() closes without close_notify', async (t) => {
  const peer = await startOpensslServer({ cert: certs.server.certPath, key: certs.server.keyPath, quiet: false })
  try {
    let out = ''
    peer.stdout.on('data', (d) => (out += d.toString('latin1')))
    const c = await ktlsConnect({ port: peer.port })
    assertOffloaded(t, c)
    await delay(100)
    c.destroy()
    await peer.exited
    t.notRegex(out, /^DONE$/m)
    t.regex(out, /^ERROR$/m)
  } finally {
    await peer.kill()
  }
})
