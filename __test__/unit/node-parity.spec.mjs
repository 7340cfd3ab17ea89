// Behaviours node:tls users rely on, each compared with what node:tls does
// for the same input: calling without `new`, OpenSSL cipher strings, null
// options, servers without credentials, the NODE_* environment variables.
import test from 'ava'
import tls from 'node:tls'
import net from 'node:net'
import events, { EventEmitter } from 'node:events'
import https from 'node:https'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ktls } from '../helpers/ktls.mjs'
import { getCerts } from '../helpers/certs.mjs'
import { onceEvent } from '../helpers/stream.mjs'
import { startKtlsServer, ktlsConnect, nodeConnect, HOST } from '../helpers/tls.mjs'
import { listen, closeServer } from '../helpers/peers.mjs'
import { cleanupAll, track } from '../helpers/cleanup.mjs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

test.after.always(cleanupAll)

const certs = getCerts()

test('Server, https.Server and Agent can be called without new, as node:tls and node:https allow', (t) => {
  t.true(tls.Server({ key: certs.server.key, cert: certs.server.cert }) instanceof tls.Server)
  const server = ktls.Server({ key: certs.server.key, cert: certs.server.cert })
  t.true(server instanceof ktls.Server)
  t.true(ktls.https.Server({ key: certs.server.key, cert: certs.server.cert }) instanceof ktls.https.Server)
  const agent = ktls.Agent({ keepAlive: true })
  t.true(agent instanceof ktls.Agent)
  t.true(agent instanceof https.Agent)
  // ...and they stay classes: subclasses work.
  class Mine extends ktls.Server {}
  t.true(new Mine({ key: certs.server.key, cert: certs.server.cert }) instanceof ktls.Server)
})

test('Server.call(server) makes a server of another making a TLS server, as node:https and util.inherits() subclasses call tls.Server', async (t) => {
  const options = { key: certs.server.key, cert: certs.server.cert }
  // node:https's Server: its prototype chain is not ktls's.
  function Foreign(opts, listener) {
    ktls.Server.call(this, opts, listener)
  }
  Object.setPrototypeOf(Foreign.prototype, net.Server.prototype)
  // An old-style subclass of ktls's own Server.
  function Inherited(opts, listener) {
    ktls.Server.call(this, opts, listener)
  }
  Object.setPrototypeOf(Inherited.prototype, ktls.Server.prototype)
  for (const Made of [Foreign, Inherited]) {
    const secured = []
    const server = new Made(options, (socket) => {
      secured.push(socket)
      socket.end('hello')
    })
    t.true(server instanceof Made)
    // ktls's methods, even where the prototype's would be another's.
    t.is(server.setSecureContext, ktls.Server.prototype.setSecureContext)
    t.is(server.getTicketKeys().length, 48)
    const port = await listen(server)
    const client = await nodeConnect({ port })
    const [data] = await events.once(client, 'data')
    t.is(String(data), 'hello')
    t.true(secured[0] instanceof ktls.KtlsSocket)
    client.destroy()
    await closeServer(server)
  }
})

