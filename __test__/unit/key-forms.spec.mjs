// Certificate and key forms, as node:tls takes them: encrypted PEM keys with
// `passphrase` (or { pem, passphrase }), PKCS#1 and SEC1 keys, and an RSA and
// an ECDSA certificate on one server, picked by what the client can verify.
// node:tls servers given the same options are the reference.
import test from 'ava'
import tls from 'node:tls'
import { createPrivateKey } from 'node:crypto'
import { ktls } from '../helpers/ktls.mjs'
import { getCerts } from '../helpers/certs.mjs'
import { listen, closeServer } from '../helpers/peers.mjs'
import { ktlsConnect, nodeConnect } from '../helpers/tls.mjs'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const certs = getCerts()
const encrypt = (pem, passphrase) => createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase })

/** The key type a client (node:tls's unless `connect` says) sees from a server made by `lib`; the suite, with `withCipher`. */
async function served(lib, serverOptions, clientOptions = {}, { connect = nodeConnect, withCipher = false } = {}) {
  const server = lib.createServer(serverOptions, (s) => s.end())
  const port = await listen(server)
  try {
    const c = await connect({ port, ...clientOptions })
    const cert = c.getPeerX509Certificate()
    const seen = { type: cert.publicKey.asymmetricKeyType, authorized: c.authorized, ...(withCipher && { cipher: c.getCipher() }) }
    c.destroy()
    return seen
  } finally {
    await closeServer(server)
  }
}

test('an encrypted PEM key with passphrase, or as { pem, passphrase }, serves as node:tls does', async (t) => {
  const encrypted = encrypt(certs.server.key, 'sesame')
  for (const options of [
    { key: encrypted, passphrase: 'sesame', cert: certs.server.cert },
    { key: [{ pem: encrypted, passphrase: 'sesame' }], cert: certs.server.cert },
  ]) {
    const ours = await served(ktls, options)
    t.deepEqual(ours, { type: 'ec', authorized: true })
    t.deepEqual(ours, await served(tls, options))
  }
})

test('a wrong or missing passphrase throws at createServer, with the code and words node:tls throws', (t) => {
  const key = encrypt(certs.server.key, 'sesame')
  for (const options of [
    { key, passphrase: 'wrong', cert: certs.server.cert },
    { key, cert: certs.server.cert },
    { key: [{ pem: key }], cert: certs.server.cert },
  ]) {
    const theirs = t.throws(() => tls.createServer(options))
    const ours = t.throws(() => ktls.createServer(options))
    t.is(ours.code, 'ERR_OSSL_BAD_DECRYPT')
    t.is(ours.code, theirs.code)
    t.is(ours.message, theirs.message)
  }
})

test('PKCS#1 RSA and SEC1 EC keys serve as node:tls does', async (t) => {
  const forms = [
    { key: createPrivateKey(certs.rsa.key).export({ type: 'pkcs1', format: 'pem' }), cert: certs.rsa.cert, type: 'rsa' },
    { key: createPrivateKey(certs.server.key).export({ type: 'sec1', format: 'pem' }), cert: certs.server.cert, type: 'ec' },
  ]
  for (const { key, cert, type } of forms) {
    t.regex(key, type === 'rsa' ? /BEGIN RSA PRIVATE KEY/ : /BEGIN EC PRIVATE KEY/)
    t.deepEqual(await served(ktls, { key, cert }), { type, authorized: true })
  }
})

test('an RSA and an ECDSA certificate on one server: each client gets one it can verify, as node:tls picks', async (t) => {
  // Keys and certificates in different orders: they are paired by matching.
  const options = { key: [certs.server.key, certs.rsa.key], cert: [certs.rsa.cert, certs.server.cert] }
  const clients = [
    {},
    { sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256', maxVersion: 'TLSv1.2' },
    { sigalgs: 'rsa_pss_rsae_sha256' },
    { sigalgs: 'ecdsa_secp256r1_sha256' },
    // A TLS 1.2 client whose only suite needs an RSA key, though it prefers ECDSA signatures.
    { ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' },
  ]
  for (const clientOptions of clients) {
    const ours = await served(ktls, options, clientOptions)
    t.deepEqual(ours, await served(tls, options, clientOptions), JSON.stringify(clientOptions))
    t.true(ours.authorized)
  }
  t.is((await served(ktls, options, { sigalgs: 'rsa_pss_rsae_sha256' })).type, 'rsa')
  t.is((await served(ktls, options, { sigalgs: 'ecdsa_secp256r1_sha256' })).type, 'ec')
  t.is((await served(ktls, options, { ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' })).type, 'rsa')
  // ktls's own TLS 1.2 client offers no TLS 1.3 suite, so the server sees it needs RSA;
  // getCipher() names the suite as node:tls does (OpenSSL's name, then IANA's).
  for (const ciphers of ['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-AES256-GCM-SHA384']) {
    const clientOptions = { ciphers, maxVersion: 'TLSv1.2', rejectUnauthorized: false }
    const ours = await served(ktls, options, clientOptions, { connect: ktlsConnect, withCipher: true })
    t.deepEqual(ours, await served(tls, options, clientOptions, { withCipher: true }))
    t.deepEqual(ours.cipher, { name: ciphers, standardName: `TLS_${ciphers.startsWith('ECDHE-RSA') ? 'ECDHE_RSA' : 'ECDHE_ECDSA'}_WITH_AES_256_GCM_SHA384`, version: 'TLSv1.2' })
  }
  const mismatched = t.throws(() => ktls.createServer({ key: [certs.server.key], cert: [certs.rsa.cert] }))
  t.is(mismatched.code, 'ERR_OSSL_X509_KEY_VALUES_MISMATCH')
})
