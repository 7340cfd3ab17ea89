// Connection lifecycle on the userspace path: half-close, close_notify vs
// destroy, timeouts, socket properties, upgrade paths, fd hygiene.
import test from 'ava'
import net from 'node:net'
import tls from 'node:tls'
import { ktls } from '../helpers/ktls.mjs'
import { getCerts } from '../helpers/certs.mjs'
import { countFds, settleFds, listFds } from '../helpers/fds.mjs'
import { KiB, MiB, delay, hashStream, onceEvent, withTimeout } from '../helpers/stream.mjs'
import { startNodeServer, startKtlsServer, startRawServer, ktlsConnect, nodeConnect, exchange, closed, endAndClose } from '../helpers/tls.mjs'
import { cleanupAll, track } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { halfCloseSuite, closeNotifySuite, unixSocketSuite } from '../helpers/suites/lifecycle.mjs'

test.after.always(cleanupAll)

const certs = getCerts()
const env = tlsEnv('unit')

// Shared with the kernel harness (__test__/kernel/close.spec.mjs, handshake-edges.spec.mjs).
halfCloseSuite(env)
closeNotifySuite(env)
unixSocketSuite(env)

test('without allowHalfOpen the client ends its side when the peer ends', async (t) => {
  const srv = await startNodeServer({ allowHalfOpen: true })
  const c = await ktlsConnect({ port: srv.port })
  const peer = await srv.nextPeer()
  const peerEnded = onceEvent(peer, 'end', { timeout: 10000 })
  const clientEnded = onceEvent(c, 'end', { timeout: 10000 })
  c.resume()
  peer.resume()
  peer.end()
  await clientEnded
  t.true(c.readableEnded)
  await peerEnded // our automatic end() reached the peer
  await closed(c)
  await srv.close()
})

test("receiving close_notify ends the readable side with 'end' before 'close'", async (t) => {
  const srv = await startNodeServer({ allowHalfOpen: true })
  const c = await ktlsConnect({ port: srv.port, allowHalfOpen: true })
  const peer = await srv.nextPeer()
  const order = []
  c.on('end', () => order.push('end'))
  c.on('close', () => order.push('close'))
  c.resume()
  peer.end()
  await onceEvent(c, 'end', { timeout: 10000 })
  t.false(c.destroyed, 'allowHalfOpen keeps the writable side open')
  const peerGot = hashStream(peer)
  c.write('still writable')
  c.end()
  const got = await peerGot
  t.is(got.bytes, 'still writable'.length)
  await closed(c)
  t.deepEqual(order, ['end', 'close'])
  await srv.close()
})

test("setTimeout() emits 'timeout' on an idle connection without closing it", async (t) => {
  const srv = await startNodeServer()
  const c = await ktlsConnect({ port: srv.port })
  const peer = await srv.nextPeer()
  const t0 = Date.now()
  t.is(c.setTimeout(150), c)
  await onceEvent(c, 'timeout', { timeout: 5000 })
  t.true(Date.now() - t0 >= 100)
  t.false(c.destroyed)
  c.setTimeout(0)
  const r = await exchange(c, peer, 16 * KiB)
  t.is(r.bGot.sha256, r.aSent.sha256)
  await endAndClose(c)
  await srv.close()
})

test('exposes addresses, encrypted and byte counters', async (t) => {
  const srv = await startNodeServer()
  const c = await ktlsConnect({ port: srv.port })
  const peer = await srv.nextPeer()
  t.true(c.encrypted)
  t.is(c.remoteAddress, '127.0.0.1')
  t.is(c.remotePort, srv.port)
  t.is(c.localAddress, '127.0.0.1')
  t.is(c.localPort, peer.remotePort)
  const r = await exchange(c, peer, 1 * MiB)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.true(c.bytesWritten >= 1 * MiB, `bytesWritten ${c.bytesWritten}`)
  t.true(c.bytesRead >= 1 * MiB, `bytesRead ${c.bytesRead}`)
  await endAndClose(c)
  await srv.close()
})

test('setNoDelay() and setKeepAlive() are chainable', async (t) => {
  const srv = await startNodeServer()
  const c = await ktlsConnect({ port: srv.port })
  t.is(c.setNoDelay(true), c)
  t.is(c.setKeepAlive(true, 1000), c)
  await endAndClose(c)
  await srv.close()
})

test('connect({ socket }) runs TLS over an already connected net.Socket', async (t) => {
  const srv = await startNodeServer()
  const raw = track(net.connect(srv.port, '127.0.0.1'))
  await onceEvent(raw, 'connect')
  const c = await ktlsConnect({ socket: raw, host: undefined, port: undefined })
  const peer = await srv.nextPeer()
  t.true(c.authorized)
  const r = await exchange(c, peer, 256 * KiB)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.is(r.aGot.sha256, r.bSent.sha256)
  await endAndClose(c)
  await srv.close()
})

