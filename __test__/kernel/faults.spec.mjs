// Faults after offload: tampered records (kernel EBADMSG), alerts arriving as
// kTLS control records, and resets. The process must survive all of them.
import { startProxy } from '../helpers/proxy.mjs'
import { KiB, MiB, delay, expectedSha256, hashExactly, onceEvent, withTimeout, writePayload } from '../helpers/stream.mjs'
import { kernelTest, statSnapshot, tlsStatDelta, assertOffloaded, assertOffloadReleased } from '../helpers/kernel.mjs'
import {
  startNodeServer,
  startKtlsServer,
  ktlsConnect,
  nodeConnect,
  exchange,
  closed,
  endAndClose,
} from '../helpers/tls.mjs'
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const DOWN = { seed: 'kernel tamper down' }

async function stillWorks(t) {
  const srv = await startKtlsServer()
  const c = await ktlsConnect({ port: srv.port })
  const s = await srv.nextSocket()
  assertOffloaded(t, c)
  const r = await exchange(c, s, 64 * KiB)
  t.is(r.bGot.sha256, r.aSent.sha256, 'a fresh offloaded connection still works')
  t.is(r.aGot.sha256, r.bSent.sha256)
  await endAndClose(c)
  await srv.close()
}

kernelTest('offloaded client rejects a tampered record with ERR_KTLS_BAD_RECORD, delivers no corrupted data, and the process survives', async (t) => {
  const SIZE = 8 * MiB
  const srv = await startNodeServer({}, (s) => {
    writePayload(s, SIZE, DOWN).catch(() => {})
  })
  const proxy = await startProxy({ targetPort: srv.port })
  const before = statSnapshot()
  const c = await ktlsConnect({ port: proxy.port })
  assertOffloaded(t, c)
  let received = 0
  let soFar
  const hashing = hashExactly(c, SIZE, { onBytes: (b, h) => ((received = b), (soFar = h)) })
  while (received < 1 * MiB) await delay(5)
  const tampered = proxy.corruptNextRecord('toClient')
  const err = await withTimeout(hashing.then(() => null, (e) => e), 120000, 'client error')
  await tampered
  t.truthy(err, 'the stream must not complete')
  t.is(err?.code, 'ERR_KTLS_BAD_RECORD')
  t.true(received < SIZE)
  t.is(soFar.copy().digest('hex'), expectedSha256(received, DOWN), 'bytes delivered before the error are an intact prefix')
  t.true((tlsStatDelta(before, statSnapshot()).TlsDecryptError ?? 0) >= 1, 'the kernel counted the decrypt error')
  await closed(c)
  await assertOffloadReleased(t, before)
  await proxy.close()
  await srv.close()
  await stillWorks(t)
})

kernelTest('offloaded server socket rejects a tampered record with ERR_KTLS_BAD_RECORD', async (t) => {
  const srv = await startKtlsServer()
  const proxy = await startProxy({ targetPort: srv.port })
  const before = statSnapshot()
  const client = await nodeConnect({ port: proxy.port })
  client.on('error', () => {})
  const s = await srv.nextSocket()
  assertOffloaded(t, s)
  s.resume()
  const errored = onceEvent(s, 'error', { timeout: 60000 })
  const tampered = proxy.corruptNextRecord('toServer')
  client.write('this record will be tampered with')
  await tampered
  const err = await errored
  t.is(err.code, 'ERR_KTLS_BAD_RECORD')
  t.true((tlsStatDelta(before, statSnapshot()).TlsDecryptError ?? 0) >= 1)
  await closed(s)
  client.destroy()
  await proxy.close()
  await srv.close()
  await stillWorks(t)
})

kernelTest('offloaded client reports ERR_TLS_ALERT_BAD_RECORD_MAC when the peer rejects a tampered record', async (t) => {
  // node:tls answers an undecryptable record with a fatal bad_record_mac alert,
  // which reaches us through the kernel as a non-data (alert) record.
  const srv = await startNodeServer({}, (s) => s.resume())
  const proxy = await startProxy({ targetPort: srv.port })
  const c = await ktlsConnect({ port: proxy.port })
  assertOffloaded(t, c)
  await srv.nextPeer()
  c.resume()
  const errored = onceEvent(c, 'error', { timeout: 60000 })
  const tampered = proxy.corruptNextRecord('toServer')
  c.write('this record will be tampered with')
  await tampered
  const err = await errored
  t.is(err.code, 'ERR_TLS_ALERT_BAD_RECORD_MAC')
  await closed(c)
  await proxy.close()
  await srv.close()
  await stillWorks(t)
})

kernelTest('offloaded client fails with ECONNRESET when the peer resets the connection', async (t) => {
  const srv = await startNodeServer()
  const proxy = await startProxy({ targetPort: srv.port })
  const c = await ktlsConnect({ port: proxy.port })
  assertOffloaded(t, c)
  const peer = await srv.nextPeer()
  const r = await exchange(c, peer, 64 * KiB)
  t.is(r.aGot.sha256, r.bSent.sha256)
  c.resume()
  const errored = onceEvent(c, 'error', { timeout: 60000 })
  proxy.resetClient()
  const err = await errored
  t.is(err.code, 'ECONNRESET')
  await closed(c)
  await proxy.close()
  await srv.close()
})
