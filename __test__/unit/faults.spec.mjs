// Bad peers on the userspace path: garbage, truncation, silence, resets,
// tampered records.
import test from 'ava'
import net from 'node:net'
import { startProxy } from '../helpers/proxy.mjs'
import { KiB, delay, onceEvent } from '../helpers/stream.mjs'
import {
  startNodeServer,
  startKtlsServer,
  startRawServer,
  ktlsConnect,
  ktlsConnectError,
  nodeConnect,
  closed,
  exchange,
  endAndClose,
} from '../helpers/tls.mjs'
import { cleanupAll, track } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { faultsSuite } from '../helpers/suites/faults.mjs'

test.after.always(cleanupAll)

// Tampered records, alerts and resets on an established connection: shared
// with the kernel harness (__test__/kernel/faults.spec.mjs).
faultsSuite(tlsEnv('unit'))

function rawConnect(port) {
  const sock = track(net.connect(port, '127.0.0.1'))
  sock.on('error', () => {})
  sock.resume() // consume whatever the server answers (alerts) so EOF is seen
  return onceEvent(sock, 'connect').then(() => sock)
}

// A plausible start of a ClientHello record: handshake(22), TLS 1.0 legacy
// version, length 512, then a few bytes of a ClientHello header. Never completed.
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xaa, 0xbb])

async function serverStillWorks(t, srv) {
  const client = await nodeConnect({ port: srv.port })
  const s = await srv.nextSocket()
  const r = await exchange(client, s, 16 * KiB)
  t.is(r.bGot.sha256, r.aSent.sha256, 'server keeps serving after the bad client')
  await endAndClose(client)
}

test('server emits tlsClientError with ERR_SSL_HTTP_REQUEST, as node:tls, when a client sends plain HTTP instead of a ClientHello', async (t) => {
  const srv = await startKtlsServer()
  let secured = 0
  srv.server.on('secureConnection', () => secured++)
  const raw = await rawConnect(srv.port)
  const rawClosed = closed(raw, 10000)
  raw.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
  const { err, raw: rawSocket } = await srv.nextClientError()
  t.is(err.code, 'ERR_SSL_HTTP_REQUEST')
  t.is(typeof err.reason, 'string')
  t.true(err.reason.length > 0)
  t.truthy(rawSocket, 'tlsClientError passes the raw socket')
  await rawClosed // the server drops the connection
  t.is(secured, 0)
  await serverStillWorks(t, srv)
  await srv.close()
})

test('server reports a client that disconnects in the middle of its ClientHello', async (t) => {
  const srv = await startKtlsServer()
  const raw = await rawConnect(srv.port)
  raw.end(PARTIAL_CLIENT_HELLO)
  const { err } = await srv.nextClientError()
  t.true(['ECONNRESET', 'ERR_KTLS_HANDSHAKE'].includes(err.code), `code ${err.code}`)
  await serverStillWorks(t, srv)
  await srv.close()
})

test('client fails with ECONNRESET when the server disconnects in the middle of the handshake', async (t) => {
  const raw = await startRawServer((sock) => {
    sock.on('error', () => {})
    // Answer the ClientHello with half a ServerHello record, then FIN.
    sock.once('data', () => sock.end(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00])))
  })
  const { err, secure } = await ktlsConnectError({ port: raw.port })
  t.true(['ECONNRESET', 'ERR_KTLS_HANDSHAKE'].includes(err.code), `code ${err.code}`)
  t.false(secure)
  await raw.close()
})

test('server handshakeTimeout emits ERR_TLS_HANDSHAKE_TIMEOUT for a silent client', async (t) => {
  const srv = await startKtlsServer({ handshakeTimeout: 300 })
  const t0 = Date.now() // the server's timer starts at accept, i.e. after this
  const raw = await rawConnect(srv.port)
  const rawClosed = closed(raw, 10000)
  const { err } = await srv.nextClientError(10000)
  const elapsed = Date.now() - t0
  t.is(err.code, 'ERR_TLS_HANDSHAKE_TIMEOUT')
  t.true(elapsed >= 280, `fired after ${elapsed} ms`)
  t.true(elapsed < 5000, `fired after ${elapsed} ms`)
  await rawClosed
  await srv.close()
})

test('server handshakeTimeout also covers a client stalled mid-ClientHello', async (t) => {
  const srv = await startKtlsServer({ handshakeTimeout: 300 })
  const raw = await rawConnect(srv.port)
  raw.write(PARTIAL_CLIENT_HELLO)
  const { err } = await srv.nextClientError(10000)
  t.is(err.code, 'ERR_TLS_HANDSHAKE_TIMEOUT')
  raw.destroy()
  await srv.close()
})

test('client handshakeTimeout fails with ERR_TLS_HANDSHAKE_TIMEOUT when the server never answers', async (t) => {
  const held = []
  const raw = await startRawServer((sock) => {
    sock.on('error', () => {})
    sock.resume() // read the ClientHello, never answer
    held.push(sock)
  })
  const t0 = Date.now()
  const { err, secure } = await ktlsConnectError({ port: raw.port, handshakeTimeout: 300 }, 10000)
  const elapsed = Date.now() - t0
  t.is(err.code, 'ERR_TLS_HANDSHAKE_TIMEOUT')
  t.false(secure)
  t.true(elapsed >= 280, `fired after ${elapsed} ms`)
  t.true(elapsed < 5000, `fired after ${elapsed} ms`)
  held.forEach((s) => s.destroy())
  await raw.close()
})

test('handshakeTimeout does not fire after the handshake completed', async (t) => {
  const srv = await startNodeServer()
  const c = await ktlsConnect({ port: srv.port, handshakeTimeout: 1500 })
  const peer = await srv.nextPeer()
  const errors = []
  c.on('error', (e) => errors.push(e))
  await delay(2000) // well past the handshake timeout
  t.deepEqual(errors, [])
  t.false(c.destroyed)
  const r = await exchange(c, peer, 16 * KiB)
  t.is(r.bGot.sha256, r.aSent.sha256)
  await endAndClose(c)
  await srv.close()
})

test('server socket fails with ECONNRESET when the client resets an established connection', async (t) => {
  const srv = await startKtlsServer()
  const proxy = await startProxy({ targetPort: srv.port })
  const client = await nodeConnect({ port: proxy.port })
  client.on('error', () => {})
  const s = await srv.nextSocket()
  const r = await exchange(client, s, 64 * KiB)
  t.is(r.bGot.sha256, r.aSent.sha256)
  s.resume()
  const errored = onceEvent(s, 'error', { timeout: 10000 })
  proxy.resetServer()
  const err = await errored
  t.is(err.code, 'ECONNRESET')
  await closed(s)
  await proxy.close()
  await srv.close()
})
