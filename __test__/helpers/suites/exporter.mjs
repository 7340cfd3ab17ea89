// exportKeyingMaterial, as node:tls: both ends of a connection derive the
// same bytes (RFC 8446 §7.5 for TLS 1.3, RFC 5705 for TLS 1.2), node:tls on
// the other end. The secret is captured during the handshake, so offloaded
// sockets answer too. Shared by __test__/unit/exporter.spec.mjs and
// __test__/kernel/exporter.spec.mjs.
import tls from 'node:tls'
import { ktls } from '../ktls.mjs'
import { getCerts } from '../certs.mjs'
import { track } from '../cleanup.mjs'
import { onceEvent } from '../stream.mjs'
import { startKtlsServer, startNodeServer, ktlsConnect, nodeConnect, HOST } from '../tls.mjs'

const LABEL = 'EXPERIMENTAL-ktls-test'

function exports(sock) {
  return {
    plain: sock.exportKeyingMaterial(32, LABEL).toString('hex'),
    withContext: sock.exportKeyingMaterial(48, LABEL, Buffer.from('context')).toString('hex'),
    emptyContext: sock.exportKeyingMaterial(16, LABEL, Buffer.alloc(0)).toString('hex'),
  }
}

export function exporterSuite(env) {
  const certs = getCerts()
  for (const version of ['TLSv1.3', 'TLSv1.2']) {
    env.test(env.title(`exportKeyingMaterial agrees with node:tls at the other end over ${version}, client and server`), async (t) => {
      const nodeSide = []
      const srv = await startNodeServer({ maxVersion: version }, (s) => nodeSide.push(s))
      const c = await ktlsConnect({ port: srv.port, maxVersion: version })
      env.assertPath(t, c)
      t.is(c.getProtocol(), version)
      while (!nodeSide.length) await new Promise((r) => setTimeout(r, 5))
      const ours = exports(c)
      t.deepEqual(ours, exports(nodeSide[0]))
      t.not(ours.plain, c.exportKeyingMaterial(32, `${LABEL}-2`).toString('hex'), 'the label matters')
      t.not(ours.plain, ours.emptyContext.padEnd(64, '0'), 'lengths and context matter')
      c.destroy()
      await srv.close()

      const ourServer = await startKtlsServer({ maxVersion: version })
      const client = await nodeConnect({ port: ourServer.port })
      const s = await ourServer.nextSocket()
      env.assertPath(t, s)
      t.deepEqual(exports(s), exports(client))
      client.destroy()
      await ourServer.close()
    })
  }

  env.test('exportKeyingMaterial before the handshake ends, or with bad arguments, throws what node:tls throws', async (t) => {
    const srv = await startKtlsServer()
    const sockets = [
      track(ktls.connect({ port: srv.port, host: HOST, servername: 'localhost', ca: certs.ca.cert })),
      track(tls.connect({ port: srv.port, host: HOST, servername: 'localhost', ca: certs.ca.cert })),
    ]
    const [ours, theirs] = sockets.map((s) => t.throws(() => s.exportKeyingMaterial(32, LABEL)))
    t.is(ours.code, 'ERR_TLS_INVALID_STATE')
    t.is(ours.code, theirs.code)
    await Promise.all(sockets.map((s) => onceEvent(s, 'secureConnect', { timeout: env.ms(10000) })))
    for (const args of [[0, LABEL], ['32', LABEL], [32, 7], [32, LABEL, 'context']]) {
      const [mine, node] = sockets.map((s) => t.throws(() => s.exportKeyingMaterial(...args)))
      t.is(mine.code, node.code, JSON.stringify(args))
      t.is(mine.constructor, node.constructor, JSON.stringify(args))
    }
    for (const s of sockets) s.destroy()
    await srv.close()
  })
}

/** NSS key log lines: LABEL <client random, hex> <secret, hex>. */
const KEYLOG_LINE = /^([A-Z_0-9]+) ([0-9a-f]{64}) ([0-9a-f]+)\n$/

