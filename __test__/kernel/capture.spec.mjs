// Packet-capture proof that offloaded application data is encrypted on the wire.
import { randomBytes } from 'node:crypto'
import { startCapture, captureContains, tcpdumpAvailable } from '../helpers/capture.mjs'
import { MiB, expectedSha256, hashExactly, writePayload } from '../helpers/stream.mjs'
import { kernelTest, statSnapshot, assertOffloaded, assertOffloadCount } from '../helpers/kernel.mjs'
import { startKtlsServer, ktlsConnect, closed, endAndClose } from '../helpers/tls.mjs'
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

kernelTest('application data never appears in cleartext on the wire (offloaded path)', async (t) => {
  t.true(tcpdumpAvailable(), 'tcpdump is required in the guest')
  const marker = Buffer.from(`SECRET-${randomBytes(8).toString('hex')}`)
  const size = 2 * MiB
  const UP = { seed: 'kernel cap up', marker }
  const DOWN = { seed: 'kernel cap down', marker }
  const srv = await startKtlsServer()
  const cap = await startCapture({ port: srv.port })
  try {
    const before = statSnapshot()
    const c = await ktlsConnect({ port: srv.port, servername: 'localhost' })
    const s = await srv.nextSocket()
    assertOffloaded(t, c)
    assertOffloaded(t, s)
    assertOffloadCount(t, before, 2)
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
