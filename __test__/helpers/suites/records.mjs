// Records after the handshake, played by a tlslite-ng client (which can
// build what well-behaved libraries never send) against a ktls echo server:
// each answer checked against RFC 8446, on the offloaded path (the kernel's
// record layer and ktls's control records) and the userspace one (rustls).
// Shared by __test__/unit/records.spec.mjs and __test__/kernel/records.spec.mjs.
import { getCerts } from '../certs.mjs'
import { ktls } from '../ktls.mjs'
import { startProxy } from '../proxy.mjs'
import { onceEvent } from '../stream.mjs'
import { recordProbe } from '../tlslite.mjs'
import { startKtlsServer } from '../tls.mjs'

/** An echo server whose sockets report how they ended: { socket, error, offload }. */
async function echoServer() {
  const ends = []
  const waiters = []
  const srv = await startKtlsServer({}, (sock) => {
    const entry = { ktls: sock.ktls, error: undefined }
    sock.on('data', (d) => sock.write(d))
    sock.on('end', () => sock.end())
    sock.on('error', (err) => (entry.error = err))
    sock.on('close', () => {
      const w = waiters.shift()
      if (w) w(entry)
      else ends.push(entry)
    })
  })
  return {
    ...srv,
    nextEnd: () => (ends.length ? Promise.resolve(ends.shift()) : new Promise((r) => waiters.push(r))),
  }
}

async function play(t, env, scenario) {
  const srv = await echoServer()
  const report = await recordProbe(srv.port, scenario)
  t.log(scenario, JSON.stringify({ ...report, received: report.received.slice(0, 40) }))
  return { report, srv }
}

async function serverEnd(t, env, srv) {
  const end = await srv.nextEnd()
  t.is(end.ktls.tx && end.ktls.rx, env.kernel, `${env.path} path`)
  return end
}

export function recordsSuite(env) {
  // What each path answers; the kernel path follows RFC 8446 to the letter,
  // the userspace path answers as rustls does.
  const refused = [
    { scenario: 'empty-alert', alert: env.kernel ? 'unexpected_message' : 'decode_error' },
    { scenario: 'truncated-alert', alert: 'decode_error' },
    { scenario: 'two-key-updates-in-one-record', alert: 'unexpected_message' },
    { scenario: 'forged-tag', alert: 'bad_record_mac' },
    { scenario: 'oversized-record', alert: 'record_overflow' },
  ]
  if (env.kernel) {
    // rustls refuses both too, but without an alert (userspace: only the code).
    refused.push({ scenario: 'empty-handshake', alert: 'unexpected_message' })
    refused.push({ scenario: 'data-inside-key-update', alert: 'unexpected_message' })
    // More than 32 KeyUpdates a second (docs/records.md); rustls has no such limit.
    if (ktls.capabilities().rekey) refused.push({ scenario: 'key-update-flood', alert: 'unexpected_message' })
  }
  for (const { scenario, alert } of refused) {
    env.test(env.title(`records: ${scenario} is answered with a fatal ${alert} alert, the server socket errors with ERR_KTLS_BAD_RECORD`), async (t) => {
      const { report, srv } = await play(t, env, scenario)
      t.is(report.end, 'alert')
      t.is(report.alert, alert)
      t.is(report.received, '', 'nothing sent after the bad record is echoed')
      const end = await serverEnd(t, env, srv)
      t.is(end.error?.code, 'ERR_KTLS_BAD_RECORD')
    })
  }

  env.test(env.title('records: data between the fragments of a KeyUpdate ends the connection with ERR_KTLS_BAD_RECORD'), async (t) => {
    const { report, srv } = await play(t, env, 'data-inside-key-update')
    t.is(report.received, '')
    t.not(report.end, 'open')
    const end = await serverEnd(t, env, srv)
    t.is(end.error?.code, 'ERR_KTLS_BAD_RECORD')
  })

  const delivered = [
    { scenario: 'padded', data: 'pingpong', why: 'padded records (RFC 8446 §5.4) deliver their content only' },
    { scenario: 'zero-length-data', data: 'ping', why: 'a zero-length application data record is skipped' },
    { scenario: 'fragmented-data', data: 'ping', why: 'one-byte records arrive in order' },
    { scenario: 'full-record', data: 'x'.repeat(2 ** 14), why: 'a record of exactly 2^14 bytes is accepted' },
  ]
  for (const { scenario, data, why } of delivered) {
    env.test(env.title(`records: ${why}`), async (t) => {
      const { report, srv } = await play(t, env, scenario)
      t.is(report.end, 'open')
      t.is(report.received, data)
      const end = await serverEnd(t, env, srv)
      t.is(end.error, undefined)
    })
  }

  const rekeys = !env.kernel || ktls.capabilities().rekey
  for (const scenario of ['key-update', 'key-update-requested', 'split-key-update']) {
    const title = rekeys
      ? `records: ${scenario}: the peer's next key is followed and data flows on`
      : `records: ${scenario} on a kernel that cannot rekey: internal_error alert, ERR_KTLS_KEY_UPDATE_UNSUPPORTED`
    env.test(env.title(title), async (t) => {
      const { report, srv } = await play(t, env, scenario)
      if (rekeys) {
        t.is(report.end, 'open')
        t.is(report.received, 'ping')
      } else {
        t.is(report.end, 'alert')
        t.is(report.alert, 'internal_error')
      }
      const end = await serverEnd(t, env, srv)
      t.is(end.error?.code, rekeys ? undefined : 'ERR_KTLS_KEY_UPDATE_UNSUPPORTED')
    })
  }

  env.test(env.title('records: a plaintext handshake record over 2^14 bytes is answered with record_overflow'), async (t) => {
    const srv = await startKtlsServer()
    const report = await recordProbe(srv.port, 'oversized-handshake-record')
    t.is(report.alert, 'record_overflow')
    const { err } = await srv.nextClientError()
    t.is(err.code, 'ERR_KTLS_HANDSHAKE')
  })
}

