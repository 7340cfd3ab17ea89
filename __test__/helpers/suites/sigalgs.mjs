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
