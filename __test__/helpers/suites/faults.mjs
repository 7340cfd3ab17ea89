// Faults on an established connection: tampered records, alerts, resets.
// Shared by __test__/unit/faults.spec.mjs (userspace path) and
// __test__/kernel/faults.spec.mjs (offloaded: tampered records fail in the
// kernel with EBADMSG, alerts arrive as kTLS control records). The process
// must survive all of them: a fresh connection still works afterwards.
import { startProxy } from '../proxy.mjs'
import { KiB, MiB, delay, expectedSha256, hashExactly, onceEvent, withTimeout, writePayload } from '../stream.mjs'
import { startNodeServer, startKtlsServer, ktlsConnect, nodeConnect, exchange, closed, endAndClose } from '../tls.mjs'

async function stillWorks(env, t) {
  const srv = await startKtlsServer()
  const c = await ktlsConnect({ port: srv.port })
  const s = await srv.nextSocket()
  env.assertPath(t, c)
  const r = await exchange(c, s, 64 * KiB)
  t.is(r.bGot.sha256, r.aSent.sha256, `a fresh ${env.path} connection still works`)
  t.is(r.aGot.sha256, r.bSent.sha256)
  await endAndClose(c)
  await srv.close()
}

// One record on the way to `direction` is corrupted by the proxy; `side` is
// the socket whose 'error' must carry `code`.
const TAMPERED = [
  {
    title: 'server socket rejects a tampered record with ERR_KTLS_BAD_RECORD',
    code: 'ERR_KTLS_BAD_RECORD',
    kernelCountsDecryptError: true,
    async connect(env, t, proxyFor) {
      const srv = await startKtlsServer()
      const proxy = await proxyFor(srv)
      const client = await nodeConnect({ port: proxy.port })
      client.on('error', () => {})
      const s = await srv.nextSocket()
      env.assertPath(t, s)
      return { srv, side: s, writer: client, done: () => client.destroy() }
    },
  },
  {
    // node:tls answers an undecryptable record with a fatal bad_record_mac
    // alert (offloaded: it reaches us through the kernel as a non-data record).
    title: "client reports node:tls's bad_record_mac alert code when the peer rejects a tampered record",
    // Node 20 (OpenSSL 3.0) says SSLV3_ALERT, Node 22 and 24 SSL/TLS_ALERT.
    code: /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_BAD_RECORD_MAC$/,
    kernelCountsDecryptError: false,
    async connect(env, t, proxyFor) {
      const srv = await startNodeServer({}, (s) => s.resume())
      const proxy = await proxyFor(srv)
      const c = await ktlsConnect({ port: proxy.port })
      env.assertPath(t, c)
      await srv.nextPeer() // the server has our Finished: the next record is application data
      return { srv, side: c, writer: c, done: () => {} }
    },
  },
]

export function faultsSuite(env) {
  env.test(
    env.title('client rejects a tampered record with ERR_KTLS_BAD_RECORD, delivers no corrupted data, and the process survives'),
    async (t) => {
      const SIZE = 8 * MiB
      const DOWN = { seed: 'tamper down' }
      const srv = await startNodeServer({}, (s) => {
        writePayload(s, SIZE, DOWN).catch(() => {})
      })
      const proxy = await startProxy({ targetPort: srv.port })
      const stat = env.stat()
      const c = await ktlsConnect({ port: proxy.port })
      env.assertPath(t, c)
      let received = 0
      let soFar
      const hashing = hashExactly(c, SIZE, { onBytes: (b, h) => ((received = b), (soFar = h)) })
      while (received < 1 * MiB) await delay(5)
      const tampered = proxy.corruptNextRecord('toClient')
      const err = await withTimeout(hashing.then(() => null, (e) => e), env.ms(30000, 120000), 'client error')
      await tampered
      t.truthy(err, 'the stream must not complete')
      t.is(err?.code, 'ERR_KTLS_BAD_RECORD')
      t.true(received < SIZE)
      t.is(soFar.copy().digest('hex'), expectedSha256(received, DOWN), 'bytes delivered before the error are an intact prefix')
      if (env.kernel) t.true(stat.decryptErrors() >= 1, 'the kernel counted the decrypt error')
      await closed(c)
      await stat.released(t)
      await proxy.close()
      await srv.close()
      await stillWorks(env, t)
    },
  )

  for (const row of TAMPERED) {
    env.test(env.title(row.title), async (t) => {
      let proxy
      const proxyFor = async (srv) => (proxy = await startProxy({ targetPort: srv.port }))
      const stat = env.stat()
      const { srv, side, writer, done } = await row.connect(env, t, proxyFor)
      side.resume()
      const errored = onceEvent(side, 'error', { timeout: env.ms(10000) })
      const tampered = proxy.corruptNextRecord('toServer')
      writer.write('this record will be tampered with')
      await tampered
      const err = await errored
      if (row.code instanceof RegExp) t.regex(err.code, row.code)
      else t.is(err.code, row.code)
      if (env.kernel && row.kernelCountsDecryptError) t.true(stat.decryptErrors() >= 1, 'the kernel counted the decrypt error')
      await closed(side)
      done()
      await proxy.close()
      await srv.close()
      await stillWorks(env, t)
    })
  }

  env.test(env.title('client fails with ECONNRESET when the peer resets an established connection'), async (t) => {
    const srv = await startNodeServer()
    const proxy = await startProxy({ targetPort: srv.port })
    const c = await ktlsConnect({ port: proxy.port })
    env.assertPath(t, c)
    const peer = await srv.nextPeer()
    const r = await exchange(c, peer, 64 * KiB)
    t.is(r.aGot.sha256, r.bSent.sha256)
    c.resume()
    const errored = onceEvent(c, 'error', { timeout: env.ms(10000) })
    const closing = closed(c, env.ms(30000, 90000)) // kernel: 60 s for the error + 30 s for 'close'
    proxy.resetClient()
    const err = await errored
    t.is(err.code, 'ECONNRESET')
    await closing
    await proxy.close()
    await srv.close()
  })
}
