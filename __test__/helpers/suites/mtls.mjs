// Mutual TLS, as node:tls: a server's requestCert / rejectUnauthorized / ca,
// a client's cert / key; authorized and authorizationError on the server's
// socket, the client's chain in getPeerCertificate(). Each outcome is
// compared with a node:tls server given the same options and clients.
// Shared by __test__/unit/mtls.spec.mjs and __test__/kernel/mtls.spec.mjs.
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { ktls } from '../ktls.mjs'
import { getCerts } from '../certs.mjs'
import { closeServer, listen, startOpensslClient, waitForOutput } from '../peers.mjs'
import { onCleanup, track } from '../cleanup.mjs'
import { onceEvent, withTimeout } from '../stream.mjs'
import { HOST } from '../tls.mjs'

/**
 * One client against a server made by `lib` with `serverOptions`: what the
 * server saw ('secureConnection' with authorized / authorizationError and
 * the peer's certificate, or 'tlsClientError').
 */
async function trial(lib, serverOptions, clientOptions, env) {
  const certs = getCerts()
  const sockets = []
  const server = lib.createServer({ key: certs.server.key, cert: certs.server.cert, ...serverOptions })
  const seen = new Promise((resolve) => {
    server.on('secureConnection', (s) => {
      sockets.push(s)
      s.on('error', () => {})
      const peer = s.getPeerX509Certificate()
      resolve({ secure: { authorized: s.authorized, authorizationError: s.authorizationError, peer: peer?.subject ?? null } })
      s.end('ok')
    })
    server.on('tlsClientError', (err) => resolve({ refused: err.code }))
  })
  const port = await listen(server)
  onCleanup(() => closeServer(server))
  const c = track(tls.connect({ port, host: HOST, servername: 'localhost', ca: certs.ca.cert, ...clientOptions }))
  c.on('error', () => {})
  c.resume()
  const result = await withTimeout(seen, env.ms(10000), 'server outcome')
  c.destroy()
  await closeServer(server)
  return { result, sockets }
}

export function mtlsSuite(env) {
  const certs = getCerts()
  const trusted = { key: certs.rsa.key, cert: certs.rsa.cert }
  const untrusted = { key: certs.selfSigned.key, cert: certs.selfSigned.cert }
  const CASES = [
    { title: 'requestCert: a client certificate from the trusted ca is authorized', server: { requestCert: true, ca: certs.ca.cert }, client: trusted },
    { title: 'requestCert without rejectUnauthorized: no certificate is reported, not refused', server: { requestCert: true, rejectUnauthorized: false, ca: certs.ca.cert }, client: {} },
    { title: 'requestCert without rejectUnauthorized: an untrusted certificate is reported with its code', server: { requestCert: true, rejectUnauthorized: false, ca: certs.ca.cert }, client: untrusted },
    { title: 'requestCert with rejectUnauthorized: a client without a certificate is refused', server: { requestCert: true, ca: certs.ca.cert }, client: {} },
    { title: 'no requestCert: a client certificate is neither asked for nor reported', server: {}, client: trusted },
  ]
  for (const { title, server, client } of CASES) {
    env.test(env.title(`${title}, as node:tls`), async (t) => {
      const ours = await trial(ktls, server, client, env)
      const reference = await trial(tls, server, client, env)
      t.deepEqual(ours.result, reference.result)
      for (const s of ours.sockets) env.assertPath(t, s)
    })
  }

  env.test(env.title('requestCert with rejectUnauthorized: an untrusted client certificate is refused with its verification code'), async (t) => {
    // node:tls destroys such a socket after its handshake (its client sees a reset); ktls says why.
    const { result } = await trial(ktls, { requestCert: true, ca: certs.ca.cert }, untrusted, env)
    t.deepEqual(result, { refused: 'INVALID_PURPOSE' })
  })

  env.test(env.title('a ktls client presents cert/key to a node:tls server that asks, and getCertificate() shows it'), async (t) => {
    const server = tls.createServer({ key: certs.server.key, cert: certs.server.cert, requestCert: true, ca: certs.ca.cert })
    const seen = new Promise((resolve) => server.once('secureConnection', (s) => resolve({ authorized: s.authorized, peer: s.getPeerCertificate().fingerprint256 })))
    const port = await listen(server)
    onCleanup(() => closeServer(server))
    const c = track(ktls.connect({ port, host: HOST, servername: 'localhost', ca: certs.ca.cert, ...trusted }))
    await onceEvent(c, 'secureConnect', { timeout: env.ms(10000) })
    env.assertPath(t, c)
    const fingerprint = new X509Certificate(certs.rsa.cert).fingerprint256
    t.deepEqual(await seen, { authorized: true, peer: fingerprint })
    t.is(c.getX509Certificate().fingerprint256, fingerprint)
    t.is(c.getCertificate().fingerprint256, fingerprint)
    c.destroy()
    await closeServer(server)
  })

  env.test(env.title('openssl s_client with -cert/-key is authorized by a ktls server with requestCert'), async (t) => {
    const server = ktls.createServer({ key: certs.server.key, cert: certs.server.cert, requestCert: true, ca: certs.ca.cert })
    const seen = new Promise((resolve) =>
      server.once('secureConnection', (s) => {
        env.assertPath(t, s)
        resolve({ authorized: s.authorized, subject: s.getPeerCertificate().subject?.CN })
        s.end('hello from ktls\n')
      }),
    )
    const port = await listen(server)
    onCleanup(() => closeServer(server))
    const peer = startOpensslClient({ port, caFile: certs.ca.certPath, args: ['-cert', certs.rsa.certPath, '-key', certs.rsa.keyPath] })
    onCleanup(() => peer.kill())
    await waitForOutput(peer.stdout, /hello from ktls/, { timeout: env.ms(20000) })
    t.deepEqual(await seen, { authorized: true, subject: 'localhost' })
    await peer.kill()
    await closeServer(server)
  })
}