export function keylogSuite(env) {
  env.test(env.title("'keylog' gives NSS key log lines on the client and on the server, the same lines node:tls gives its peer"), async (t) => {
    const certs = getCerts()
    // Our client, node:tls server: both sides log the same secrets.
    const nodeLines = []
    const srv = await startNodeServer({})
    srv.server.on('keylog', (line) => nodeLines.push(String(line)))
    const ourLines = []
    const c = track(ktls.connect({ port: srv.port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
    c.on('keylog', (line) => {
      t.true(Buffer.isBuffer(line))
      ourLines.push(String(line))
    })
    await onceEvent(c, 'secureConnect', { timeout: env.ms(10000) })
    env.assertPath(t, c)
    while (nodeLines.length < 5) await new Promise((r) => setTimeout(r, 5))
    t.is(ourLines.length, 5, 'TLS 1.3: two handshake, two traffic secrets and the exporter secret')
    for (const line of ourLines) t.regex(line, KEYLOG_LINE)
    t.deepEqual([...ourLines].sort(), [...nodeLines].sort())
    c.destroy()
    await srv.close()

    // Our server, node:tls client: (line, socket) on the server.
    const ourServer = await startKtlsServer({})
    const serverLines = []
    ourServer.server.on('keylog', (line, socket) => serverLines.push([String(line), socket]))
    const clientLines = []
    const client = track(tls.connect({ port: ourServer.port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
    client.on('keylog', (line) => clientLines.push(String(line)))
    await onceEvent(client, 'secureConnect', { timeout: env.ms(10000) })
    const s = await ourServer.nextSocket()
    env.assertPath(t, s)
    t.true(serverLines.every(([, socket]) => socket === s))
    t.deepEqual(serverLines.map(([line]) => line).sort(), [...clientLines].sort())
    client.destroy()
    await ourServer.close()
  })
}

/** Both sides' Finished verify_data, as this socket reports them. */
const finished = (sock) => ({ mine: sock.getFinished()?.toString('hex'), peer: sock.getPeerFinished()?.toString('hex') })

/** verify_data is 12 bytes in TLS 1.2, the suite's hash length in TLS 1.3. */
const finishedLength = (sock) => (sock.getProtocol() === 'TLSv1.2' ? 12 : sock.getCipher().name.endsWith('SHA384') ? 48 : 32)

/** Each side's Finished as the other end sees it: ours sent is theirs received. */
function assertFinishedAgree(t, ours, theirs, what, length = finishedLength(theirs)) {
  t.is(finishedLength(theirs), length, `${what}: the suite expected`)
  const a = finished(ours)
  const b = finished(theirs)
  t.is(a.mine?.length, length * 2, `${what}: our Finished is ${length} bytes`)
  t.is(a.peer?.length, length * 2, `${what}: the peer's Finished is ${length} bytes`)
  t.is(a.mine, b.peer, `${what}: what we sent is what node:tls received`)
  t.is(a.peer, b.mine, `${what}: what node:tls sent is what we received`)
}

export function finishedSuite(env) {
  const certs = getCerts()
  // Each AEAD in each version: the Finished messages are opened with its keys.
  const CASES = [
    { version: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', length: 32 },
    { version: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384', length: 48 },
    { version: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256', length: 32 },
    { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', length: 12 },
    { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384', length: 12 },
    { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305', length: 12 },
  ]
  env.test(env.title('getFinished() and getPeerFinished() agree with node:tls at the other end: each AEAD, TLS 1.3 and 1.2, client and server'), async (t) => {
    for (const { version, ciphers, length } of CASES) {
      const options = { maxVersion: version, minVersion: version, ciphers }
      const srv = await startNodeServer(options)
      const c = await ktlsConnect({ port: srv.port, ...options })
      env.assertPath(t, c)
      assertFinishedAgree(t, c, await srv.nextPeer(), `${ciphers} client`, length)
      c.destroy()
      await srv.close()

      const ourServer = await startKtlsServer(options)
      const client = await nodeConnect({ port: ourServer.port, ...options })
      const s = await ourServer.nextSocket()
      env.assertPath(t, s)
      assertFinishedAgree(t, s, client, `${ciphers} server`, length)
      client.destroy()
      await ourServer.close()
    }
  })

  env.test(env.title('Finished messages after a client certificate, a HelloRetryRequest and a resumption agree with node:tls'), async (t) => {
    // A client certificate: the client's Finished follows its Certificate and CertificateVerify.
    const mutual = await startKtlsServer({ requestCert: true, ca: certs.ca.cert })
    const withCert = await nodeConnect({ port: mutual.port, key: certs.rsa.key, cert: certs.rsa.cert })
    const s = await mutual.nextSocket()
    t.true(s.authorized)
    assertFinishedAgree(t, s, withCert, 'client certificate')
    withCert.destroy()
    await mutual.close()

    // A HelloRetryRequest: the server wants P-384, the client's first share is X25519.
    const srv = await startNodeServer({ ecdhCurve: 'P-384' })
    const retried = await ktlsConnect({ port: srv.port, ecdhCurve: 'X25519:P-384' })
    env.assertPath(t, retried)
    assertFinishedAgree(t, retried, await srv.nextPeer(), 'HelloRetryRequest')
    retried.destroy()

    await srv.close()

    // Resumed sessions (no certificates, in TLS 1.2 the server's Finished
    // first): a ktls client of node:tls, a node:tls client of ktls.
    for (const version of ['TLSv1.3', 'TLSv1.2']) {
      const nodeServer = await startNodeServer({ maxVersion: version }, (sock) => sock.end('bye'))
      const secureContext = ktls.createSecureContext({ ca: certs.ca.cert })
      const first = await ktlsConnect({ port: nodeServer.port, secureContext })
      first.resume()
      await onceEvent(first, 'end', { timeout: env.ms(10000) }) // TLS 1.3 tickets come after the handshake
      first.destroy()
      await nodeServer.nextPeer()
      const resumed = await ktlsConnect({ port: nodeServer.port, secureContext })
      env.assertPath(t, resumed)
      t.true(resumed.isSessionReused(), `${version}: resumed`)
      assertFinishedAgree(t, resumed, await nodeServer.nextPeer(), `${version} resumed, our client`)
      resumed.destroy()
      await nodeServer.close()

      const ourServer = await startKtlsServer({ maxVersion: version })
      const firstClient = track(tls.connect({ port: ourServer.port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
      const session = await onceEvent(firstClient, 'session', { timeout: env.ms(10000) })
      await ourServer.nextSocket()
      firstClient.destroy()
      const resumedClient = await nodeConnect({ port: ourServer.port, session })
      const resumedServer = await ourServer.nextSocket()
      t.true(resumedServer.isSessionReused(), `${version}: resumed by a node:tls client`)
      assertFinishedAgree(t, resumedServer, resumedClient, `${version} resumed, our server`)
      resumedClient.destroy()
      await ourServer.close()
    }
  })

  env.test('getFinished(), getPeerFinished() and getSharedSigalgs() answer as node:tls before the handshake ends and once destroyed', async (t) => {
    const srv = await startKtlsServer()
    const sockets = [
      track(ktls.connect({ port: srv.port, host: HOST, servername: 'localhost', ca: certs.ca.cert })),
      track(tls.connect({ port: srv.port, host: HOST, servername: 'localhost', ca: certs.ca.cert })),
    ]
    const raw = (s) => [s.getFinished(), s.getPeerFinished(), s.getSharedSigalgs()]
    const [oursBefore, theirsBefore] = sockets.map(raw)
    t.deepEqual(oursBefore, theirsBefore)
    t.deepEqual(oursBefore, [undefined, undefined, []])
    await Promise.all(sockets.map((s) => onceEvent(s, 'secureConnect', { timeout: env.ms(10000) })))
    for (const s of sockets) t.truthy(s.getFinished())
    for (const s of sockets) s.destroy()
    const [oursAfter, theirsAfter] = sockets.map(raw)
    t.deepEqual(oursAfter, theirsAfter)
    t.deepEqual(oursAfter, [null, null, null])
    await srv.close()
  })
}
