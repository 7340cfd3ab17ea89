// Userspace-path interop with the openssl CLI, 8 MiB each way per TLS 1.3 suite.
import test from 'ava'
import { getCerts } from '../helpers/certs.mjs'
import { hostEvidenceOfKernelTls } from '../helpers/kernel.mjs'
import { TLS13_SUITES, startOpensslServer, startOpensslClient } from '../helpers/peers.mjs'
import { MiB, expectedSha256, hashStream, hashExactly, writePayload } from '../helpers/stream.mjs'
import { startKtlsServer, ktlsConnect, collectErrors, closed, assertUserspaceOnThisHost } from '../helpers/tls.mjs'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const N = 8 * MiB
const certs = getCerts()
const userspaceHost = !hostEvidenceOfKernelTls()
const UP = { seed: 'client->server' }
const DOWN = { seed: 'server->client' }

for (const suite of TLS13_SUITES) {
  test(`client exchanges 8 MiB each way with openssl s_server over ${suite}`, async (t) => {
    const peer = await startOpensslServer({ cert: certs.server.certPath, key: certs.server.keyPath })
    try {
      // s_server: what we send comes out of its stdout; its stdin is sent to us.
      const serverGot = hashStream(peer.stdout)
      const serverSent = writePayload(peer.stdin, N, DOWN)
      const c = await ktlsConnect({ port: peer.port, ciphers: suite, ktls: 'auto' })
      const errors = collectErrors(c)
      t.like(c.getCipher(), { standardName: suite, version: 'TLSv1.3' })
      assertUserspaceOnThisHost(t, c, userspaceHost)

      const clientGot = hashExactly(c, N)
      await writePayload(c, N, UP)
      t.is((await clientGot).sha256, expectedSha256(N, DOWN))
      await serverSent

      // close_notify from us: s_server answers with close_notify and exits 0.
      const cClosed = closed(c)
      c.end()
      const got = await serverGot
      t.is(got.bytes, N)
      t.is(got.sha256, expectedSha256(N, UP))
      t.deepEqual(await peer.exited, { code: 0, signal: null }, peer.stderr())
      await cClosed
      t.deepEqual(errors, [])
    } finally {
      await peer.kill()
    }
  })

  test(`openssl s_client exchanges 8 MiB each way with the server over ${suite}`, async (t) => {
    const srv = await startKtlsServer({ ciphers: suite, ktls: 'auto' })
    const peer = startOpensslClient({ port: srv.port, caFile: certs.ca.certPath })
    try {
      const clientSent = writePayload(peer.stdin, N, { ...UP, end: true })
      const clientGot = hashStream(peer.stdout)
      const s = await srv.nextSocket()
      const errors = collectErrors(s)
      t.like(s.getCipher(), { standardName: suite, version: 'TLSv1.3' })
      assertUserspaceOnThisHost(t, s, userspaceHost)

      const serverGot = hashExactly(s, N)
      await writePayload(s, N, DOWN)
      t.is((await serverGot).sha256, expectedSha256(N, UP))
      await clientSent

      // Our close_notify makes s_client exit.
      const sClosed = closed(s)
      s.end()
      const got = await clientGot
      t.is(got.bytes, N)
      t.is(got.sha256, expectedSha256(N, DOWN))
      t.deepEqual(await peer.exited, { code: 0, signal: null }, peer.stderr())
      await sClosed
      t.deepEqual(errors, [])
    } finally {
      await peer.kill()
      await srv.close()
    }
  })
}
