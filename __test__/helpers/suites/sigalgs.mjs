// sigalgs, as node:tls takes it: the signature schemes each side offers,
// accepts and signs with, against node:tls peers given the same strings.
// Shared by __test__/unit/sigalgs.spec.mjs and __test__/kernel/sigalgs.spec.mjs.
import tls from 'node:tls'
import { getCerts } from '../certs.mjs'
import { ktls } from '../ktls.mjs'
import { HOST, ktlsConnect, ktlsConnectError, startKtlsServer, startNodeServer } from '../tls.mjs'

function nodeClient(port, sigalgs) {
  const certs = getCerts()
  const client = tls.connect({ host: HOST, port, servername: 'localhost', ca: certs.ca.cert, sigalgs })
  return new Promise((resolve) => {
    client.once('secureConnect', () => resolve({ client }))
    client.once('error', (err) => resolve({ err }))
  })
}

export function sigalgsSuite(env) {
  const certs = getCerts()

  env.test(env.title('a ktls server with sigalgs and an RSA key signs with the one a node:tls client also names'), async (t) => {
    const srv = await startKtlsServer({ key: certs.rsa.key, cert: certs.rsa.cert, sigalgs: 'RSA-PSS+SHA384' })
    const { client, err } = await nodeClient(srv.port, 'RSA-PSS+SHA256:RSA-PSS+SHA384')
    t.is(err, undefined)
    const socket = await srv.nextSocket()
    env.assertPath(t, socket)
    client.destroy()
  })

  env.test(env.title('no scheme in common: the ktls server reports ERR_SSL_NO_SHARED_SIGNATURE_ALGORITHMS, the node:tls client a handshake_failure alert'), async (t) => {
    const srv = await startKtlsServer({ key: certs.rsa.key, cert: certs.rsa.cert, sigalgs: 'RSA-PSS+SHA384' })
    const { err } = await nodeClient(srv.port, 'RSA-PSS+SHA256:ECDSA+SHA256')
    t.regex(err?.code ?? '', /ALERT_HANDSHAKE_FAILURE/)
    const { err: serverErr } = await srv.nextClientError()
    t.is(serverErr.code, 'ERR_SSL_NO_SHARED_SIGNATURE_ALGORITHMS')
  })

  env.test(env.title("a ktls client's sigalgs are what it offers: an ECDSA-only list cannot meet an RSA-only node:tls server"), async (t) => {
    const rsaOnly = await startNodeServer({ key: certs.rsa.key, cert: certs.rsa.cert })
    const { err } = await ktlsConnectError({ port: rsaOnly.port, sigalgs: 'ECDSA+SHA256' })
    t.regex(err.code, /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/)
    const ecdsa = await startNodeServer()
    const c = await ktlsConnect({ port: ecdsa.port, sigalgs: 'ECDSA+SHA256:RSA-PSS+SHA256' })
    env.assertPath(t, c)
    c.destroy()
  })

  env.test(env.title('sigalgs naming an unknown scheme, or empty, is refused when the context is made (ERR_INVALID_ARG_VALUE)'), (t) => {
    t.is(t.throws(() => ktls.createSecureContext({ sigalgs: 'RSA+MD5' })).code, 'ERR_INVALID_ARG_VALUE')
    t.is(t.throws(() => ktls.createSecureContext({ sigalgs: '' })).code, 'ERR_INVALID_ARG_VALUE')
    t.is(t.throws(() => ktls.createSecureContext({ sigalgs: 42 })).code, 'ERR_INVALID_ARG_TYPE')
  })
}

/** What the server side's getSharedSigalgs() says for a node:tls client with `clientSigalgs`. */
async function serverShared(start, serverOptions, clientOptions) {
  const srv = await start(serverOptions)
  const certs = getCerts()
  const client = tls.connect({ host: HOST, port: srv.port, servername: 'localhost', ca: certs.ca.cert, ...clientOptions })
  await new Promise((resolve, reject) => client.once('secureConnect', resolve).once('error', reject))
  const side = await (srv.nextSocket ?? srv.nextPeer)()
  const shared = side.getSharedSigalgs()
  client.destroy()
  await srv.close()
  return shared
}

export function sharedSigalgsSuite(env) {
  const certs = getCerts()
  const servers = { ktls: startKtlsServer, 'node:tls': startNodeServer }

  env.test(env.title("a server's getSharedSigalgs() is node:tls's: its sigalgs in its order, kept where the client's allow"), async (t) => {
    const cases = [
      ['RSA-PSS+SHA256:ECDSA+SHA256', 'RSA-PSS+SHA256:RSA-PSS+SHA512:ECDSA+SHA256'],
      ['ECDSA+SHA384:ECDSA+SHA256:RSA+SHA256', 'ECDSA+SHA256:RSA+SHA256:ECDSA+SHA384:ed25519'],
      // No sigalgs on the server: OpenSSL's default list (Node 20's).
      [undefined, 'ed25519:RSA+SHA512:ECDSA+SHA256:RSA-PSS+SHA384:ECDSA+SHA224:RSA+SHA1'],
    ]
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
      for (const [serverSigalgs, clientSigalgs] of cases) {
        const [ours, theirs] = await Promise.all(Object.values(servers).map((start) => serverShared(start, { sigalgs: serverSigalgs, maxVersion }, { sigalgs: clientSigalgs })))
        t.true(ours.length > 0)
        t.deepEqual(ours, theirs, `${maxVersion} ${serverSigalgs} / ${clientSigalgs}`)
      }
    }
  })

  env.test(env.title("a server's getSharedSigalgs() for a ktls client (rustls's offer) is node:tls's"), async (t) => {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
      const lists = []
      for (const start of Object.values(servers)) {
        const srv = await start({ maxVersion })
        const c = await ktlsConnect({ port: srv.port })
        env.assertPath(t, c)
        lists.push((await (srv.nextSocket ?? srv.nextPeer)()).getSharedSigalgs())
        c.destroy()
        await srv.close()
      }
      t.deepEqual(lists[0], lists[1], maxVersion)
    }
  })

  env.test(env.title("a client's getSharedSigalgs() is node:tls's: a CertificateRequest's list kept where its own allows, [] without one"), async (t) => {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
      const srv = await startNodeServer({ maxVersion, requestCert: true, rejectUnauthorized: false, sigalgs: 'ECDSA+SHA256:RSA+SHA384:RSA-PSS+SHA256:ed25519' })
      const clientOptions = { port: srv.port, key: certs.rsa.key, cert: certs.rsa.cert, sigalgs: 'RSA-PSS+SHA256:RSA+SHA384:ECDSA+SHA256:ECDSA+SHA384' }
      const ours = await ktlsConnect(clientOptions)
      env.assertPath(t, ours)
      const theirs = await new Promise((resolve, reject) => {
        const c = tls.connect({ host: HOST, servername: 'localhost', ca: certs.ca.cert, ...clientOptions }, () => resolve(c)).once('error', reject)
      })
      t.deepEqual(ours.getSharedSigalgs(), theirs.getSharedSigalgs(), maxVersion)
      t.true(ours.getSharedSigalgs().length > 0)
      ours.destroy()
      theirs.destroy()
      await srv.close()

      const plain = await startNodeServer({ maxVersion })
      const unasked = await ktlsConnect({ port: plain.port })
      t.deepEqual(unasked.getSharedSigalgs(), [])
      unasked.destroy()
      await plain.close()
    }
  })
}
