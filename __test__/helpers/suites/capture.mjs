// Packet-capture proof that application data never crosses loopback in
// cleartext. Shared by __test__/unit/capture.spec.mjs (userspace path) and
// __test__/kernel/capture.spec.mjs (offloaded path).
import { randomBytes } from 'node:crypto'
import { startCapture, captureContains, tcpdumpAvailable } from '../capture.mjs'
import { MiB, expectedSha256, hashExactly, writePayload } from '../stream.mjs'
import { startKtlsServer, ktlsConnect, closed, endAndClose } from '../tls.mjs'

export function captureSuite(env) {
  env.serial(`application data never appears in cleartext on the wire (${env.path} path)`, async (t) => {
    t.true(tcpdumpAvailable(), env.kernel ? 'tcpdump is required in the guest' : 'tcpdump is required (apt-get install -y tcpdump)')
    const marker = Buffer.from(`SECRET-${randomBytes(8).toString('hex')}`)
    const size = 2 * MiB
    const UP = { seed: 'cap up', marker }
    const DOWN = { seed: 'cap down', marker }
    const srv = await startKtlsServer()
    const cap = await startCapture({ port: srv.port })
    try {
      const stat = env.stat()
      const c = await ktlsConnect({ port: srv.port, servername: 'localhost' })
      const s = await srv.nextSocket()
      env.assertPath(t, c)
      env.assertPath(t, s)
      stat.count(t, 2)
      const gotS = hashExactly(s, size)
      const gotC = hashExactly(c, size)
      await Promise.all([writePayload(c, size, UP), writePayload(s, size, DOWN)])
      t.is((await gotS).sha256, expectedSha256(size, UP))
      t.is((await gotC).sha256, expectedSha256(size, DOWN))
      await Promise.all([endAndClose(c), closed(s)])
    } finally {
      const res = await cap.stop()
      t.is(res.dropped, 0)
      t.is(res.holes, 0, 'capture is complete')
      t.true(res.payloadBytes >= 2 * size, `captured ${res.payloadBytes} payload bytes`)
      t.true(captureContains(res, 'localhost'), 'control: the SNI in the ClientHello is visible in cleartext')
      t.false(captureContains(res, marker), 'marker leaked in cleartext')
      t.false(captureContains(res, marker.subarray(0, 12)), 'marker prefix leaked in cleartext')
      await srv.close()
    }
  })
}
