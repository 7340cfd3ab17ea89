// What a handshake negotiated beyond the suite, as node:tls reports it:
// session resumption (isSessionReused, on both sides, tickets read from the
// kernel included), the key exchange (getEphemeralKeyInfo, ecdhCurve), and
// the version choices of secureProtocol. Shared by
// __test__/unit/session-info.spec.mjs and __test__/kernel/session-info.spec.mjs.
import tls from 'node:tls'
import { ktls } from '../ktls.mjs'
import { getCerts } from '../certs.mjs'
import { track } from '../cleanup.mjs'
import { onceEvent } from '../stream.mjs'
import { startKtlsServer, startNodeServer, ktlsConnect, nodeConnect, HOST } from '../tls.mjs'

/**
 * Waits until `sock` read to its end: TLS 1.3 tickets come after the
 * handshake, and OpenSSL may send them behind the first application data,
 * so only the peer's close_notify proves they were read (from the kernel,
 * once offloaded).
 */
async function readToEnd(sock, env) {
  sock.resume()
  await onceEvent(sock, 'end', { timeout: env.ms(10000) })
}

export function sessionInfoSuite(env) {
  const certs = getCerts()

  env.test(env.title('a client sharing a secure context resumes its session with node:tls: isSessionReused() on both sides'), async (t) => {
    const serverSide = []
    const srv = await startNodeServer({}, (s) => {
      serverSide.push(s.isSessionReused())
      s.end('hello')
    })
    const secureContext = ktls.createSecureContext({ ca: certs.ca.cert })
    const first = await ktlsConnect({ port: srv.port, secureContext })
    env.assertPath(t, first)
    await readToEnd(first, env)
    t.false(first.isSessionReused())
    first.destroy()
    const second = await ktlsConnect({ port: srv.port, secureContext })
    env.assertPath(t, second)
    t.true(second.isSessionReused(), 'rustls resumed with the ticket node:tls sent')
    await readToEnd(second, env)
    t.deepEqual(serverSide, [false, true])
    second.destroy()
    await srv.close()
  })

  env.test(env.title("a node:tls client resumes its session with a ktls server (its 'session'): isSessionReused() on both sides"), async (t) => {
    const srv = await startKtlsServer({}, (s) => s.write('hello'))
    const first = track(tls.connect({ port: srv.port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
    const session = await onceEvent(first, 'session', { timeout: env.ms(10000) })
    const firstServer = await srv.nextSocket()
    env.assertPath(t, firstServer)
    first.destroy()
    const second = await nodeConnect({ port: srv.port, session })
    const secondServer = await srv.nextSocket()
    env.assertPath(t, secondServer)
    t.true(second.isSessionReused())
    t.deepEqual([firstServer.isSessionReused(), secondServer.isSessionReused()], [false, true])
    second.destroy()
    await srv.close()
  })

  env.test(env.title('getEphemeralKeyInfo() and ecdhCurve answer as node:tls'), async (t) => {
    for (const ecdhCurve of [undefined, 'P-256', 'secp384r1:X25519']) {
      const srv = await startNodeServer(ecdhCurve ? { ecdhCurve } : {})
      const ours = await ktlsConnect({ port: srv.port })
      const reference = await nodeConnect({ port: srv.port })
      t.deepEqual(ours.getEphemeralKeyInfo(), reference.getEphemeralKeyInfo(), String(ecdhCurve))
      ours.destroy()
      reference.destroy()
      await srv.close()
      // And a ktls server given the same curves, seen by a node:tls client.
      const ourServer = await startKtlsServer(ecdhCurve ? { ecdhCurve } : {})
      const viaOurs = await nodeConnect({ port: ourServer.port })
      const s = await ourServer.nextSocket()
      t.deepEqual(s.getEphemeralKeyInfo(), {}, 'a server reports nothing, as node:tls')
      const nodeServer = await startNodeServer(ecdhCurve ? { ecdhCurve } : {})
      const viaNode = await nodeConnect({ port: nodeServer.port })
      t.deepEqual(viaOurs.getEphemeralKeyInfo(), viaNode.getEphemeralKeyInfo(), `server ${ecdhCurve}`)
      viaOurs.destroy()
      viaNode.destroy()
      await ourServer.close()
      await nodeServer.close()
    }
  })

  env.test("ecdhCurve, secureProtocol, setServername and renegotiate refuse what node:tls refuses, with its codes", async (t) => {
    const same = (f, g, label) => {
      const theirs = t.throws(f)
      const ours = t.throws(g)
      t.is(ours.code, theirs.code, label)
      t.is(ours instanceof TypeError, theirs instanceof TypeError, label)
    }
    same(() => tls.createSecureContext({ ecdhCurve: 'nope' }), () => ktls.createSecureContext({ ecdhCurve: 'nope' }), 'ecdhCurve')
    same(() => tls.createSecureContext({ secureProtocol: 'nope_method' }), () => ktls.createSecureContext({ secureProtocol: 'nope_method' }), 'method')
    const conflict = { secureProtocol: 'TLSv1_2_method', minVersion: 'TLSv1.2' }
    same(() => tls.createSecureContext(conflict), () => ktls.createSecureContext(conflict), 'conflict')
    same(() => new tls.TLSSocket(null, { isServer: true }).setServername('x'), () => new ktls.KtlsSocket(null, { isServer: true }).setServername('x'), 'server SNI')
    same(() => new tls.TLSSocket().setServername(5), () => new ktls.KtlsSocket().setServername(5), 'name type')
    for (const secureProtocol of ['SSLv2_method', 'SSLv3_client_method']) {
      const theirs = t.throws(() => tls.createSecureContext({ secureProtocol }))
      const ours = t.throws(() => ktls.createSecureContext({ secureProtocol }))
      t.deepEqual([ours.code, ours.message], [theirs.code, theirs.message])
    }
    // TLS 1.0 does not exist here: refused with the version code.
    t.throws(() => ktls.createSecureContext({ secureProtocol: 'TLSv1_method' }), { code: 'ERR_TLS_INVALID_PROTOCOL_VERSION' })
    const srv = await startNodeServer()
    // TLS 1.3 has no renegotiation: node:tls's error for it, word for word.
    const c = await ktlsConnect({ port: srv.port })
    const reference = await nodeConnect({ port: srv.port })
    same(() => reference.renegotiate(), () => c.renegotiate(), 'options')
    same(() => reference.renegotiate({}, false), () => c.renegotiate({}, false), 'callback')
    const [ours, theirs] = await Promise.all([c, reference].map((sock) => new Promise((resolve) => t.false(sock.renegotiate({}, resolve)))))
    t.is(ours.code, 'ERR_SSL_WRONG_SSL_VERSION')
    t.deepEqual([ours.code, ours.message, ours.reason], [theirs.code, theirs.message, theirs.reason])
    // TLS 1.2: rustls never renegotiates, refused with node:tls's code for a refusal.
    const old = await ktlsConnect({ port: srv.port, maxVersion: 'TLSv1.2' })
    const refused = await new Promise((resolve) => t.false(old.renegotiate({}, resolve)))
    t.is(refused.code, 'ERR_TLS_RENEGOTIATION_DISABLED')
    for (const sock of [c, reference, old]) sock.destroy()
    t.is(c.renegotiate({}), undefined)
    await srv.close()
  })

  env.test(env.title("secureProtocol 'TLSv1_2_method' and setServername() before connecting are honoured"), async (t) => {
    const srv = await startKtlsServer({ secureProtocol: 'TLSv1_2_method' })
    const reference = await nodeConnect({ port: srv.port })
    t.is(reference.getProtocol(), 'TLSv1.2')
    reference.destroy()
    const s1 = await srv.nextSocket()
    env.assertPath(t, s1)
    const sock = track(new ktls.KtlsSocket(undefined, { ca: certs.ca.cert, rejectUnauthorized: false }))
    sock.setServername('named.example')
    sock.connect(srv.port, HOST)
    await onceEvent(sock, 'secure', { timeout: env.ms(10000) })
    t.is(sock.getProtocol(), 'TLSv1.2')
    const s2 = await srv.nextSocket()
    t.is(s2.servername, 'named.example')
    sock.destroy()
    await srv.close()
  })
}
