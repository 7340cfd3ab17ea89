// A KtlsSocket is a net.Socket: Node's own machinery (the HTTP parser, http2,
// libuv's writes) runs on it, and it behaves as Node's sockets do. Shared by
// __test__/unit/node-socket.spec.mjs (userspace path) and the kernel harness
// (__test__/kernel/node-socket.spec.mjs, offloaded: libuv carries the data).
import net from 'node:net'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import http2 from 'node:http2'
import https from 'node:https'
import tls from 'node:tls'
import { ktls } from '../ktls.mjs'
import { getCerts } from '../certs.mjs'
import { closeServer, listen } from '../peers.mjs'
import { MiB, dataBuffer, hashStream, expectedSha256, onceEvent, sha256, withTimeout, writePayload } from '../stream.mjs'
import { startKtlsServer, startNodeServer, ktlsConnect, collectErrors, closed, HOST } from '../tls.mjs'
import { onCleanup, track } from '../cleanup.mjs'

const UNGUARDED = fileURLToPath(new URL('../unguarded-server.mjs', import.meta.url))

const H2_BODY = 64 * 1024

/** An http2 server fed by a ktls server's sockets (ALPN h2); each response is a body seeded by its path. */
async function startH2OverKtls() {
  const certs = getCerts()
  const tlsServer = ktls.createServer({ key: certs.server.key, cert: certs.server.cert, ALPNProtocols: ['h2'] })
  const h2 = http2.createServer()
  const serverSessions = []
  h2.on('session', (session) => serverSessions.push(session))
  h2.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200 })
    stream.end(dataBuffer(H2_BODY, { seed: headers[':path'] }))
  })
  const serverSockets = []
  tlsServer.on('secureConnection', (socket) => {
    serverSockets.push(socket)
    h2.emit('connection', socket)
  })
  const port = await listen(tlsServer)
  onCleanup(() => closeServer(tlsServer))
  return { port, ca: certs.ca.cert, serverSockets, serverSessions, close: () => closeServer(tlsServer) }
}

/** Ten concurrent requests on `session`, each body checked against the one its path seeds. */
async function fetchTen(t, session, prefix) {
  const bodies = await Promise.all(
    Array.from({ length: 10 }, async (_, i) => {
      const req = session.request({ ':path': `/${prefix}${i}` })
      req.end()
      return { i, hash: (await hashStream(req)).sha256 }
    }),
  )
  for (const { i, hash } of bodies) t.is(hash, sha256(dataBuffer(H2_BODY, { seed: `/${prefix}${i}` })))
}

