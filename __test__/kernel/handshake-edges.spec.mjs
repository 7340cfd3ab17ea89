// Records that arrive around the moment keys move into the kernel: session
// tickets and data right behind the handshake, data in the peer's Finished flight.
import tls from 'node:tls'
import { getCerts } from '../helpers/certs.mjs'
import { startOpensslServer, startOpensslClient } from '../helpers/peers.mjs'
import { startProxy } from '../helpers/proxy.mjs'
import { MiB, collect, dataBuffer, expectedSha256, hashExactly, hashStream, withTimeout, writePayload } from '../helpers/stream.mjs'
import { kernelTest, statSnapshot, assertOffloaded, assertOffloadCount, assertOffloadReleased } from '../helpers/kernel.mjs'
import { startNodeServer, startKtlsServer, ktlsConnect, collectErrors, exchange, closed, endAndClose } from '../helpers/tls.mjs'
import test from 'ava'
import { cleanupAll, track } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { unixSocketSuite } from '../helpers/suites/lifecycle.mjs'

test.after.always(cleanupAll)

const certs = getCerts()
const SIZE = 1 * MiB
const DOWN = { seed: 'right behind the handshake' }
const UP = { seed: 'in the Finished flight' }
const PING = 'client ping\n'

kernelTest('offloaded client receives data a node:tls server writes immediately after the handshake (with session tickets)', async (t) => {
  // node:tls (OpenSSL) sends two NewSessionTickets after the client Finished;
  // writing in 'secureConnection' puts application data right behind them.
  const srv = await startNodeServer({}, (s) => {
    s.write(dataBuffer(SIZE, DOWN))
  })
  // Coalesce what the server sends so tickets + data arrive together.
  const proxy = await startProxy({ targetPort: srv.port, flushDelayMs: { toClient: 50 } })
  const c = await ktlsConnect({ port: proxy.port })
  const errors = collectErrors(c)
  assertOffloaded(t, c)
  const got = await hashExactly(c, SIZE)
  t.is(got.sha256, expectedSha256(SIZE, DOWN))
  await endAndClose(c)
  t.deepEqual(errors, [])
  await proxy.close()
  await srv.close()
})

kernelTest('offloaded client receives data openssl s_server sends right behind four session tickets', async (t) => {
  const peer = await startOpensslServer({ cert: certs.server.certPath, key: certs.server.keyPath, numTickets: 4 })
  try {
    // Data is already waiting on s_server's stdin when the handshake completes.
    const sent = writePayload(peer.stdin, SIZE, DOWN)
    const echoed = collect(peer.stdout)
    const c = await ktlsConnect({ port: peer.port })
    const errors = collectErrors(c)
    assertOffloaded(t, c)
    // s_server must hear from us: when its first select() finds stdin and the
    // ClientHello both readable, it writes one stdin chunk (completing the
    // handshake inside SSL_write) and then blocks in SSL_read on its blocking
    // socket until the client sends something.
    c.write(PING)
    const got = await withTimeout(hashExactly(c, SIZE), 60000, 'our client reading the data')
    t.is(got.sha256, expectedSha256(SIZE, DOWN))
    await withTimeout(sent, 60000, "writing s_server's stdin")
    const cClosed = closed(c)
    c.end()
    t.is((await withTimeout(peer.exited, 60000, 's_server exit after close_notify')).code, 0, peer.stderr())
    await cClosed
    t.is((await echoed).toString(), PING)
    t.deepEqual(errors, [])
  } finally {
    await peer.kill()
  }
})

kernelTest('offloaded server receives data a node:tls client writes in the same flight as its Finished', async (t) => {
  const srv = await startKtlsServer()
  // The proxy holds the client's records for 50 ms and forwards them in one
  // write, so the Finished and the first data records share a segment.
  const proxy = await startProxy({ targetPort: srv.port, flushDelayMs: { toServer: 50 } })
  const payload = dataBuffer(SIZE, UP)
  const client = track(
    tls.connect({ host: '127.0.0.1', port: proxy.port, servername: 'localhost', ca: certs.ca.cert }, () => {
      client.write(payload) // synchronously, inside the secureConnect callback
    }),
  )
  client.on('error', () => {})
  const s = await srv.nextSocket()
  const errors = collectErrors(s)
  assertOffloaded(t, s)
  const got = await hashExactly(s, SIZE)
  t.is(got.sha256, expectedSha256(SIZE, UP))
  const sClosed = closed(s)
  client.end()
  client.resume()
  await sClosed
  t.deepEqual(errors, [])
  await proxy.close()
  await srv.close()
})

kernelTest('offloaded server receives data openssl s_client sends right behind its Finished', async (t) => {
  const srv = await startKtlsServer()
  const peer = startOpensslClient({ port: srv.port, caFile: certs.ca.certPath })
  try {
    // stdin is full before the handshake ends: s_client writes right after Finished.
    const sent = writePayload(peer.stdin, SIZE, { ...UP, end: true })
    const out = hashStream(peer.stdout)
    const s = await srv.nextSocket()
    const errors = collectErrors(s)
    assertOffloaded(t, s)
    const got = await hashExactly(s, SIZE)
    t.is(got.sha256, expectedSha256(SIZE, UP))
    await sent
    const sClosed = closed(s)
    s.end()
    await out
    t.is((await peer.exited).code, 0, peer.stderr())
    await sClosed
    t.deepEqual(errors, [])
  } finally {
    await peer.kill()
    await srv.close()
  }
})

kernelTest('client and server of this package both offload: tls_stat counts two sockets', async (t) => {
  const srv = await startKtlsServer()
  const before = statSnapshot()
  const c = await ktlsConnect({ port: srv.port })
  const s = await srv.nextSocket()
  assertOffloaded(t, c)
  assertOffloaded(t, s)
  assertOffloadCount(t, before, 2)
  const r = await exchange(c, s, SIZE)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.is(r.aGot.sha256, r.bSent.sha256)
  const sClosed = closed(s)
  await endAndClose(c)
  await sClosed
  await assertOffloadReleased(t, before)
  await srv.close()
})

// Shared with the userspace suite (__test__/unit/lifecycle.spec.mjs).
unixSocketSuite(tlsEnv('kernel'))