const OPENSSL_CIPHERS = [
  { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', tls12: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
  { ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384', tls12: 'ECDHE-ECDSA-CHACHA20-POLY1305' },
  { ciphers: 'HIGH:!aNULL', tls12: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
  { ciphers: 'ECDHE+AESGCM:!AES256', tls12: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
  { ciphers: 'ECDHE+AES256', tls12: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
  // A security level glued to a keyword (Node's own tests use this one).
  { ciphers: 'ALL@SECLEVEL=0', tls12: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
  { ciphers: 'ECDHE+AESGCM:@SECLEVEL=2', tls12: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
]

for (const { ciphers, tls12 } of OPENSSL_CIPHERS) {
  test(`an OpenSSL cipher string (${ciphers}) picks the suite node:tls would pick`, async (t) => {
    const srv = await startKtlsServer({ ciphers, minVersion: 'TLSv1.2' })
    const client = await nodeConnect({ port: srv.port, maxVersion: 'TLSv1.2' })
    t.is(client.getCipher().name, tls12)
    // node:tls given the same string agrees.
    const node = tls.createServer({ key: certs.server.key, cert: certs.server.cert, ciphers })
    const port = await listen(node)
    const viaNode = await nodeConnect({ port, maxVersion: 'TLSv1.2' })
    t.is(viaNode.getCipher().name, tls12)
    client.destroy()
    viaNode.destroy()
    await closeServer(node)
    await srv.close()
  })
}

test('a cipher string that matches no suite throws ERR_SSL_NO_CIPHER_MATCH, as node:tls', (t) => {
  const nodeErr = t.throws(() => tls.createSecureContext({ ciphers: 'RC4-MD5' }))
  t.is(nodeErr.code, 'ERR_SSL_NO_CIPHER_MATCH')
  const ours = t.throws(() => ktls.createSecureContext({ ciphers: 'RC4-MD5' }))
  t.is(ours.code, 'ERR_SSL_NO_CIPHER_MATCH')
})

test('null options mean "not given", as in node:tls', async (t) => {
  const srv = await startKtlsServer({ ALPNProtocols: null, ciphers: null, minVersion: null, handshakeTimeout: null, ktls: null })
  const c = await ktlsConnect({ port: srv.port, ALPNProtocols: null, ciphers: null, maxVersion: null, key: null, cert: null })
  t.true(c.authorized)
  t.is(c.alpnProtocol, false)
  c.destroy()
  await srv.close()
})

/** The server's tlsClientError code, the client's error code and the server's error message for one handshake. */
async function refusedHandshake(lib, serverOptions) {
  const server = lib.createServer(serverOptions)
  const clientError = onceEvent(server, 'tlsClientError', { timeout: 10000 })
  const port = await listen(server)
  const client = track(tls.connect({ port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
  const clientFailed = onceEvent(client, 'error', { timeout: 10000 })
  const [err] = await clientError
  const seen = { server: err.code, client: (await clientFailed).code, message: err.message }
  client.destroy()
  await closeServer(server)
  return seen
}

test('a server without key or certificate can be created; a client reads a handshake_failure alert and the server node:tls’s code', async (t) => {
  t.notThrows(() => tls.createServer())
  const theirs = await refusedHandshake(tls, {})
  const ours = await refusedHandshake(ktls, {})
  t.is(ours.server, 'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM')
  t.is(ours.server, theirs.server)
  t.regex(ours.client, /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/)
  t.is(ours.client, theirs.client)
})

test('an SNICallback that chooses a context without a certificate: handshake_failure to the client, node:tls’s code and words to the server', async (t) => {
  const seen = {}
  for (const [name, lib] of [['theirs', tls], ['ours', ktls]]) {
    seen[name] = await refusedHandshake(lib, { SNICallback: (_name, cb) => cb(null, lib.createSecureContext()) })
  }
  // Node 20 says ERR_SSL_PASSED_A_NULL_PARAMETER, later lines what a server without a certificate says.
  t.is(seen.ours.server, seen.theirs.server)
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(seen.theirs.message)[1]
  t.true(seen.ours.message.includes(reason), seen.ours.message)
  t.is(seen.ours.client, seen.theirs.client)
  t.regex(seen.ours.client, /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/)
})

test('NODE_TLS_REJECT_UNAUTHORIZED=0 turns off the default rejection (an explicit option still wins)', (t) => {
  const srvScript = `
    const ktls = require(${JSON.stringify(require.resolve('../../dist/index.js'))})
    const server = ktls.createServer({ key: process.env.KEY, cert: process.env.CERT }, (s) => s.end('hi'))
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port
      const loose = ktls.connect({ port, host: '127.0.0.1', servername: 'localhost' }, () => {
        const strict = ktls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: true })
        strict.on('error', (e) => { console.log(JSON.stringify({ loose: loose.authorizationError, strict: e.code })); process.exit(0) })
      })
      loose.on('error', (e) => { console.log(JSON.stringify({ looseError: e.code })); process.exit(0) })
    })`
  const out = execFileSync(process.execPath, ['-e', srvScript], {
    env: { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: '0', KEY: certs.server.key, CERT: certs.server.cert },
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  t.deepEqual(JSON.parse(out), { loose: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', strict: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })
})

test('NODE_EXTRA_CA_CERTS adds trust anchors when `ca` is not given, as node:tls', (t) => {
  const script = `
    const ktls = require(${JSON.stringify(require.resolve('../../dist/index.js'))})
    const server = ktls.createServer({ key: process.env.KEY, cert: process.env.CERT }, (s) => s.end('hi'))
    server.listen(0, '127.0.0.1', () => {
      const c = ktls.connect({ port: server.address().port, host: '127.0.0.1', servername: 'localhost' }, () => {
        console.log(JSON.stringify({ authorized: c.authorized })); process.exit(0)
      })
      c.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0) })
    })`
  const out = execFileSync(process.execPath, ['-e', script], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.ca.certPath, KEY: certs.server.key, CERT: certs.server.cert },
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  t.deepEqual(JSON.parse(out), { authorized: true })
})

test('X.509 v1 certificates are served and accepted, as node:tls does (OpenSSL accepts them, webpki not)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ktls-v1-'))
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'key.pem')
  openssl('req', '-new', '-key', 'key.pem', '-subj', '/CN=localhost', '-out', 'csr.pem')
  // `x509 -req` without extensions writes a version 1 certificate.
  openssl('x509', '-req', '-in', 'csr.pem', '-signkey', 'key.pem', '-days', '2', '-out', 'cert.pem')
  const text = openssl('x509', '-in', 'cert.pem', '-noout', '-text').toString()
  t.regex(text, /Version: 1 \(0x0\)/)
  const key = readFileSync(join(dir, 'key.pem'), 'utf8')
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
  const srv = await startKtlsServer({ key, cert }, (s) => s.end('v1'))
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
    const viaNode = await nodeConnect({ port: srv.port, rejectUnauthorized: false, maxVersion })
    t.is(viaNode.getPeerCertificate().subject.CN, 'localhost')
    viaNode.destroy()
    const ours = await ktlsConnect({ port: srv.port, rejectUnauthorized: false, maxVersion })
    t.is(ours.getProtocol(), maxVersion)
    t.is(ours.getPeerCertificate().subject.CN, 'localhost')
    t.false(ours.authorized)
    ours.destroy()
  }
  await srv.close()
  rmSync(dir, { recursive: true, force: true })
})

test('an X.509 v1 leaf issued by a trusted CA is authorized, an untrusted one gets OpenSSL’s code: both roles, as node:tls', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ktls-v1-'))
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'key.pem')
  openssl('req', '-new', '-key', 'key.pem', '-subj', '/CN=localhost', '-out', 'csr.pem')
  // No extensions: version 1, signed by the test CA.
  openssl('x509', '-req', '-in', 'csr.pem', '-CA', certs.ca.certPath, '-CAkey', certs.ca.keyPath, '-CAcreateserial', '-days', '2', '-out', 'cert.pem')
  t.regex(openssl('x509', '-in', 'cert.pem', '-noout', '-text').toString(), /Version: 1 \(0x0\)/)
  const v1 = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') }
  rmSync(dir, { recursive: true, force: true })

  // As a server certificate.
  const srv = await startKtlsServer(v1, (s) => s.end('v1'))
  for (const ca of [certs.ca.cert, certs.server.cert]) {
    const ours = await ktlsConnect({ port: srv.port, ca, rejectUnauthorized: false })
    const reference = await nodeConnect({ port: srv.port, ca, rejectUnauthorized: false })
    t.is(ours.authorized, reference.authorized)
    t.is(ours.authorized, ca === certs.ca.cert)
    t.is(ours.authorizationError, reference.authorizationError?.code ?? reference.authorizationError)
    ours.destroy()
    reference.destroy()
  }
  await srv.close()

  // As a client certificate.
  for (const ca of [certs.ca.cert, certs.server.cert]) {
    const outcomes = []
    for (const lib of [ktls, tls]) {
      const server = lib.createServer({ key: certs.server.key, cert: certs.server.cert, requestCert: true, rejectUnauthorized: false, ca })
      const seen = new Promise((resolve) => server.once('secureConnection', (s) => resolve([s.authorized, s.authorizationError])))
      const port = await listen(server)
      const c = track(tls.connect({ port, host: HOST, servername: 'localhost', ca: certs.ca.cert, ...v1 }))
      c.on('error', () => {})
      outcomes.push(await seen)
      c.destroy()
      await closeServer(server)
    }
    t.deepEqual(outcomes[0], outcomes[1])
    t.is(outcomes[0][0], ca === certs.ca.cert)
  }
})

test('a key that does not match its certificate is refused at once, as node:tls does', (t) => {
  // Two P-256 keys: OpenSSL compares keys of the same type ("key values mismatch").
  const node = t.throws(() => tls.createServer({ key: certs.selfSigned.key, cert: certs.server.cert }))
  const err = t.throws(() => ktls.createServer({ key: certs.selfSigned.key, cert: certs.server.cert }))
  t.is(err.code, node.code)
  t.is(err.code, 'ERR_OSSL_X509_KEY_VALUES_MISMATCH')
  t.is(err.name, 'Error')
})

test('bad arguments throw what node:tls throws: TypeError or RangeError, with the same code', (t) => {
  const cases = [
    () => ({ minVersion: 'TLSv9' }),
    () => ({ handshakeTimeout: 'soon' }),
  ]
  for (const options of cases) {
    const theirs = t.throws(() => tls.createServer(options()))
    const ours = t.throws(() => ktls.createServer(options()))
    t.is(ours.constructor, theirs.constructor)
    t.is(ours.code, theirs.code)
  }
  // createSecureContext()'s own checks, word for word.
  const contextCases = [
    { ciphers: 1 },
    { key: 'dummykey', passphrase: 1 },
    { ecdhCurve: 1 },
    { sigalgs: 1 },
    { sigalgs: '' },
    { sessionTimeout: 'abcd' },
    { sessionTimeout: -1 },
    { ticketKeys: 'abcd' },
    { ticketKeys: Buffer.alloc(0) },
    { minVersion: 'fhqwhgads' },
    { maxVersion: 'fhqwhgads' },
  ]
  for (const options of contextCases) {
    const theirs = t.throws(() => tls.createSecureContext(options))
    const ours = t.throws(() => ktls.createSecureContext(options))
    t.is(ours.constructor, theirs.constructor, JSON.stringify(options))
    t.is(ours.code, theirs.code, JSON.stringify(options))
    if (!options.minVersion && !options.maxVersion) t.is(ours.message, theirs.message)
    const server = t.throws(() => ktls.createServer(options))
    t.is(server.code, theirs.code)
  }
  t.is(t.throws(() => ktls.createServer({ handshakeTimeout: 'abcd' })).message, t.throws(() => tls.createServer({ handshakeTimeout: 'abcd' })).message)
  // Not a stream at all.
  t.throws(() => new tls.TLSSocket(new EventEmitter()), { instanceOf: TypeError })
  t.throws(() => new ktls.KtlsSocket(new EventEmitter()), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => ktls.connect({ port: 1, handshakeTimeout: -1 }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
})

test('a write bigger than the high-water mark returns false and counts in bufferSize until it completes; undefined once destroyed, as node:tls', async (t) => {
  const srv = await startKtlsServer({}, (s) => s.resume())
  const node = tls.createServer({ key: certs.server.key, cert: certs.server.cert }, (s) => s.resume())
  const port = await listen(node)
  const results = []
  for (const sock of [await ktlsConnect({ port: srv.port }), await nodeConnect({ port })]) {
    const size = 1024 * 1024
    const done = new Promise((resolve) => sock.write(Buffer.alloc(size), resolve))
    results.push({ returned: sock.write(Buffer.alloc(1)), bufferSize: sock.bufferSize > 0 })
    await done
    results.push({ drained: sock.bufferSize })
    sock.destroy()
    results.push({ destroyed: sock.bufferSize })
  }
  t.deepEqual(results.slice(0, 3), results.slice(3))
  t.deepEqual(results[2], { destroyed: undefined })
  t.deepEqual(results[0], { returned: false, bufferSize: true })
  await closeServer(node)
  await srv.close()
})

test('new KtlsSocket() then connect(port, host, listener) connects the socket it wraps, as tls.TLSSocket', async (t) => {
  const srv = await startKtlsServer({}, (s) => s.end('hi'))
  const sock = track(new ktls.KtlsSocket(undefined, { servername: 'localhost', ca: certs.ca.cert }))
  const connected = new Promise((resolve) => sock.connect(srv.port, HOST, resolve))
  await connected
  await onceEvent(sock, 'secure', { timeout: 10000 })
  t.true(sock.authorized)
  const data = await new Promise((resolve) => sock.once('data', resolve))
  t.is(String(data), 'hi')
  t.throws(() => sock.connect(srv.port, HOST), { code: 'ERR_SOCKET_CONNECTION_IN_PROGRESS' })
  sock.destroy()
  await srv.close()
})

test('a write the handshake never let out fails with ECANCELED when the handshake fails', async (t) => {
  // A server that drops every connection at once: the handshake never ends.
  const server = net.createServer((c) => c.destroy())
  const port = await listen(server)
  const c = track(ktls.connect({ port, host: HOST, servername: 'localhost' }))
  const failed = onceEvent(c, 'error', { timeout: 10000 })
  const code = await new Promise((resolve) => c.write('hello', (err) => resolve(err?.code)))
  t.is(code, 'ECANCELED', 'as libuv cancels what is queued on a handle it closes')
  t.is((await failed).code, 'ECONNRESET')
  await closeServer(server)
})

test("with captureRejections, a rejecting async 'secureConnection' listener destroys that socket with the error, as tls.Server", async (t) => {
  const kaboom = new Error('kaboom')
  // As Node's own test: the process-wide switch, read when an emitter is made.
  events.captureRejections = true
  const server = ktls.createServer({ key: certs.server.key, cert: certs.server.cert })
  events.captureRejections = false
  const seen = new Promise((resolve) => {
    server.on('secureConnection', async (sock) => {
      sock.on('error', resolve)
      throw kaboom
    })
  })
  const port = await listen(server)
  const c = track(tls.connect({ port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
  c.on('error', () => {})
  t.is(await seen, kaboom)
  await new Promise((resolve) => c.once('close', resolve))
  await closeServer(server)
})

test('an IP address as servername warns once per process (DEP0123), as node:tls', async (t) => {
  const warnings = []
  const onWarning = (w) => warnings.push(w.code)
  process.on('warning', onWarning)
  for (let i = 0; i < 2; i++) {
    const c = track(ktls.connect({ port: 1, host: HOST, servername: '127.0.0.1' }))
    c.on('error', () => {})
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  process.off('warning', onWarning)
  t.deepEqual(warnings.filter((code) => code === 'DEP0123'), ['DEP0123'])
})

test('allowHalfOpen follows the socket given to the constructor, else the option, as tls.TLSSocket', (t) => {
  for (const Class of [tls.TLSSocket, ktls.KtlsSocket]) {
    t.is(new Class(new net.Socket({ allowHalfOpen: true }), { allowHalfOpen: false }).allowHalfOpen, true, Class.name)
    t.is(new Class(new net.Socket(), { allowHalfOpen: true }).allowHalfOpen, false, Class.name)
    const bare = new Class(undefined, { allowHalfOpen: true })
    t.is(bare.allowHalfOpen, true, Class.name)
    bare.destroy()
  }
})

test('key, cert and ca of the wrong type throw node:tls’s TypeError word for word; either half alone is accepted, as node:tls', (t) => {
  const key = certs.server.key
  const cert = certs.server.cert
  const bad = [
    { key: true, cert },
    { key: { pem: Buffer.from(key) }, cert },
    { key: [key, 1], cert },
    { key, cert: true },
    { key, cert: [cert, {}] },
    { key, cert, ca: [certs.ca.cert, 10n] },
    { key: true, cert: true },
  ]
  for (const options of bad) {
    const theirs = t.throws(() => tls.createServer(options))
    const ours = t.throws(() => ktls.createServer(options))
    t.true(ours instanceof TypeError)
    t.is(ours.code, theirs.code)
    t.is(ours.message, theirs.message)
  }
  for (const options of [{ key: [key, key] }, { cert: [cert, cert] }, { key: [{ pem: Buffer.from(key) }] }]) {
    t.notThrows(() => tls.createServer(options))
    t.notThrows(() => ktls.createServer(options))
  }
})

test('PEMs given as a DataView or an ArrayBuffer serve, as node:tls takes them', async (t) => {
  const view = (pem) => {
    const b = Buffer.from(pem)
    return new DataView(b.buffer, b.byteOffset, b.byteLength)
  }
  const srv = await startKtlsServer({ key: view(certs.server.key), cert: Uint8Array.from(Buffer.from(certs.server.cert)) }, (s) => s.end('ok'))
  const c = await ktlsConnect({ port: srv.port, ca: view(certs.ca.cert) })
  t.true(c.authorized)
  c.destroy()
  await srv.close()
})

test('setServername() and exportKeyingMaterial() refuse bad arguments with node:tls’s errors word for word', async (t) => {
  const srv = await startKtlsServer({}, (s) => s.resume())
  const node = tls.createServer({ key: certs.server.key, cert: certs.server.cert }, (s) => s.resume())
  const port = await listen(node)
  const ours = await ktlsConnect({ port: srv.port })
  const theirs = await nodeConnect({ port })
  const calls = [
    (s) => s.setServername(undefined),
    (s) => s.setServername(1),
    (s) => s.setServername({}),
    (s) => s.exportKeyingMaterial('length', 'label'),
    (s) => s.exportKeyingMaterial(10, null),
    (s) => s.exportKeyingMaterial(10, 'label', 'not a buffer'),
    (s) => s.exportKeyingMaterial(0, 'label'),
  ]
  for (const call of calls) {
    const expected = t.throws(() => call(theirs))
    const actual = t.throws(() => call(ours))
    t.like(actual, { name: expected.name, code: expected.code, message: expected.message })
  }
  ours.destroy()
  theirs.destroy()
  await closeServer(node)
  await srv.close()
})

test('errors before the handshake ends read as Node’s own: name Error, `Error [CODE]: message` in the stack', (t) => {
  const socket = new ktls.KtlsSocket(undefined, {})
  const err = t.throws(() => socket.exportKeyingMaterial(16, 'label'))
  t.is(err.code, 'ERR_TLS_INVALID_STATE')
  t.is(err.name, 'Error')
  t.true(err.stack.startsWith('Error [ERR_TLS_INVALID_STATE]: '))
  t.true(err instanceof ktls.KtlsError)
  socket.destroy()
})

test('getPeerX509Certificate() links issuerCertificate along the chain the peer sent, as node:tls', async (t) => {
  // The server sends its leaf and the CA; the client trusts nothing (rejectUnauthorized: false).
  const options = { key: certs.server.key, cert: certs.server.cert + certs.ca.cert }
  const srv = await startKtlsServer(options, (s) => s.resume())
  const node = tls.createServer(options, (s) => s.resume())
  const port = await listen(node)
  const chains = []
  for (const sock of [await ktlsConnect({ port: srv.port, rejectUnauthorized: false, ca: undefined }), await nodeConnect({ port, rejectUnauthorized: false, ca: undefined })]) {
    const chain = []
    for (let cert = sock.getPeerX509Certificate(); cert && chain.length < 4; cert = cert.issuerCertificate) {
      chain.push(cert.serialNumber)
      if (cert.issuerCertificate === cert) break
    }
    chains.push(chain)
    sock.destroy()
  }
  t.deepEqual(chains[0], chains[1])
  t.is(chains[0].length, 2)
  await closeServer(node)
  await srv.close()
})

test('a server’s pauseOnConnect and allowHalfOpen read as given; a paused socket still sees its peer end, as tls.Server', async (t) => {
  for (const lib of [tls, ktls]) {
    const plain = lib.createServer({ key: certs.server.key, cert: certs.server.cert })
    t.deepEqual([plain.pauseOnConnect, plain.allowHalfOpen], [false, false], 'defaults')
    const seen = []
    const server = lib.createServer({ key: certs.server.key, cert: certs.server.cert, pauseOnConnect: true, allowHalfOpen: true }, (s) => {
      seen.push({ paused: s.isPaused(), allowHalfOpen: s.allowHalfOpen })
      s.on('end', () => s.end())
    })
    t.deepEqual([server.pauseOnConnect, server.allowHalfOpen], [true, true], 'given')
    const port = await listen(server)
    const client = lib.connect({ host: HOST, port, rejectUnauthorized: false })
    await onceEvent(client, 'secureConnect', { timeout: 10000 })
    client.end()
    client.resume()
    await onceEvent(client, 'close', { timeout: 10000 })
    t.deepEqual(seen, [{ paused: true, allowHalfOpen: true }])
    await closeServer(server)
  }
})

test('a server socket made by hand whose handshake fails emits _tlsError and errors to its listeners, never an error nobody listened for, as tls.TLSSocket', async (t) => {
  for (const lib of [tls, { TLSSocket: ktls.KtlsSocket, createSecureContext: ktls.createSecureContext }]) {
    for (const listens of [false, true]) {
      const result = await new Promise((resolve) => {
        const server = net.createServer((raw) => {
          const s = new lib.TLSSocket(raw, { isServer: true, secureContext: lib.createSecureContext({ key: certs.server.key, cert: certs.server.cert }) })
          const seen = {}
          s.on('_tlsError', (err) => { seen.tlsError = err.code })
          if (listens) s.on('error', (err) => { seen.error = err.message })
          s.on('close', () => { server.close(); resolve(seen) })
        })
        server.listen(0, HOST, () => {
          const c = net.connect(server.address().port, HOST, () => c.write(Buffer.alloc(1024, 42)))
          c.on('error', () => {})
        })
      })
      t.is(result.tlsError, 'ERR_SSL_WRONG_VERSION_NUMBER')
      // node:tls's (OpenSSL's) words, which programs match on.
      if (listens) t.regex(result.error, /SSL routines:[^:]*:wrong version number/)
      else t.is(result.error, undefined)
    }
  }
})

test('a client answered with something that is not TLS fails with ERR_SSL_WRONG_VERSION_NUMBER, as node:tls', async (t) => {
  const server = net.createServer((s) => s.once('data', () => s.end('I was waiting for you, hello!')))
  const port = await listen(server)
  const codes = []
  for (const lib of [tls, ktls]) {
    const client = lib.connect({ host: HOST, port, rejectUnauthorized: false })
    codes.push((await onceEvent(client, 'error', { timeout: 10000 })).code)
  }
  t.deepEqual(codes, ['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_WRONG_VERSION_NUMBER'])
  await closeServer(server)
})

test('a server sent junk or plain HTTP reports ERR_SSL_WRONG_VERSION_NUMBER or ERR_SSL_HTTP_REQUEST, as a node:tls server', async (t) => {
  for (const lib of [tls, ktls]) {
    const server = lib.createServer({ key: certs.server.key, cert: certs.server.cert })
    const clientErrors = []
    server.on('tlsClientError', (err) => clientErrors.push(err.code))
    const port = await listen(server)
    for (const junk of [Buffer.alloc(1024, 42), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n']) {
      const c = net.connect(port, HOST, () => c.write(junk))
      c.on('error', () => {})
      c.resume()
      await onceEvent(c, 'close', { timeout: 10000 })
    }
    t.deepEqual(clientErrors, ['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_HTTP_REQUEST'], lib === tls ? 'node:tls' : 'ktls')
    await closeServer(server)
  }
})

test('OpenSSL engine options: bad types throw node:tls’s errors, an engine name ERR_CRYPTO_CUSTOM_ENGINE_NOT_SUPPORTED', (t) => {
  const badTypes = [
    { clientCertEngine: 0 },
    { privateKeyEngine: 0, privateKeyIdentifier: 'key' },
    { privateKeyEngine: 'engine', privateKeyIdentifier: 0 },
    { privateKeyIdentifier: 'key' },
  ]
  for (const options of badTypes) {
    const theirs = t.throws(() => tls.createSecureContext(options))
    const ours = t.throws(() => ktls.createSecureContext(options))
    t.is(ours.constructor, theirs.constructor)
    t.is(ours.code, theirs.code)
    t.is(ours.message, theirs.message)
  }
  for (const options of [{ clientCertEngine: 'pkcs11' }, { privateKeyEngine: 'pkcs11', privateKeyIdentifier: 'key' }]) {
    t.throws(() => ktls.createSecureContext(options), { code: 'ERR_CRYPTO_CUSTOM_ENGINE_NOT_SUPPORTED' })
  }
  // Absent engines are no engines.
  t.notThrows(() => ktls.createSecureContext({ clientCertEngine: null, privateKeyEngine: undefined }))
})

test.serial('tls.DEFAULT_MAX_VERSION and DEFAULT_MIN_VERSION apply where no version is given, as node:tls reads them', async (t) => {
  const saved = [tls.DEFAULT_MIN_VERSION, tls.DEFAULT_MAX_VERSION]
  try {
    tls.DEFAULT_MAX_VERSION = 'TLSv1.2'
    const srv = await startKtlsServer()
    const c = await ktlsConnect({ port: srv.port })
    t.is(c.getProtocol(), 'TLSv1.2')
    c.destroy()
    ;[tls.DEFAULT_MIN_VERSION, tls.DEFAULT_MAX_VERSION] = ['TLSv1.3', 'TLSv1.3']
    const strict = await startKtlsServer()
    const old = track(tls.connect({ port: strict.port, host: HOST, rejectUnauthorized: false, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }))
    const err = await onceEvent(old, 'error')
    t.regex(err.code, /ALERT_PROTOCOL_VERSION/)
    // Below TLS 1.2 (--tls-min-v1.0): what ktls has anyway, TLS 1.2 on.
    ;[tls.DEFAULT_MIN_VERSION, tls.DEFAULT_MAX_VERSION] = ['TLSv1', 'TLSv1.3']
    const lenient = await startKtlsServer()
    const ok = await ktlsConnect({ port: lenient.port, maxVersion: 'TLSv1.2' })
    t.is(ok.getProtocol(), 'TLSv1.2')
    ok.destroy()
  } finally {
    ;[tls.DEFAULT_MIN_VERSION, tls.DEFAULT_MAX_VERSION] = saved
  }
})

test('secureContext.context.addCACert() trusts one more CA for later connections, as node:tls', async (t) => {
  const srv = await startKtlsServer()
  const outcome = async (lib) => {
    const secureContext = lib.createSecureContext({})
    const attempt = () => new Promise((resolve) => {
      const c = track(lib.connect({ port: srv.port, host: HOST, servername: 'localhost', secureContext }))
      c.once('secureConnect', () => resolve(c.authorized))
      c.once('error', (err) => resolve(err.code))
    })
    const before = await attempt()
    secureContext.context.addCACert(certs.ca.cert)
    return [before, await attempt()]
  }
  const [ours, theirs] = [await outcome(ktls), await outcome(tls)]
  t.deepEqual(ours, theirs)
  t.is(ours[1], true)
})
