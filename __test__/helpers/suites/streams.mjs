// TLS over transports that are not a TCP descriptor of ours: a generic
// Duplex, and a TLS socket inside another (the outer one offloaded in the
// kernel suites). As `new tls.TLSSocket(duplex)`: rustls carries the records
// through the stream's own API. Shared by __test__/unit/streams.spec.mjs and
// __test__/kernel/streams.spec.mjs.
import net from 'node:net'
import tls from 'node:tls'
import { Duplex } from 'node:stream'
import { ktls } from '../ktls.mjs'
import { getCerts } from '../certs.mjs'
import { closeServer, listen } from '../peers.mjs'
import { onCleanup, track } from '../cleanup.mjs'
import { MiB, KiB, onceEvent, hashExactly, writePayload } from '../stream.mjs'
import { startKtlsServer, startNodeServer, ktlsConnect, exchange, collectErrors, closed, trackClose, HOST } from '../tls.mjs'

/**
 * A plain Duplex in front of a TCP socket: what a library hands over when
 * its transport is not a socket (a tunnel, a multiplexer).
 */
function duplexAround(tcp) {
  const duplex = new Duplex({
    read() {
      tcp.resume()
    },
    write(chunk, _encoding, callback) {
      tcp.write(chunk, callback)
    },
    final(callback) {
      tcp.end(callback)
    },
    destroy(err, callback) {
      tcp.destroy()
      callback(err)
    },
  })
  tcp.on('data', (chunk) => {
    if (!duplex.push(chunk)) tcp.pause()
  })
  tcp.on('end', () => duplex.push(null))
  tcp.on('error', (err) => duplex.destroy(err))
  return duplex
}

function duplexOverTcp(port) {
  const tcp = track(net.connect(port, HOST))
  return { duplex: duplexAround(tcp), tcp }
}

function secureOver(transport, options = {}) {
  const certs = getCerts()
  const sock = trackClose(track(new ktls.KtlsSocket(transport, { servername: 'localhost', ca: certs.ca.cert, ...options })))
  return sock
}