export function nodeSocketSuite(env) {
  env.test(env.title('client and server sockets are net.Sockets (instanceof, readyState, address())'), async (t) => {
    const srv = await startKtlsServer()
    const c = await ktlsConnect({ port: srv.port })
    const s = await srv.nextSocket()
    for (const sock of [c, s]) {
      env.assertPath(t, sock)
      t.true(sock instanceof net.Socket)
      t.true(sock instanceof ktls.KtlsSocket)
      t.is(sock.readyState, 'open')
      t.is(sock.encrypted, true)
    }
    t.is(c.remotePort, srv.port)
    t.is(s.localPort, srv.port)
    t.deepEqual(c.address(), { address: HOST, family: 'IPv4', port: c.localPort })
    t.is(s.remotePort, c.localPort)
    c.destroy()
    await srv.close()
  })

  env.test(env.title('the HTTP server feeds its parser from the socket (libuv straight to C++ once offloaded)'), async (t) => {
    const certs = getCerts()
    const server = ktls.https.createServer({ key: certs.server.key, cert: certs.server.cert }, (req, res) => {
      res.end(`hello ${req.url}`)
    })
    const handles = []
    server.on('secureConnection', (socket) => handles.push(socket))
    const port = await listen(server)
    onCleanup(() => closeServer(server))
    const agent = new https.Agent({ keepAlive: true, ca: certs.ca.cert })
    for (const path of ['/a', '/b', '/c']) {
      const body = await get(`https://localhost:${port}${path}`, agent)
      t.is(body, `hello ${path}`)
    }
    t.is(handles.length, 1)
    const socket = handles[0]
    env.assertPath(t, socket)
    // Offloaded: Node's parser consumed libuv's handle. In userspace there is
    // no handle to consume: nothing in Node can read the ciphertext.
    if (env.kernel) t.true(socket._handle?._consumed === true)
    else t.is(socket._handle, null)
    agent.destroy()
    await closeServer(server)
  })

  env.test(env.title('a 64 MiB echo between client and server of this package arrives intact under backpressure'), async (t) => {
    const size = env.kernel ? 64 * MiB : 16 * MiB
    const srv = await startKtlsServer({}, (s) => s.pipe(s))
    const c = await ktlsConnect({ port: srv.port })
    const s = await srv.nextSocket()
    env.assertPath(t, c)
    env.assertPath(t, s)
    const errors = [c, s].map(collectErrors)
    // A slow reader at first, so both sides fill their buffers and pause.
    c.pause()
    const got = new Promise((resolve, reject) => {
      setTimeout(() => {
        hashStream(c).then(resolve, reject)
        c.resume()
      }, 200)
    })
    await writePayload(c, size, { seed: 'echo', end: true })
    const received = await withTimeout(got, env.ms(60000, 600000), 'echo')
    t.is(received.bytes, size)
    t.is(received.sha256, expectedSha256(size, { seed: 'echo' }))
    await closed(c)
    t.deepEqual(errors, [[], []])
    await srv.close()
  })

  env.test(env.title('http2 server and client run over sockets of this package (ALPN h2)'), async (t) => {
    const srv = await startH2OverKtls()
    const clientSockets = []
    const session = http2.connect(`https://localhost:${srv.port}`, {
      createConnection: () => {
        const socket = ktls.connect({ host: HOST, port: srv.port, servername: 'localhost', ca: srv.ca, ALPNProtocols: ['h2'] })
        clientSockets.push(socket)
        return socket
      },
    })
    session.on('error', () => {})
    await fetchTen(t, session, 's')
    t.is(clientSockets.length, 1)
    t.is(clientSockets[0].alpnProtocol, 'h2')
    env.assertPath(t, clientSockets[0])
    env.assertPath(t, srv.serverSockets[0])
    await new Promise((resolve) => session.close(resolve))
    await srv.close()
  })

  env.test(env.title('http2.connect given a socket whose handshake is done: both sessions consume the handle natively once offloaded'), async (t) => {
    const srv = await startH2OverKtls()
    const socket = ktls.connect({ host: HOST, port: srv.port, servername: 'localhost', ca: srv.ca, ALPNProtocols: ['h2'] })
    await onceEvent(socket, 'secureConnect')
    const session = http2.connect(`https://localhost:${srv.port}`, { createConnection: () => socket })
    session.on('error', () => {})
    await fetchTen(t, session, 'n')
    env.assertPath(t, socket)
    // http2 wraps a socket without a native handle in its JavaScript stream
    // adapter, and its session.socket then shows the adapter's prototype.
    const offloaded = (sock) => Boolean(sock.ktls?.tx && sock.ktls?.rx)
    t.is(srv.serverSessions.length, 1)
    t.is(session.socket instanceof ktls.KtlsSocket, offloaded(socket), 'client session')
    t.is(srv.serverSessions[0].socket instanceof ktls.KtlsSocket, offloaded(srv.serverSockets[0]), 'server session')
    await new Promise((resolve) => session.close(resolve))
    await srv.close()
  })

  env.test(env.title("onread: reads land in the given buffer and go to the callback, never to 'data'; false pauses until resume(), as net.Socket's"), async (t) => {
    const payload = dataBuffer(MiB)
    const srv = await startKtlsServer({}, (socket) => socket.end(payload))
    // One static buffer, then buffers from a function (each read its own).
    for (const kind of ['static', 'generated']) {
      const fixed = new Uint8Array(4096)
      const pool = [Buffer.alloc(3000), Buffer.alloc(3000)]
      let handedOut = 0
      const buffers = new Set()
      const pieces = []
      let received = 0
      let paused = false
      let pausedOnce = false
      let callsWhilePaused = 0
      const c = await ktlsConnect({
        port: srv.port,
        onread: {
          buffer: kind === 'static' ? fixed : () => pool[handedOut++ % 2],
          callback(nread, buf) {
            if (paused) callsWhilePaused++
            t.true(nread > 0 && nread <= buf.length)
            buffers.add(buf)
            pieces.push(Buffer.from(buf.subarray(0, nread)))
            received += nread
            if (pausedOnce || received < 65536) return true
            // Once, past 64 KiB: nothing more until resume().
            pausedOnce = paused = true
            setTimeout(() => {
              paused = false
              c.resume()
            }, 200)
            return false
          },
        },
      })
      env.assertPath(t, c)
      c.on('data', () => t.fail("'data' fired"))
      await onceEvent(c, 'end', { timeout: 30000 })
      t.is(sha256(Buffer.concat(pieces)), sha256(payload))
      t.true(pausedOnce)
      t.is(callsWhilePaused, 0)
      t.deepEqual([...buffers], kind === 'static' ? [fixed] : pool)
      c.destroy()
    }
    await srv.close()
  })

  env.test(env.title('end() sends close_notify both ways: each side sees a clean end'), async (t) => {
    // Our client ends first: node:tls sees 'end' (it needs close_notify for that).
    const srv = await startNodeServer({ allowHalfOpen: true })
    const c = await ktlsConnect({ port: srv.port, allowHalfOpen: true })
    const peer = await srv.nextPeer()
    env.assertPath(t, c)
    const peerEnded = onceEvent(peer, 'end', { timeout: 10000 })
    peer.resume()
    c.end('bye')
    await peerEnded
    // And the peer's close_notify ends our reading side.
    const ourEnd = onceEvent(c, 'end', { timeout: 10000 })
    c.resume()
    peer.end()
    await ourEnd
    await closed(c)
    await srv.close()
  })

  env.test(env.title("a close_notify that arrives while a large write is in flight ends reading, and the write still arrives intact"), async (t) => {
    const size = 16 * MiB
    const srv = await startNodeServer({ allowHalfOpen: true })
    const c = await ktlsConnect({ port: srv.port, allowHalfOpen: true })
    const peer = await srv.nextPeer()
    env.assertPath(t, c)
    const errors = collectErrors(c)
    peer.pause() // nothing is read: our write stays in flight
    const writing = writePayload(c, size, { seed: 'in flight', end: true })
    await withTimeout(waitFor(() => c.writableLength > 0), env.ms(10000), 'a write in flight')
    const ended = onceEvent(c, 'end', { timeout: env.ms(10000) })
    c.resume()
    peer.end() // close_notify while our write waits
    await ended
    const got = hashStream(peer)
    peer.resume()
    await writing
    const received = await withTimeout(got, env.ms(30000), 'the in-flight payload')
    t.is(received.bytes, size)
    t.is(received.sha256, expectedSha256(size, { seed: 'in flight' }))
    await closed(c)
    t.deepEqual(errors, [])
    await srv.close()
  })

  env.test(env.title('setTimeout fires on a server socket whose peer reads too slowly for its write to finish, as on a node:tls server'), async (t) => {
    const idleMs = env.ms(600, 1500)
    const start = { ktls: startKtlsServer, 'node:tls': startNodeServer }
    const firedAfter = {}
    for (const [name, startServer] of Object.entries(start)) {
      let wrote
      const timedOut = new Promise((resolve) => {
        void startServer({}, (s) => {
          if (name === 'ktls') env.assertPath(t, s)
          s.setTimeout(idleMs, () => {
            resolve(Date.now() - wrote)
            s.destroy()
          })
          // One write the peer takes many timeouts to read.
          wrote = Date.now()
          s.write(Buffer.alloc(64 * MiB))
        }).then((srv) => {
          const c = track(tls.connect({ host: HOST, port: srv.port, servername: 'localhost', ca: getCerts().ca.cert, highWaterMark: 256 * 1024 }))
          c.on('error', () => {})
          c.pause()
          // A steady trickle (at most 5 MB/s): the write creeps out in every
          // period, so libuv's write queue never stands still.
          const sip = setInterval(() => c.read(), 50)
          c.once('close', () => clearInterval(sip))
          onCleanup(() => clearInterval(sip))
        })
      })
      // A safety net, not the measure: a busy guest has held node:tls's own
      // 'timeout' past 8 periods, so only ktls's figure below is asserted.
      firedAfter[name] = await withTimeout(timedOut, idleMs * 30, `${name} server's 'timeout'`)
    }
    t.log(`'timeout' after the write began (idle ${idleMs} ms): ${JSON.stringify(firedAfter)}`)
    // node:tls puts a timeout off once for a write in progress, never more.
    t.true(firedAfter.ktls <= idleMs * 3 + env.ms(500, 3000), JSON.stringify(firedAfter))
  })

  env.test(env.title("the wrapped socket's own setTimeout starts over with the TLS socket's traffic and is cleared at its end, as node:tls's"), async (t) => {
    // Generous: other tests in this process may hold the loop for a while.
    const idleMs = env.ms(1500, 3000)
    const srv = await startNodeServer({}, (s) => {
      // Traffic well within every idle period, for three of them.
      const tick = setInterval(() => s.write('x'), idleMs / 10)
      s.on('close', () => clearInterval(tick))
      onCleanup(() => clearInterval(tick))
    })
    const raw = track(net.connect(srv.port, HOST))
    await onceEvent(raw, 'connect', { timeout: env.ms(5000) })
    let timedOut = false
    raw.setTimeout(idleMs, () => {
      timedOut = true
    })
    const c = track(ktls.connect({ socket: raw, servername: 'localhost', ca: getCerts().ca.cert }))
    await onceEvent(c, 'secureConnect', { timeout: env.ms(10000) })
    env.assertPath(t, c)
    c.resume()
    await new Promise((resolve) => setTimeout(resolve, idleMs * 3))
    t.false(timedOut)
    c.destroy()
    await closed(c)
    t.false(timedOut)
    await srv.close()
  })

  env.test(env.title('end() on a socket nobody reads closes once the peer ends too, as a net.Socket'), async (t) => {
    const srv = await startNodeServer()
    const c = await ktlsConnect({ port: srv.port })
    const peer = await srv.nextPeer()
    env.assertPath(t, c)
    const errors = collectErrors(c)
    c.end()
    await onceEvent(peer, 'close', { timeout: 10000 })
    await closed(c, 10000)
    t.deepEqual(errors, [])
    await srv.close()
  })

  env.test(env.title("destroying the TCP socket seen in 'connection' closes the TLS connection, and close() completes"), async (t) => {
    const certs = getCerts()
    const server = ktls.createServer({ key: certs.server.key, cert: certs.server.cert })
    const tracked = new Set()
    server.on('connection', (socket) => {
      tracked.add(socket)
      socket.on('close', () => tracked.delete(socket))
    })
    const secure = onceEvent(server, 'secureConnection')
    const port = await listen(server)
    const client = track(tls.connect({ port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
    client.on('error', () => {})
    const ours = await secure
    env.assertPath(t, ours)
    t.is(tracked.size, 1)
    const closing = closeServer(server)
    for (const socket of tracked) socket.destroy()
    await withTimeout(closing, 10000, 'server close')
    await closed(ours)
    t.true(ours.destroyed)
  })

  env.test(env.title("a server with no 'error' listeners survives clients that reset, leave and end, as a node:tls server does"), async (t) => {
    const certs = getCerts()
    const run = (kind) =>
      new Promise((resolve, reject) => {
        execFile(process.execPath, [UNGUARDED, kind], { env: { ...process.env, KEY: certs.server.key, CERT: certs.server.cert }, timeout: env.ms(30000, 120000) }, (err, stdout, stderr) =>
          err ? reject(new Error(`${kind} server died: ${stderr}`)) : resolve(JSON.parse(stdout)),
        )
      })
    t.like(await run('tls'), { survived: true, sockets: 60 })
    t.deepEqual(await run('ktls'), { survived: true, sockets: 60, offloaded: env.kernel ? 60 : 0 })
  })

  env.test(env.title('connect(port, options) keeps the options (rejectUnauthorized is honoured)'), async (t) => {
    const srv = await startKtlsServer()
    // No `ca`: the certificate is untrusted, so the default rejects...
    const rejected = ktls.connect(srv.port, { host: HOST, servername: 'localhost' })
    const err = await onceEvent(rejected, 'error', { timeout: 10000 })
    t.is(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
    // ...and rejectUnauthorized: false given in the options object connects.
    const accepted = ktls.connect(srv.port, HOST, { servername: 'localhost', rejectUnauthorized: false })
    await onceEvent(accepted, 'secureConnect', { timeout: 10000 })
    t.false(accepted.authorized)
    t.is(accepted.authorizationError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
    accepted.destroy()
    await srv.close()
  })
}

function get(url, agent) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve(body))
      })
      .on('error', reject)
  })
}

async function waitFor(predicate) {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 20))
}
