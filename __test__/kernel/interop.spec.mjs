// Offloaded interop matrix: 64 MiB each way, per TLS 1.3 suite, against
// openssl s_server / s_client and node:tls, with kernel-side proof of offload.
import { getCerts } from '../helpers/certs.mjs'
import { TLS13_SUITES, startOpensslServer, startOpensslClient } from '../helpers/peers.mjs'
import { MiB, expectedSha256, hashStream, hashExactly, writePayload } from '../helpers/stream.mjs'
import {
  kernelTest,
  statSnapshot,
  tlsStatDelta,
  assertOffloaded,
  assertOffloadCount,
  assertOffloadReleased,
} from '../helpers/kernel.mjs'
import {
  startNodeServer,
  startKtlsServer,
  ktlsConnect,
  nodeConnect,
  collectErrors,
  exchange,
  closed,
  endAndClose,
} from '../helpers/tls.mjs'
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const N = 64 * MiB
const certs = getCerts()
const UP = { seed: 'kernel client->server' }
const DOWN = { seed: 'kernel server->client' }

function logRate(t, started) {
  const s = (Date.now() - started) / 1000
  t.log(`${(2 * N) / MiB} MiB in ${s.toFixed(1)} s (${((2 * N) / MiB / s).toFixed(1)} MiB/s)`)
}

for (const suite of TLS13_SUITES) {
  kernelTest(`offloaded client exchanges 64 MiB each way with openssl s_server over ${suite}`, async (t) => {
    const peer = await startOpensslServer({ cert: certs.server.certPath, key: certs.server.keyPath })
    try {
      const serverGot = hashStream(peer.stdout)
      const serverSent = writePayload(peer.stdin, N, DOWN)
      const before = statSnapshot()
      const c = await ktlsConnect({ port: peer.port, ciphers: suite, ktls: 'auto' })
      const errors = collectErrors(c)
      assertOffloaded(t, c, suite)
      t.is(c.getCipher().standardName, suite)
      assertOffloadCount(t, before, 1)

      const started = Date.now()
      const clientGot = hashExactly(c, N)
      await writePayload(c, N, UP)
      t.is((await clientGot).sha256, expectedSha256(N, DOWN))
      await serverSent
      const cClosed = closed(c)
      c.end()
      const got = await serverGot
      logRate(t, started)
      t.is(got.bytes, N)
      t.is(got.sha256, expectedSha256(N, UP))
      t.deepEqual(await peer.exited, { code: 0, signal: null }, peer.stderr())
      await cClosed
      t.deepEqual(errors, [])
      t.is(tlsStatDelta(before, statSnapshot()).TlsDecryptError ?? 0, 0)
      await assertOffloadReleased(t, before)
    } finally {
      await peer.kill()
    }
  })

  kernelTest(`offloaded client exchanges 64 MiB each way with a node:tls server over ${suite}`, async (t) => {
    const srv = await startNodeServer({ minVersion: 'TLSv1.3' })
    const before = statSnapshot()
    const c = await ktlsConnect({ port: srv.port, ciphers: suite, ktls: 'auto' })
    const peer = await srv.nextPeer()
    const errors = collectErrors(c)
    assertOffloaded(t, c, suite)
    t.is(peer.getCipher().standardName, suite)
    assertOffloadCount(t, before, 1)

    const started = Date.now()
    const r = await exchange(c, peer, N, { seedA: UP.seed, seedB: DOWN.seed })
    logRate(t, started)
    t.is(r.bGot.sha256, expectedSha256(N, UP))
    t.is(r.aGot.sha256, expectedSha256(N, DOWN))
    const peerClosed = closed(peer)
    await endAndClose(c)
    await peerClosed
    t.deepEqual(errors, [])
    await assertOffloadReleased(t, before)
    await srv.close()
  })

  kernelTest(`openssl s_client exchanges 64 MiB each way with an offloaded server over ${suite}`, async (t) => {
    const srv = await startKtlsServer({ ciphers: suite, ktls: 'auto' })
    const before = statSnapshot()
    const peer = startOpensslClient({ port: srv.port, caFile: certs.ca.certPath })
    try {
      const clientSent = writePayload(peer.stdin, N, { ...UP, end: true })
      const clientGot = hashStream(peer.stdout)
      const s = await srv.nextSocket()
      const errors = collectErrors(s)
      assertOffloaded(t, s, suite)
      t.is(s.getCipher().standardName, suite)
      assertOffloadCount(t, before, 1)

      const started = Date.now()
      const serverGot = hashExactly(s, N)
      await writePayload(s, N, DOWN)
      t.is((await serverGot).sha256, expectedSha256(N, UP))
      await clientSent
      const sClosed = closed(s)
      s.end()
      const got = await clientGot
      logRate(t, started)
      t.is(got.bytes, N)
      t.is(got.sha256, expectedSha256(N, DOWN))
      t.deepEqual(await peer.exited, { code: 0, signal: null }, peer.stderr())
      await sClosed
      t.deepEqual(errors, [])
      await assertOffloadReleased(t, before)
    } finally {
      await peer.kill()
      await srv.close()
    }
  })

  kernelTest(`node:tls client exchanges 64 MiB each way with an offloaded server over ${suite}`, async (t) => {
    const srv = await startKtlsServer({ ciphers: suite, ktls: 'auto' })
    const before = statSnapshot()
    const client = await nodeConnect({ port: srv.port, minVersion: 'TLSv1.3' })
    const s = await srv.nextSocket()
    const errors = collectErrors(s)
    assertOffloaded(t, s, suite)
    t.is(client.getCipher().standardName, suite)
    assertOffloadCount(t, before, 1)

    const started = Date.now()
    const r = await exchange(client, s, N, { seedA: UP.seed, seedB: DOWN.seed })
    logRate(t, started)
    t.is(r.bGot.sha256, expectedSha256(N, UP))
    t.is(r.aGot.sha256, expectedSha256(N, DOWN))
    const sClosed = closed(s)
    await endAndClose(client)
    await sClosed
    t.deepEqual(errors, [])
    await assertOffloadReleased(t, before)
    await srv.close()
  })
}