export function streamsSuite(env) {
  const certs = getCerts()

  env.test('a client over a generic Duplex talks to a node:tls server: 1 MiB each way intact, close_notify both ways', async (t) => {
    const peers = []
    const srv = await startNodeServer({}, (s) => peers.push(s))
    const { duplex } = duplexOverTcp(srv.port)
    const c = secureOver(duplex)
    const errors = collectErrors(c)
    await onceEvent(c, 'secureConnect', { timeout: env.ms(10000) })
    t.true(c.authorized)
    t.is(c.getProtocol(), 'TLSv1.3')
    t.false(c.ktls.tx)
    t.false(c.ktls.rx)
    t.regex(c.ktls.reason, /no TCP descriptor/)
    while (!peers.length) await new Promise((r) => setTimeout(r, 5))
    t.deepEqual(c.exportKeyingMaterial(32, 'EXPERIMENTAL-duplex'), peers[0].exportKeyingMaterial(32, 'EXPERIMENTAL-duplex'))
    const r = await exchange(c, peers[0], 1 * MiB)
    t.is(r.bGot.sha256, r.aSent.sha256)
    t.is(r.aGot.sha256, r.bSent.sha256)
    t.is(c.bytesWritten, 1 * MiB)
    t.is(c.bytesRead, 1 * MiB)
    const peerEnded = onceEvent(peers[0], 'end', { timeout: env.ms(10000) })
    c.end()
    await peerEnded // node:tls saw our close_notify (then the transport's end)
    peers[0].end()
    await closed(c)
    t.true(duplex.destroyed, 'the transport lives and dies with the TLS socket')
    t.deepEqual(errors, [])
    await srv.close()
  })

  env.test('a server over a generic Duplex serves a node:tls client', async (t) => {
    const server = net.createServer((tcp) => {
      track(tcp)
      const duplex = duplexAround(tcp)
      const s = secureOver(duplex, { isServer: true, key: certs.server.key, cert: certs.server.cert, ALPNProtocols: ['x'] })
      s.on('secure', () => s.pipe(s))
    })
    const port = await listen(server)
    onCleanup(() => closeServer(server))
    const c = track(tls.connect({ port, host: HOST, servername: 'localhost', ca: certs.ca.cert, ALPNProtocols: ['x'] }))
    await onceEvent(c, 'secureConnect')
    t.is(c.alpnProtocol, 'x')
    t.is(await echoed(c, 256 * KiB), true)
    c.destroy()
  })

  env.test(env.title('TLS inside TLS: a client secured over another ktls client socket reaches a server behind a TLS proxy'), async (t) => {
    // The inner server: node:tls, reached only through the proxy.
    const inner = await startNodeServer({}, (s) => s.pipe(s))
    // The proxy: a ktls server whose connections are piped to the inner server's TCP port.
    const proxy = await startKtlsServer({}, (s) => {
      const upstream = track(net.connect(inner.port, HOST))
      s.pipe(upstream).pipe(s)
      upstream.on('error', () => s.destroy())
      s.on('close', () => upstream.destroy())
    })
    const outer = await ktlsConnect({ port: proxy.port })
    env.assertPath(t, outer)
    const c = secureOver(outer)
    await onceEvent(c, 'secureConnect', { timeout: env.ms(10000) })
    t.true(c.authorized)
    t.is(await echoed(c, 512 * KiB), true)
    c.destroy()
    await closed(outer)
    await proxy.close()
    await inner.close()
  })

  env.test("ktls 'require' over a generic Duplex fails with ERR_KTLS_UNAVAILABLE", async (t) => {
    const srv = await startNodeServer()
    const { duplex } = duplexOverTcp(srv.port)
    const c = secureOver(duplex, { ktls: 'require' })
    const [err] = await onceEvent(c, 'error', { timeout: env.ms(10000) }).then((e) => [e])
    t.is(err.code, 'ERR_KTLS_UNAVAILABLE')
    await closed(c)
    t.true(duplex.destroyed)
    await srv.close()
  })

  env.test("over a generic Duplex, the peer's fatal alert fails the handshake with its code, and ours reaches the peer", async (t) => {
    // node:tls refuses our ALPN: its no_application_protocol alert is our error.
    const srv = await startNodeServer({ ALPNProtocols: ['a'] })
    const { duplex } = duplexOverTcp(srv.port)
    const c = secureOver(duplex, { ALPNProtocols: ['b'] })
    const err = await onceEvent(c, 'error', { timeout: env.ms(10000) })
    t.is(err.code, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL')
    await closed(c)
    t.false(c.authorized)
    await srv.close()

    // A ktls server over a Duplex refuses a TLS 1.2-only client: rustls's
    // protocol_version alert is what node:tls reports.
    const server = net.createServer((tcp) => {
      track(tcp)
      const s = secureOver(duplexAround(tcp), {
        isServer: true,
        key: certs.server.key,
        cert: certs.server.cert,
        minVersion: 'TLSv1.3',
      })
      s.on('error', () => {})
    })
    const port = await listen(server)
    onCleanup(() => closeServer(server))
    const client = track(tls.connect({ port, host: HOST, servername: 'localhost', ca: certs.ca.cert, maxVersion: 'TLSv1.2' }))
    const clientErr = await onceEvent(client, 'error', { timeout: env.ms(10000) })
    t.is(clientErr.code, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION')
  })

  env.test('a Duplex that throws on write (no _write) fails the TLS socket with that error, never the process', async (t) => {
    const duplex = new Duplex({ read() {} })
    const c = secureOver(duplex)
    const err = await onceEvent(c, 'error', { timeout: env.ms(10000) })
    t.is(err.code, 'ERR_METHOD_NOT_IMPLEMENTED')
    await closed(c)
    t.true(duplex.destroyed)
  })

  env.test('a ktls server over a Duplex with no certificate answers handshake_failure; its socket errors with node:tls’s code', async (t) => {
    let serverSocket
    const server = net.createServer((tcp) => {
      track(tcp)
      serverSocket = secureOver(duplexAround(tcp), { isServer: true })
      server.emit('secured', serverSocket)
    })
    const port = await listen(server)
    onCleanup(() => closeServer(server))
    const secured = onceEvent(server, 'secured', { timeout: env.ms(10000) })
    const client = track(tls.connect({ port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
    const clientErr = onceEvent(client, 'error', { timeout: env.ms(10000) })
    await secured
    const serverErr = await onceEvent(serverSocket, 'error', { timeout: env.ms(10000) })
    t.is(serverErr.code, 'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM')
    t.regex((await clientErr).code, /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/)
  })

  env.test("over a generic Duplex, a peer that writes and ends at once: every byte, then 'end'", async (t) => {
    const peers = []
    const srv = await startNodeServer({}, (s) => {
      peers.push(s)
      s.end('from-node')
    })
    const { duplex } = duplexOverTcp(srv.port)
    const c = secureOver(duplex)
    const got = []
    c.on('data', (d) => got.push(d))
    await onceEvent(c, 'end', { timeout: env.ms(10000) })
    t.is(Buffer.concat(got).toString(), 'from-node')
    c.end()
    await closed(c)
    await srv.close()
  })
}

/** Writes `size` bytes to an echoing peer and checks every byte comes back. */
async function echoed(sock, size) {
  const back = hashExactly(sock, size)
  const sent = await writePayload(sock, size, { seed: 'echo' })
  return (await back).sha256 === sent.sha256
}
