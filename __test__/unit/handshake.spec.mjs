// Handshake features on the userspace path: ALPN, SNI, certificates, cipher
// and protocol reporting, TLS 1.2, and fatal alerts from the peer.
import test from 'ava'
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { listen, closeServer } from '../helpers/peers.mjs'
import { getCerts } from '../helpers/certs.mjs'
import { ktls } from '../helpers/ktls.mjs'
import {
  startNodeServer,
  startKtlsServer,
  ktlsConnect,
  ktlsConnectError,
  nodeConnect,
  nodeConnectError,
  exchange,
  endAndClose,
} from '../helpers/tls.mjs'
import { onceEvent } from '../helpers/stream.mjs'
import { cleanupAll, track } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const certs = getCerts()

async function withNodeServer(opts, fn) {
  const srv = await startNodeServer(opts)
  try {
    return await fn(srv, () => srv.nextPeer())
  } finally {
    await srv.close()
  }
}

test('client and node:tls server agree on the first server-preferred ALPN protocol', async (t) => {
  await withNodeServer({ ALPNProtocols: ['http/1.1'] }, async (srv, peerSocket) => {
    const c = await ktlsConnect({ port: srv.port, ALPNProtocols: ['h2', 'http/1.1'] })
    t.is(c.alpnProtocol, 'http/1.1')
    t.is((await peerSocket()).alpnProtocol, 'http/1.1')
    await endAndClose(c)
  })
})

test('client accepts ALPNProtocols given as Buffers', async (t) => {
  await withNodeServer({ ALPNProtocols: ['h2'] }, async (srv) => {
    const c = await ktlsConnect({ port: srv.port, ALPNProtocols: [Buffer.from('h2')] })
    t.is(c.alpnProtocol, 'h2')
    await endAndClose(c)
  })
})

test('server selects its preferred ALPN protocol among those a node:tls client offers', async (t) => {
  const srv = await startKtlsServer({ ALPNProtocols: ['h2', 'http/1.1'] })
  const client = await nodeConnect({ port: srv.port, ALPNProtocols: ['http/1.1', 'h2'] })
  const s = await srv.nextSocket()
  t.is(s.alpnProtocol, 'h2')
  t.is(client.alpnProtocol, 'h2')
  s.resume() // read the close_notify so the server side ends too
  await endAndClose(client)
  await srv.close()
})

test('alpnProtocol is false when no protocol was negotiated', async (t) => {
  await withNodeServer({}, async (srv) => {
    const c = await ktlsConnect({ port: srv.port })
    t.is(c.alpnProtocol, false)
    await endAndClose(c)
  })
})