test('upgrade() starts TLS on a socket that already exchanged plaintext (STARTTLS)', async (t) => {
  let serverTls
  const raw = await startRawServer((sock) => {
    sock.write('220 ready\r\n')
    sock.once('data', (d) => {
      if (d.toString() !== 'STARTTLS\r\n') return sock.destroy()
      sock.write('220 go ahead\r\n')
      serverTls = new tls.TLSSocket(sock, { isServer: true, key: certs.server.key, cert: certs.server.cert })
      serverTls.on('error', () => {})
    })
  })
  const sock = track(net.connect(raw.port, '127.0.0.1'))
  await onceEvent(sock, 'connect')
  const line = async () => (await onceEvent(sock, 'data', { timeout: 10000 })).toString()
  t.is(await line(), '220 ready\r\n')
  sock.write('STARTTLS\r\n')
  t.is(await line(), '220 go ahead\r\n')
  sock.pause()
  const c = await withTimeout(ktls.upgrade(sock, { servername: 'localhost', ca: certs.ca.cert }), 30000, 'upgrade()')
  t.true(c.encrypted)
  t.true(c.authorized)
  t.truthy(serverTls)
  const r = await exchange(c, serverTls, 256 * KiB)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.is(r.aGot.sha256, r.bSent.sha256)
  await endAndClose(c)
  await raw.close()
})

test("new KtlsSocket(socket, { isServer: true }) serves TLS on an accepted socket and emits 'secure'", async (t) => {
  const secured = []
  const raw = await startRawServer((sock) => {
    const s = new ktls.KtlsSocket(sock, { isServer: true, key: certs.server.key, cert: certs.server.cert })
    s.on('secure', () => secured.push(s))
    s.on('error', () => {})
  })
  const client = await nodeConnect({ port: raw.port })
  await withTimeout(
    (async () => {
      while (!secured.length) await delay(5)
    })(),
    30000,
    "KtlsSocket 'secure'",
  )
  const s = secured[0]
  t.true(s.encrypted)
  t.true(s instanceof ktls.KtlsSocket)
  const r = await exchange(client, s, 256 * KiB)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.is(r.aGot.sha256, r.bSent.sha256)
  await endAndClose(client)
  await raw.close()
})

test('taking over a socket without a descriptor fails with ERR_KTLS_NO_FD', async (t) => {
  const srv = await startNodeServer()
  const raw = track(net.connect(srv.port, '127.0.0.1'))
  await onceEvent(raw, 'connect')
  raw.destroy() // its descriptor is closed: nothing to take over
  const c = track(new ktls.KtlsSocket(raw, { servername: 'localhost', ca: certs.ca.cert }))
  const err = await onceEvent(c, 'error', { timeout: 10000 })
  t.is(err.code, 'ERR_KTLS_NO_FD')
  t.true(c.destroyed)
  await srv.close()
})

test('closed connections release their file descriptors', async (t) => {
  const srv = await startKtlsServer()
  const once = async (how) => {
    const c = await ktlsConnect({ port: srv.port })
    const s = await srv.nextSocket()
    s.on('error', () => {})
    c.on('error', () => {})
    const r = await exchange(c, s, 16 * KiB)
    t.is(r.bGot.sha256, r.aSent.sha256)
    const both = Promise.all([closed(c), closed(s)])
    if (how === 'end') c.end()
    else c.destroy()
    await both
  }
  await once('end') // warm-up: lazily created native resources are not leaks
  const baseline = countFds()
  for (let i = 0; i < 10; i++) await once('end')
  for (let i = 0; i < 10; i++) await once('destroy')
  const after = await settleFds(baseline)
  t.true(after <= baseline, `fds: baseline ${baseline}, after ${after}: ${JSON.stringify(listFds())}`)
  await srv.close()
})

// What keeps a process alive, as for Node's own sockets: a socket that read
// its peer's end and has nothing to send does not (libuv's handle would be
// inactive), whether the peer's end came as close_notify or not.
const IDLE_AFTER_END = `
  const lib = process.argv[1] === 'node:tls' ? require('node:tls') : require(process.argv[1])
  const c = lib.connect({ port: Number(process.argv[2]), host: '127.0.0.1', servername: 'localhost', ca: process.env.CA, allowHalfOpen: true })
  c.on('data', (d) => process.stdout.write(d))
  c.on('end', () => process.stdout.write(' end'))
  c.on('error', (e) => process.stdout.write(' error ' + e.code))
`

test('a client that read its peer’s end and has nothing left to do lets the process exit, as node:tls does', async (t) => {
  const srv = await startKtlsServer({ allowHalfOpen: true }, (s) => s.end('bye'))
  const { execFile } = await import('node:child_process')
  const { createRequire } = await import('node:module')
  const entry = createRequire(import.meta.url).resolve('../../dist/index.js')
  const run = (lib) =>
    new Promise((resolve) => {
      execFile(process.execPath, ['-e', IDLE_AFTER_END, lib, String(srv.port)], { env: { ...process.env, CA: certs.ca.cert }, timeout: 15000 }, (err, out) =>
        resolve({ out, killed: err?.killed === true, code: err?.code ?? 0 }),
      )
    })
  const [reference, ours] = await Promise.all([run('node:tls'), run(entry)])
  t.deepEqual(reference, { out: 'bye end', killed: false, code: 0 })
  t.deepEqual(ours, reference)
  await srv.close()
})
