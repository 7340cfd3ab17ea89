// Userspace-path interop with node:tls, 8 MiB each way per TLS 1.3 suite.
import test from 'ava'
import { hostEvidenceOfKernelTls } from '../helpers/kernel.mjs'
import { TLS13_SUITES } from '../helpers/peers.mjs'
import { MiB, expectedSha256 } from '../helpers/stream.mjs'
import {
  startNodeServer,
  startKtlsServer,
  ktlsConnect,
  nodeConnect,
  collectErrors,
  exchange,
  closed,
  endAndClose,
  assertUserspaceOnThisHost,
} from '../helpers/tls.mjs'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const N = 8 * MiB
const userspaceHost = !hostEvidenceOfKernelTls()
const UP = { seed: 'client->server' }
const DOWN = { seed: 'server->client' }

for (const suite of TLS13_SUITES) {
  test(`client exchanges 8 MiB each way with a node:tls server over ${suite}`, async (t) => {
    const srv = await startNodeServer({ minVersion: 'TLSv1.3' })
    // Only this package's side is restricted: it must offer exactly `suite`.
    const c = await ktlsConnect({ port: srv.port, ciphers: suite, ktls: 'auto' })
    const peer = await srv.nextPeer()
    const errors = collectErrors(c)
    t.true(c.encrypted)
    t.is(c.getProtocol(), 'TLSv1.3')
    t.like(c.getCipher(), { name: suite, standardName: suite, version: 'TLSv1.3' })
    t.is(peer.getCipher().standardName, suite)
    assertUserspaceOnThisHost(t, c, userspaceHost)

    const r = await exchange(c, peer, N, { seedA: UP.seed, seedB: DOWN.seed })
    t.is(r.bGot.bytes, N)
    t.is(r.bGot.sha256, expectedSha256(N, UP))
    t.is(r.aGot.bytes, N)
    t.is(r.aGot.sha256, expectedSha256(N, DOWN))

    const peerClosed = closed(peer)
    await endAndClose(c)
    await peerClosed
    t.deepEqual(errors, [])
    await srv.close()
  })

  test(`node:tls client exchanges 8 MiB each way with the server over ${suite}`, async (t) => {
    const srv = await startKtlsServer({ ciphers: suite, ktls: 'auto' })
    const client = await nodeConnect({ port: srv.port, minVersion: 'TLSv1.3' })
    const s = await srv.nextSocket()
    const errors = collectErrors(s)
    t.true(s.encrypted)
    t.is(s.getProtocol(), 'TLSv1.3')
    t.like(s.getCipher(), { name: suite, standardName: suite, version: 'TLSv1.3' })
    t.is(client.getCipher().standardName, suite)
    assertUserspaceOnThisHost(t, s, userspaceHost)

    const r = await exchange(client, s, N, { seedA: UP.seed, seedB: DOWN.seed })
    t.is(r.bGot.sha256, expectedSha256(N, UP))
    t.is(r.aGot.sha256, expectedSha256(N, DOWN))

    const serverClosed = closed(s)
    await endAndClose(client)
    await serverClosed
    t.deepEqual(errors, [])
    await srv.close()
  })

  test(`client and server of this package exchange 8 MiB each way over ${suite}`, async (t) => {
    const srv = await startKtlsServer({ ciphers: suite, ktls: 'auto' })
    const c = await ktlsConnect({ port: srv.port, ciphers: suite, ktls: 'auto' })
    const s = await srv.nextSocket()
    const errors = [...[c, s].map(collectErrors)]
    t.is(c.getCipher().standardName, suite)
    t.is(s.getCipher().standardName, suite)
    assertUserspaceOnThisHost(t, c, userspaceHost)
    assertUserspaceOnThisHost(t, s, userspaceHost)

    const r = await exchange(c, s, N, { seedA: UP.seed, seedB: DOWN.seed })
    t.is(r.bGot.sha256, expectedSha256(N, UP))
    t.is(r.aGot.sha256, expectedSha256(N, DOWN))

    const serverClosed = closed(s)
    await endAndClose(c)
    await serverClosed
    t.deepEqual(errors, [[], []])
    await srv.close()
  })
}