test('client fails with ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL when the server shares no ALPN protocol', async (t) => {
  await withNodeServer({ ALPNProtocols: ['h2'] }, async (srv) => {
    const { err, secure } = await ktlsConnectError({ port: srv.port, ALPNProtocols: ['http/1.1'] })
    t.is(err.code, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL')
    t.false(secure)
  })
})

test('server refuses a client with no common ALPN protocol with a no_application_protocol alert', async (t) => {
  const srv = await startKtlsServer({ ALPNProtocols: ['h2'] })
  const { connect } = await import('node:tls')
  const client = track(connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', ca: certs.ca.cert, ALPNProtocols: ['http/1.1'] }))
  const err = await onceEvent(client, 'error', { timeout: 30000 })
  t.is(err.code, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL')
  const { err: serverErr } = await srv.nextClientError()
  t.is(serverErr.code, 'ERR_SSL_NO_APPLICATION_PROTOCOL') // node:tls's code for it
  await srv.close()
})

test('client sends servername as SNI', async (t) => {
  await withNodeServer({}, async (srv, peerSocket) => {
    const c = await ktlsConnect({ port: srv.port, servername: 'localhost' })
    t.is((await peerSocket()).servername, 'localhost')
    t.is(c.servername, 'localhost')
    await endAndClose(c)
  })
})

test('server exposes the SNI name sent by a node:tls client', async (t) => {
  const srv = await startKtlsServer()
  const client = await nodeConnect({ port: srv.port, servername: 'sni-check.test', rejectUnauthorized: false })
  const s = await srv.nextSocket()
  t.is(s.servername, 'sni-check.test')
  s.resume()
  await endAndClose(client)
  await srv.close()
})

test('getPeerCertificate() describes the server certificate like node:tls does', async (t) => {
  await withNodeServer({}, async (srv) => {
    const c = await ktlsConnect({ port: srv.port })
    const reference = await nodeConnect({ port: srv.port })
    const x = new X509Certificate(certs.server.cert)
    const pc = c.getPeerCertificate()
    const ref = reference.getPeerCertificate()
    t.deepEqual({ ...pc.subject }, { ...ref.subject })
    t.deepEqual({ ...pc.issuer }, { ...ref.issuer })
    t.is(pc.subject.CN, 'localhost')
    t.is(pc.issuer.CN, 'ktls-test-ca')
    t.is(pc.subjectaltname, x.subjectAltName)
    t.is(pc.subjectaltname, ref.subjectaltname)
    t.is(pc.valid_from, x.validFrom)
    t.is(pc.valid_to, x.validTo)
    t.is(pc.fingerprint256, x.fingerprint256)
    t.true(Buffer.isBuffer(pc.raw))
    t.true(pc.raw.equals(x.raw))
    await endAndClose(c)
    await endAndClose(reference)
  })
})

test('getCertificate(), getX509Certificate() and getPeerX509Certificate() answer as node:tls does on both sides', async (t) => {
  const x = new X509Certificate(certs.server.cert)
  // node:tls's answers for the same pair of roles, as the reference.
  const nodeServer = tls.createServer({ key: certs.server.key, cert: certs.server.cert })
  const nodeServerSide = new Promise((r) => nodeServer.once('secureConnection', r))
  const port = await listen(nodeServer)
  const refClient = await nodeConnect({ port })
  const refServer = await nodeServerSide

  const srv = await startKtlsServer()
  const client = await ktlsConnect({ port: srv.port })
  const server = await srv.nextSocket()

  t.is(server.getX509Certificate().fingerprint256, x.fingerprint256)
  t.is(server.getX509Certificate().fingerprint256, refServer.getX509Certificate().fingerprint256)
  t.is(server.getCertificate().fingerprint256, refServer.getCertificate().fingerprint256)
  t.deepEqual({ ...server.getCertificate().subject }, { ...refServer.getCertificate().subject })
  t.is(client.getPeerX509Certificate().fingerprint256, refClient.getPeerX509Certificate().fingerprint256)
  t.true(client.getPeerX509Certificate().raw.equals(x.raw))
  // Neither side has a peer or a local certificate where node:tls has none.
  t.is(server.getPeerX509Certificate(), refServer.getPeerX509Certificate())
  t.is(client.getX509Certificate(), refClient.getX509Certificate())
  t.deepEqual(client.getCertificate(), refClient.getCertificate())
  client.destroy()
  refClient.destroy()
  t.is(client.getCertificate(), null)
  t.is(client.getPeerX509Certificate(), undefined)
  await closeServer(nodeServer)
  await srv.close()
})

test('getCipher() and getProtocol() report the negotiated TLS 1.3 suite', async (t) => {
  await withNodeServer({}, async (srv) => {
    const c = await ktlsConnect({ port: srv.port, ciphers: 'TLS_CHACHA20_POLY1305_SHA256' })
    t.deepEqual(
      { ...c.getCipher() },
      { name: 'TLS_CHACHA20_POLY1305_SHA256', standardName: 'TLS_CHACHA20_POLY1305_SHA256', version: 'TLSv1.3' },
    )
    t.is(c.getProtocol(), 'TLSv1.3')
    await endAndClose(c)
  })
})

const AES128_FIRST = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384'
const AES256_FIRST = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256'

test('client offers suites in the order of its ciphers option (to a node:tls server that follows the client)', async (t) => {
  for (const [ciphers, expected] of [
    [AES128_FIRST, 'TLS_AES_128_GCM_SHA256'],
    [AES256_FIRST, 'TLS_AES_256_GCM_SHA384'],
  ]) {
    await withNodeServer({ honorCipherOrder: false }, async (srv, peerSocket) => {
      const c = await ktlsConnect({ port: srv.port, ciphers })
      t.is(c.getCipher().name, expected, ciphers)
      t.is((await peerSocket()).getCipher().name, expected)
      await endAndClose(c)
    })
  }
})

test('server picks by its own ciphers order by default, as node:tls, and by the client order with honorCipherOrder: false', async (t) => {
  for (const [honorCipherOrder, expected] of [
    [undefined, 'TLS_AES_128_GCM_SHA256'],
    [true, 'TLS_AES_128_GCM_SHA256'],
    [false, 'TLS_AES_256_GCM_SHA384'],
  ]) {
    const srv = await startKtlsServer({ ciphers: AES128_FIRST, honorCipherOrder })
    const c = await nodeConnect({ port: srv.port, ciphers: AES256_FIRST })
    t.is(c.getCipher().name, expected, `honorCipherOrder: ${honorCipherOrder}`)
    t.is((await srv.nextSocket()).getCipher().name, expected)
    c.destroy()
    await srv.close()
    await withNodeServer({ ciphers: AES128_FIRST, honorCipherOrder }, async (reference) => {
      const r = await nodeConnect({ port: reference.port, ciphers: AES256_FIRST })
      t.is(r.getCipher().name, expected, `node:tls, honorCipherOrder: ${honorCipherOrder}`)
      r.destroy()
    })
  }
})

test('by default both sides prefer TLS_AES_128_GCM_SHA256, where node:tls prefers TLS_AES_256_GCM_SHA384', async (t) => {
  const srv = await startKtlsServer()
  const c = await nodeConnect({ port: srv.port })
  t.is(c.getCipher().name, 'TLS_AES_128_GCM_SHA256')
  c.destroy()
  await srv.close()
  await withNodeServer({ honorCipherOrder: false }, async (reference) => {
    const k = await ktlsConnect({ port: reference.port })
    t.is(k.getCipher().name, 'TLS_AES_128_GCM_SHA256')
    await endAndClose(k)
  })
  t.is(ktls.DEFAULT_CIPHERS.split(':').slice(0, 3).join(':'), 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256')
  t.is(ktls.DEFAULT_CIPHERS.split(':').length, 9)
})

test('client negotiates TLS 1.2 when maxVersion is TLSv1.2', async (t) => {
  await withNodeServer({}, async (srv, peerSocket) => {
    const c = await ktlsConnect({ port: srv.port, maxVersion: 'TLSv1.2' })
    t.is(c.getProtocol(), 'TLSv1.2')
    t.is(c.getCipher().version, 'TLSv1.2')
    t.regex(c.getCipher().standardName, /^TLS_ECDHE_ECDSA_WITH_/)
    const peer = await peerSocket()
    t.is(peer.getProtocol(), 'TLSv1.2')
    const r = await exchange(c, peer, 256 * 1024)
    t.is(r.bGot.sha256, r.aSent.sha256)
    t.is(r.aGot.sha256, r.bSent.sha256)
    await endAndClose(c)
  })
})

test('client fails with ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION against a TLS 1.2-only server when minVersion is TLSv1.3', async (t) => {
  await withNodeServer({ maxVersion: 'TLSv1.2' }, async (srv) => {
    const { err, secure } = await ktlsConnectError({ port: srv.port, minVersion: 'TLSv1.3' })
    t.is(err.code, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION')
    t.false(secure)
  })
})

test("client fails with node:tls's code for a handshake_failure alert when no cipher suite is shared", async (t) => {
  await withNodeServer({ minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' }, async (srv) => {
    const { err, secure } = await ktlsConnectError({ port: srv.port, ciphers: 'TLS_CHACHA20_POLY1305_SHA256' })
    const theirs = await nodeConnectError({ port: srv.port, ciphers: 'TLS_CHACHA20_POLY1305_SHA256' })
    // Node 20 (OpenSSL 3.0) says SSLV3_ALERT, Node 22 and 24 (3.2 and later) SSL/TLS_ALERT.
    t.regex(theirs.code, /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/)
    t.is(err.code, theirs.code)
    t.false(secure)
  })
})

test('server with an RSA-2048 certificate serves a node:tls client', async (t) => {
  const srv = await startKtlsServer({ key: certs.rsa.key, cert: certs.rsa.cert })
  const client = await nodeConnect({ port: srv.port })
  const s = await srv.nextSocket()
  t.true(client.authorized)
  const pc = client.getPeerCertificate()
  t.is(pc.fingerprint256, new X509Certificate(certs.rsa.cert).fingerprint256)
  t.is(pc.bits, 2048)
  const r = await exchange(client, s, 256 * 1024)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.is(r.aGot.sha256, r.bSent.sha256)
  await endAndClose(client)
  await srv.close()
})

test('client verifies an RSA-2048 server certificate', async (t) => {
  await withNodeServer({ key: certs.rsa.key, cert: certs.rsa.cert }, async (srv) => {
    const c = await ktlsConnect({ port: srv.port })
    t.true(c.authorized)
    t.is(c.getPeerCertificate().fingerprint256, new X509Certificate(certs.rsa.cert).fingerprint256)
    await endAndClose(c)
  })
})