/**
 * The records we send: setMaxSendFragment(size), as node:tls, caps their
 * plaintext. A record-aware proxy between the two ktls ends measures them.
 */
export function recordSizeSuite(env) {
  // TLS 1.3 sealing adds the content type byte and a 16-byte tag.
  const SEALING = 17
  const kernelCaps = env.kernel ? ktls.capabilities().txMaxPayload : true

  async function throughProxy(t, configure) {
    const srv = await startKtlsServer()
    const proxy = await startProxy({ targetPort: srv.port })
    const c = ktls.connect({ host: '127.0.0.1', port: proxy.port, servername: 'localhost', ca: getCerts().ca.cert })
    const early = configure(c)
    await onceEvent(c, 'secureConnect')
    const s = await srv.nextSocket()
    const conn = await proxy.connected
    const handshakeRecords = conn.toServer.lengths.length
    return { c, s, conn, handshakeRecords, early }
  }

  async function sendAndMeasure(t, { c, s, conn, handshakeRecords }, bytes) {
    const got = []
    let n = 0
    const all = new Promise((resolve) =>
      s.on('data', (d) => {
        got.push(d)
        n += d.length
        if (n >= bytes) resolve()
      }),
    )
    c.write(Buffer.alloc(bytes, 'r'))
    await all
    t.is(Buffer.concat(got).toString(), 'r'.repeat(bytes), 'every byte arrives')
    return conn.toServer.lengths.slice(handshakeRecords).map((r) => r.length)
  }

  env.test(env.title(`setMaxSendFragment(1024) after the handshake caps each record we send${env.kernel && !kernelCaps ? ' (not on a kernel without TLS_TX_MAX_PAYLOAD_LEN: false)' : ''}`), async (t) => {
    const link = await throughProxy(t, () => {})
    env.assertPath(t, link.c)
    t.is(link.c.setMaxSendFragment(1024), kernelCaps)
    const lengths = await sendAndMeasure(t, link, 10000)
    if (kernelCaps) {
      t.true(lengths.length >= 10, `${lengths.length} records`)
      for (const length of lengths) t.true(length <= 1024 + SEALING, `a record of ${length} bytes`)
    } else {
      t.is(Math.max(...lengths), 10000 + SEALING, 'the kernel keeps its 16 KiB records')
    }
    link.c.destroy()
  })

  env.test(env.title('setMaxSendFragment(600) before the handshake: offloaded where the kernel caps records, else userspace, and capped either way'), async (t) => {
    const link = await throughProxy(t, (c) => c.setMaxSendFragment(600))
    t.true(link.early)
    if (env.kernel && kernelCaps) env.assertPath(t, link.c)
    if (env.kernel && !kernelCaps) {
      t.false(link.c.ktls.tx)
      t.regex(link.c.ktls.reason, /setMaxSendFragment/)
    }
    const lengths = await sendAndMeasure(t, link, 5000)
    t.true(lengths.length >= 9, `${lengths.length} records`)
    for (const length of lengths) t.true(length <= 600 + SEALING, `a record of ${length} bytes`)
    link.c.destroy()
  })

  env.test(env.title("chunks written together fill whole records: HTTP/2's 9-byte frame headers between 16 KiB payloads add no records of their own"), async (t) => {
    const link = await throughProxy(t, () => {})
    env.assertPath(t, link.c)
    const FRAMES = 4
    const frame = (i) => [Buffer.alloc(9, `h${i}`), Buffer.alloc(16384, `d${i}`)]
    const sent = Buffer.concat(Array.from({ length: FRAMES }, (_, i) => frame(i)).flat())
    const got = []
    let n = 0
    const all = new Promise((resolve) =>
      link.s.on('data', (d) => {
        got.push(d)
        n += d.length
        if (n >= sent.length) resolve()
      }),
    )
    link.c.cork()
    for (let i = 0; i < FRAMES; i++) for (const chunk of frame(i)) link.c.write(chunk)
    link.c.uncork()
    await all
    t.true(Buffer.concat(got).equals(sent), 'every byte arrives, in order')
    const lengths = link.conn.toServer.lengths.slice(link.handshakeRecords).map((r) => r.length)
    // 65,572 bytes fill 5 records; one per chunk would be 8, four of them 26 bytes long.
    t.true(lengths.length <= Math.ceil(sent.length / 16384) + 1, `${lengths.length} records: ${lengths}`)
    t.true(lengths.filter((length) => length < 1024).length <= 1, `records: ${lengths}`)
    link.c.destroy()
  })

  env.test(env.title("setMaxSendFragment() outside 512..16384 is false, a non-number throws ERR_INVALID_ARG_TYPE, as node:tls"), async (t) => {
    const link = await throughProxy(t, () => {})
    t.false(link.c.setMaxSendFragment(511))
    t.false(link.c.setMaxSendFragment(16385))
    t.is(t.throws(() => link.c.setMaxSendFragment('1024')).code, 'ERR_INVALID_ARG_TYPE')
    link.c.destroy()
  })
}
