// The HTTP integration test bodies, shared by __test__/native/http-*.spec.mjs
// (userspace path, this host) and __test__/kernel/http-*.spec.mjs (kTLS, in the
// harness). Each export registers one spec file's tests for an httpEnv.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { createRequire } from 'node:module'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import diagnostics from 'node:diagnostics_channel'
import { getCerts } from './certs.mjs'
import { countFds, listFds, settleFds } from './fds.mjs'
import { CLI, HOST, curl, ktlsAgent, payload, request, serveModule, sha256, startApp, startNodeHttps } from './http.mjs'
import { ktls } from './ktls.mjs'
import { closeServer, listen } from './peers.mjs'
import { delay, expectedSha256, withTimeout } from './stream.mjs'

const require = createRequire(import.meta.url)
const MiB = 1024 * 1024

// ---------------------------------------------------------------- server

export function serverSuite(env) {
  const certs = getCerts()
  const caAgent = (o = {}) => new https.Agent({ ca: certs.ca.cert, ...o })

  env.test("node:http serves requests on ktls sockets with https.Server's events", async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const seen = { connection: [], secureConnection: [], request: [] }
    app.server.on('connection', (s) => seen.connection.push(s))
    app.server.on('secureConnection', (s) => seen.secureConnection.push(s))
    app.server.on('request', (req) => seen.request.push(req))
    const agent = caAgent({ keepAlive: true })
    for (let i = 0; i < 3; i++) {
      const { res, body } = await request(app.url(`/r${i}`), { agent })
      t.is(res.statusCode, 200)
      t.is(body.toString(), `ok /r${i}\n`)
    }
    t.is(seen.connection.length, 1, 'three keep-alive requests, one TCP connection')
    t.true(seen.connection[0] instanceof net.Socket, "'connection' gets the TCP socket")
    t.true(seen.secureConnection[0] instanceof ktls.KtlsSocket, "'secureConnection' gets the KtlsSocket")
    t.is(seen.request.length, 3)
    for (const req of seen.request) {
      t.is(req.socket, seen.secureConnection[0])
      t.true(req.socket.encrypted)
    }
    app.expectOffload(t)
    const closed = once(app.server, 'close')
    agent.destroy()
    app.server.close()
    await withTimeout(closed, env.ms(5000), "server 'close'")
    t.false(app.server.listening)
  })

  env.test('an Express app runs unchanged, and sees a secure request', async (t) => {
    t.timeout(env.ms(30000))
    const express = require('express')
    const expressApp = express()
    expressApp.use(express.json())
    expressApp.get('/hello/:name', (req, res) => {
      res.json({ hello: req.params.name, secure: req.secure, protocol: req.protocol, ktls: req.socket.ktls })
    })
    expressApp.post('/echo', (req, res) => res.status(201).json(req.body))
    const app = await startApp(env, { t, handler: expressApp })
    const agent = caAgent({ keepAlive: true })
    const hello = await request(app.url('/hello/ktls'), { agent })
    t.is(hello.res.statusCode, 200)
    const got = JSON.parse(hello.body)
    t.like(got, { hello: 'ktls', secure: true, protocol: 'https' })
    env.expectOffload(t, got.ktls, 'express request socket')
    const doc = { n: 42, list: ['a', 'b'] }
    const echo = await request(app.url('/echo'), { agent, method: 'POST', headers: { 'content-type': 'application/json' } }, JSON.stringify(doc))
    t.is(echo.res.statusCode, 201)
    t.deepEqual(JSON.parse(echo.body), doc)
    const missing = await request(app.url('/nope'), { agent })
    t.is(missing.res.statusCode, 404)
    agent.destroy()
    await app.close()
  })

  env.test('close() drops idle keep-alive connections at once and waits for a busy one', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const idleAgent = caAgent({ keepAlive: true })
    const idle = await request(app.url('/warm'), { agent: idleAgent })
    const idleSocket = idle.socket
    const busy = request(app.url('/slow/1000'), { agent: false, ca: certs.ca.cert })
    while (app.sockets.length < 2) await delay(10)
    const count = await new Promise((resolve, reject) => app.server.getConnections((e, n) => (e ? reject(e) : resolve(n))))
    t.is(count, 2, 'getConnections counts the ktls connections')
    let closedAt = 0
    const closed = new Promise((resolve) =>
      app.server.close((err) => {
        closedAt = Date.now()
        resolve(err)
      }),
    )
    t.false(app.server.listening)
    await withTimeout(once(idleSocket, 'close'), env.ms(2000), 'idle keep-alive socket closed by close()')
    t.is(closedAt, 0, "'close' waits for the busy connection")
    const { res, body } = await busy
    t.is(res.statusCode, 200)
    t.is(body.toString(), 'slow 1000\n')
    t.is(await withTimeout(closed, env.ms(5000), 'close callback'), undefined)
    idleAgent.destroy()
  })

  env.test('closeAllConnections() ends busy connections too', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const busy = request(app.url('/slow/5000'), { agent: false, ca: certs.ca.cert })
    while (app.sockets.length < 1) await delay(10)
    await delay(50)
    app.server.closeAllConnections()
    const err = await t.throwsAsync(busy)
    t.is(err.code, 'ECONNRESET')
    await app.close()
  })

  env.test('keepAliveTimeout closes an idle connection from the server side', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t, options: { keepAliveTimeout: 300 } })
    // A raw client: node's Agent would drop a socket whose Keep-Alive hint is this short.
    const client = tls.connect({ host: HOST, port: app.port, servername: 'localhost', ca: certs.ca.cert })
    client.on('error', () => {})
    await withTimeout(once(client, 'secureConnect'), env.ms(5000), 'secureConnect')
    const chunks = []
    let answeredAt = 0
    client.on('data', (d) => {
      chunks.push(d)
      answeredAt ||= Date.now()
    })
    client.write('GET /idle HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await withTimeout(once(client, 'close'), env.ms(5000), 'server-side close after keepAliveTimeout')
    const idle = Date.now() - answeredAt
    t.regex(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok \/idle\n$/)
    t.true(idle >= 250, `closed after ${idle} ms idle, not before the timeout`)
    await app.close()
  })

  env.test("handshake failures are 'tlsClientError' and 'clientError', as on https.Server", async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const tlsErr = once(app.server, 'tlsClientError')
    const clientErr = once(app.server, 'clientError')
    const plain = net.connect(app.port, HOST, () => plain.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
    plain.on('error', () => {})
    const [[e1, s1], [e2, s2]] = await withTimeout(Promise.all([tlsErr, clientErr]), env.ms(5000), 'client errors')
    t.is(e1, e2)
    t.is(s1, s2)
    t.is(e1.code, 'ERR_SSL_HTTP_REQUEST')
    plain.destroy()
    await app.close()
  })

  env.test("'upgrade' hands the KtlsSocket to the handler (e.g. WebSocket libraries)", async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    app.server.on('upgrade', (req, socket, head) => {
      t.true(socket instanceof ktls.KtlsSocket)
      socket.on('error', () => {}) // the handler owns the socket now, errors included
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
      if (head.length) socket.write(head)
      socket.pipe(socket)
    })
    const req = https.request(app.url('/'), { ca: certs.ca.cert, headers: { Connection: 'Upgrade', Upgrade: 'echo' } })
    req.end()
    const [res, socket] = await withTimeout(once(req, 'upgrade'), env.ms(5000), "client 'upgrade'")
    t.is(res.statusCode, 101)
    const data = payload(256 * 1024, 'upgrade')
    const chunks = []
    let got = 0
    const echoed = new Promise((resolve) =>
      socket.on('data', (d) => {
        chunks.push(d)
        got += d.length
        if (got >= data.length) resolve()
      }),
    )
    socket.write(data)
    await withTimeout(echoed, env.ms(10000), 'echo through the upgraded connection')
    t.is(sha256(Buffer.concat(chunks)), sha256(data))
    socket.destroy()
    await app.close()
  })

  env.test('a `Connection: close` answer closes the server side without waiting for the client (destroySoon)', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const client = tls.connect({ host: HOST, port: app.port, servername: 'localhost', ca: certs.ca.cert, allowHalfOpen: true })
    client.on('error', () => {})
    client.on('end', () => {}) // keeps its own side open, as a slow or hostile client may
    await withTimeout(once(client, 'secureConnect'), env.ms(5000), 'secureConnect')
    client.resume()
    client.write('GET /last HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    while (app.sockets.length < 1) await delay(10)
    // net.Socket (and so https.Server) destroys its side once the answer is written.
    const socket = app.sockets[0]
    if (!socket.closed) await withTimeout(once(socket, 'close'), env.ms(2000), 'server-side close after the last response')
    t.true(socket.destroyed)
    client.destroy()
  })

  env.test('bad options throw from createHttpsServer and undiciConnector, with codes', (t) => {
    t.is(t.throws(() => ktls.createHttpsServer({ key: 'not a key', cert: 'not a cert' })).code, 'ERR_INVALID_ARG_VALUE')
    t.is(t.throws(() => ktls.https.createServer({ key: certs.server.key, cert: certs.server.cert, ktls: 'always' })).code, 'ERR_INVALID_ARG_VALUE')
    t.is(t.throws(() => ktls.undiciConnector({ minVersion: 'TLSv1.0' })).code, 'ERR_TLS_INVALID_PROTOCOL_VERSION')
  })

  env.test('setSecureContext() serves new connections the new certificate', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const fingerprint = async () => {
      const s = tls.connect({ host: HOST, port: app.port, servername: 'localhost', ca: certs.ca.cert })
      await withTimeout(once(s, 'secureConnect'), env.ms(5000), 'secureConnect')
      const fp = s.getPeerCertificate().fingerprint256
      s.destroy()
      return fp
    }
    const before = await fingerprint()
    app.server.setSecureContext({ key: certs.rsa.key, cert: certs.rsa.cert })
    const after = await fingerprint()
    t.not(before, after)
    t.is(after, new (require('node:crypto').X509Certificate)(certs.rsa.cert).fingerprint256)
    await app.close()
  })
}

// ---------------------------------------------------------------- curl

export function curlSuite(env) {
  const write = '%{num_connects} %{http_code} %{http_version}\\n'

  env.test('curl GET over HTTP/1.1', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const { stdout } = await curl(app.port, ['-w', `\n${write}`, `https://localhost:${app.port}/hello`])
    t.is(stdout.toString(), `ok /hello\n\n1 200 1.1\n`)
    app.expectOffload(t)
    t.is(app.sockets[0].servername, 'localhost', 'curl sent SNI')
    await app.close()
  })

  env.test('curl POSTs 8 MiB and the server hashes exactly what was sent', async (t) => {
    t.timeout(env.ms(60000))
    const app = await startApp(env, { t })
    const dir = mkdtempSync(join(tmpdir(), 'ktls-curl-'))
    const file = join(dir, 'body.bin')
    const body = payload(8 * MiB, 'curl post')
    writeFileSync(file, body)
    const { stdout } = await curl(app.port, ['--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', `https://localhost:${app.port}/upload`], { timeout: env.ms(60000) })
    t.deepEqual(JSON.parse(stdout), { bytes: 8 * MiB, sha256: sha256(body) })
    rmSync(dir, { recursive: true, force: true })
    app.expectOffload(t)
    await app.close()
  })

  env.test('curl makes 1000 keep-alive requests on one connection', async (t) => {
    t.timeout(env.ms(60000))
    const app = await startApp(env, { t })
    const requests = []
    app.server.on('request', (req) => requests.push(req.url))
    const started = Date.now()
    const { stdout } = await curl(app.port, ['-w', write, `https://localhost:${app.port}/ka/[1-1000]`], { timeout: env.ms(120000) })
    t.log(`1000 requests in ${Date.now() - started} ms`)
    const lines = stdout.toString().trim().split('\n')
    t.is(lines.length, 2000)
    let connects = 0
    for (let i = 0; i < 1000; i++) {
      t.is(lines[2 * i], `ok /ka/${i + 1}`)
      const [n, code, version] = lines[2 * i + 1].split(' ')
      connects += Number(n)
      if (code !== '200' || version !== '1.1') t.fail(`request ${i + 1}: ${lines[2 * i + 1]}`)
    }
    t.is(connects, 1, 'curl connected once')
    t.is(app.connections, 1, 'the server accepted one connection')
    t.is(requests.length, 1000)
    app.expectOffload(t)
    await app.close()
  })

  env.test('curl reads a chunked response', async (t) => {
    t.timeout(env.ms(60000))
    const app = await startApp(env, { t })
    const size = 4 * MiB + 12345
    const { stdout } = await curl(app.port, ['-D', '-', `https://localhost:${app.port}/chunked/${size}`], { timeout: env.ms(60000) })
    const split = stdout.indexOf('\r\n\r\n')
    const head = stdout.subarray(0, split).toString()
    t.regex(head, /^HTTP\/1\.1 200/)
    t.regex(head, /\r\ntransfer-encoding: chunked(\r\n|$)/i)
    t.notRegex(head, /content-length/i)
    const body = stdout.subarray(split + 4)
    t.is(body.length, size)
    t.is(sha256(body), expectedSha256(size, { seed: 'chunked' }))
    app.expectOffload(t)
    await app.close()
  })

  for (const suite of env.suites) {
    env.test(`curl --tlsv1.3 --tls13-ciphers ${suite}`, async (t) => {
      t.timeout(env.ms(30000))
      const app = await startApp(env, { t })
      const { stdout } = await curl(app.port, ['--tlsv1.3', '--tls13-ciphers', suite, `https://localhost:${app.port}/${suite}`])
      t.is(stdout.toString(), `ok /${suite}\n`)
      t.is(app.sockets[0].ktls.cipher, suite)
      t.is(app.sockets[0].getProtocol(), 'TLSv1.3')
      app.expectOffload(t)
      await app.close()
    })
  }

  env.test('curl --tls-max 1.2 (ECDHE-ECDSA-AES128-GCM-SHA256)', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const { stdout } = await curl(app.port, ['--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256', `https://localhost:${app.port}/tls12`])
    t.is(stdout.toString(), 'ok /tls12\n')
    t.is(app.sockets[0].getProtocol(), 'TLSv1.2')
    app.expectOffload(t)
    await app.close()
  })
}

// ---------------------------------------------------------------- https.Agent

export function agentSuite(env) {
  const certs = getCerts()

  const pooledRequests = async (t, url, agent, n) => {
    const conns = new Set()
    for (let i = 0; i < n; i++) {
      const { res, body, req, socket } = await request(url(`/p${i}`), { agent })
      t.is(res.statusCode, 200)
      t.is(body.toString(), `ok /p${i}\n`)
      t.true(socket instanceof ktls.KtlsSocket)
      t.is(req.reusedSocket, i > 0, `request ${i} reusedSocket`)
      conns.add(res.headers['x-conn'])
    }
    return conns
  }

  env.test('https.request through ktls.Agent pools one connection to node:https', async (t) => {
    t.timeout(env.ms(30000))
    const server = await startNodeHttps(t)
    const agent = ktlsAgent()
    let clientSocket
    agent.on('free', (s) => (clientSocket = s))
    const conns = await pooledRequests(t, server.url, agent, 5)
    t.is(conns.size, 1)
    t.is(server.connections, 1)
    env.expectOffload(t, clientSocket.ktls, 'client socket to node:https')
    const body = payload(1 * MiB, 'agent post')
    const post = await request(server.url('/post'), { agent, method: 'POST' }, body)
    t.deepEqual(JSON.parse(post.body), { bytes: body.length, sha256: sha256(body) })
    t.true(post.req.reusedSocket)
    agent.destroy()
    await server.close()
  })

  env.test('https.get through ktls.Agent pools one connection to the ktls server', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const agent = ktlsAgent()
    const conns = await pooledRequests(t, app.url, agent, 5)
    t.deepEqual([...conns], ['0'])
    t.is(app.connections, 1)
    const { res, socket } = await new Promise((resolve, reject) => {
      https.get(app.url('/get'), { agent }, (r) => {
        const s = r.socket
        r.resume()
        r.on('end', () => resolve({ res: r, socket: s }))
      }).on('error', reject)
    })
    t.is(res.headers['x-conn'], '0')
    env.expectOffload(t, socket.ktls, 'client socket')
    app.expectOffload(t)
    agent.destroy()
    await app.close()
  })

  env.test('maxSockets bounds the pool; queued requests take freed sockets', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const agent = ktlsAgent({ maxSockets: 2 })
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => request(app.url(`/q${i}`), { agent })))
    results.forEach(({ res, body }, i) => {
      t.is(res.statusCode, 200)
      t.is(body.toString(), `ok /q${i}\n`)
    })
    t.is(app.connections, 2)
    t.is(new Set(results.map((r) => r.res.headers['x-conn'])).size, 2)
    agent.destroy()
    await app.close()
  })

  env.test('a pooled socket the server closed is dropped; the next request reconnects', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const agent = ktlsAgent()
    const first = await request(app.url('/1'), { agent })
    const pooled = first.socket
    const closed = new Promise((resolve) => pooled.once('close', resolve))
    app.server.closeIdleConnections()
    await withTimeout(closed, env.ms(5000), 'pooled socket closed')
    t.true(pooled.destroyed)
    const second = await request(app.url('/2'), { agent })
    t.is(second.res.statusCode, 200)
    t.false(second.req.reusedSocket)
    t.is(second.res.headers['x-conn'], '1')
    agent.destroy()
    await app.close()
  })

  env.test('ktls.https.get and ktls.https.request default to ktls.https.globalAgent', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const got = await new Promise((resolve, reject) => {
      const req = ktls.https.get(app.url('/global'), { ca: certs.ca.cert }, (res) => {
        const socket = res.socket
        res.resume()
        res.on('end', () => resolve({ req, socket }))
      })
      req.on('error', reject)
    })
    t.is(got.req.agent, ktls.https.globalAgent)
    t.true(got.socket instanceof ktls.KtlsSocket)
    const again = await request(app.url('/again'), { ca: certs.ca.cert }, undefined, ktls.https)
    t.is(again.body.toString(), 'ok /again\n')
    t.true(again.req.reusedSocket, 'the global agent keeps connections alive')
    ktls.https.globalAgent.destroy()
    await app.close()
  })

  env.test("setTimeout(0, cb) removes cb, so pooled sockets do not pile up 'timeout' listeners", async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const agent = ktlsAgent()
    let socket
    for (let i = 0; i < 12; i++) socket = (await request(app.url(`/t${i}`), { agent, timeout: 5000 })).socket
    // node's own agent leaves one listener (its own) after any number of requests.
    t.true(socket.listenerCount('timeout') <= 1, `${socket.listenerCount('timeout')} 'timeout' listeners`)
    agent.destroy()
  })

  env.test("a client KtlsSocket emits 'connect', so req.setTimeout() before connecting arms", async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t, handler: () => {} }) // never answers
    const agent = ktlsAgent()
    const timedOut = new Promise((resolve) => {
      const req = https.get(app.url('/silent'), { agent })
      req.on('error', () => {})
      req.setTimeout(200, () => {
        resolve()
        req.destroy()
      })
    })
    await withTimeout(timedOut, env.ms(3000), "the request's 'timeout'")
    t.pass()
    agent.destroy()
  })

  env.test("verification errors reach the request with node's codes", async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const agent = new ktls.Agent({ keepAlive: true })
    const err = await t.throwsAsync(request(app.url('/'), { agent }))
    t.is(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
    agent.destroy()
    await app.close()
  })
}

// ---------------------------------------------------------------- undici

export function undiciSuite(env) {
  const certs = getCerts()
  const undici = require('undici')
  const connectedSockets = []
  diagnostics.subscribe('undici:client:connected', ({ socket }) => connectedSockets.push(socket))
  const dispatcher = (o = {}) => new undici.Agent({ connect: ktls.undiciConnector({ ca: certs.ca.cert }), ...o })

  env.test('undici.request runs over the ktls connector, one pooled connection', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const agent = dispatcher({ connections: 1 })
    for (let i = 0; i < 20; i++) {
      const { statusCode, headers, body } = await undici.request(app.url(`/u${i}`), { dispatcher: agent })
      t.is(statusCode, 200)
      t.is(await body.text(), `ok /u${i}\n`)
      t.is(headers['x-conn'], '0')
    }
    const data = payload(1 * MiB, 'undici post')
    const post = await undici.request(app.url('/post'), { dispatcher: agent, method: 'POST', body: data })
    t.deepEqual(await post.body.json(), { bytes: data.length, sha256: sha256(data) })
    t.is(app.connections, 1)
    const socket = connectedSockets.at(-1)
    t.true(socket instanceof ktls.KtlsSocket)
    env.expectOffload(t, socket.ktls, 'undici client socket')
    app.expectOffload(t)
    await agent.close()
    await app.close()
  })

  env.test('fetch runs over the ktls connector (GET, POST, streamed body)', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const agent = dispatcher()
    const get = await undici.fetch(app.url('/fetch'), { dispatcher: agent })
    t.is(get.status, 200)
    t.is(await get.text(), 'ok /fetch\n')
    const data = payload(512 * 1024, 'fetch post')
    const post = await undici.fetch(app.url('/fetch'), { dispatcher: agent, method: 'POST', body: data })
    t.deepEqual(await post.json(), { bytes: data.length, sha256: sha256(data) })
    const size = 2 * MiB + 7
    const chunked = await undici.fetch(app.url(`/chunked/${size}`), { dispatcher: agent })
    const body = Buffer.from(await chunked.arrayBuffer())
    t.is(sha256(body), expectedSha256(size, { seed: 'chunked' }))
    app.expectOffload(t)
    await agent.close()
    await app.close()
  })

  env.test('fetch to node:https over the ktls connector', async (t) => {
    t.timeout(env.ms(30000))
    const server = await startNodeHttps(t)
    const agent = dispatcher()
    const res = await undici.fetch(server.url('/node'), { dispatcher: agent })
    t.is(await res.text(), 'ok /node\n')
    const socket = connectedSockets.at(-1)
    t.true(socket instanceof ktls.KtlsSocket)
    env.expectOffload(t, socket.ktls, 'undici client socket to node:https')
    await agent.close()
    await server.close()
  })

  env.test('the connector serves http: origins with a plain socket', async (t) => {
    t.timeout(env.ms(30000))
    const server = http.createServer((req, res) => res.end(`plain ${req.url}`))
    const port = await listen(server, HOST)
    const agent = dispatcher()
    const res = await undici.fetch(`http://${HOST}:${port}/x`, { dispatcher: agent })
    t.is(await res.text(), 'plain /x')
    t.false(connectedSockets.at(-1) instanceof ktls.KtlsSocket)
    await agent.close()
    await closeServer(server)
  })

  env.test('a certificate error rejects the fetch with the cause', async (t) => {
    t.timeout(env.ms(30000))
    const app = await startApp(env, { t })
    const agent = new undici.Agent({ connect: ktls.undiciConnector() })
    const err = await t.throwsAsync(undici.fetch(app.url('/'), { dispatcher: agent }))
    t.is(err.cause?.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
    await agent.close()
    await app.close()
  })
}

// ---------------------------------------------------------------- load

export function loadSuite(env) {
  env.test('200 concurrent connections x 20 requests: every answer right', async (t) => {
    t.timeout(env.ms(120000))
    const CLIENTS = 200
    const REQUESTS = 20
    const app = await startApp(env, {
      handler: (req, res) => {
        const [, client, i] = req.url.split('/')
        req.socket.requests = (req.socket.requests ?? 0) + 1
        res.end(`${client}:${i}:${sha256(`${client}/${i}`)}`)
      },
    })
    const started = Date.now()
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      const agent = ktlsAgent({ maxSockets: 1 })
      let wrong = 0
      for (let i = 0; i < REQUESTS; i++) {
        const { res, body } = await request(app.url(`/${c}/${i}`), { agent })
        if (res.statusCode !== 200 || body.toString() !== `${c}:${i}:${sha256(`${c}/${i}`)}`) wrong++
      }
      agent.destroy()
      return wrong
    })
    const wrong = (await Promise.all(clients)).reduce((a, b) => a + b, 0)
    const ms = Date.now() - started
    t.log(`${CLIENTS * REQUESTS} requests on ${app.connections} connections in ${ms} ms`)
    t.is(wrong, 0)
    t.is(app.connections, CLIENTS)
    t.deepEqual(
      app.sockets.filter((s) => s.requests !== REQUESTS).map((s) => s.requests),
      [],
      'each connection served exactly 20 requests',
    )
    app.expectOffload(t)
    await app.close()
  })
}

// ---------------------------------------------------------------- bad input

export function badInputSuite(env) {
  const certs = getCerts()

  /** Resolves what `socket` received until it closed. */
  const received = (socket) =>
    new Promise((resolve) => {
      const chunks = []
      socket.on('data', (d) => chunks.push(d))
      socket.on('error', () => {})
      socket.on('close', () => resolve(Buffer.concat(chunks)))
    })

  const connected = (socket, event = 'connect') => withTimeout(once(socket, event), env.ms(5000), event)

  env.test('bad clients cost one log line each: good clients keep being served, no fd leaks', async (t) => {
    t.timeout(env.ms(120000))
    const lines = []
    const serving = await serveModule.serve({
      port: 0,
      host: HOST,
      key: certs.server.key,
      cert: certs.server.cert,
      log: (line) => lines.push(line),
      server: {
        handshakeTimeout: env.ms(1000),
        headersTimeout: env.ms(1000),
        requestTimeout: env.ms(2000),
        connectionsCheckingInterval: 100,
      },
    })
    t.teardown(() => serving.close())
    const { port } = serving.server.address()
    const url = (p) => `https://${HOST}:${port}${p}`
    const good = new https.Agent({ ca: certs.ca.cert, keepAlive: true })
    const warm = await request(url('/warm'), { agent: good })
    t.is(warm.res.statusCode, 200)
    good.destroy()
    await delay(100)
    const fdsBefore = countFds()
    const fdMapBefore = listFds()

    // Good traffic throughout: keep-alive requests and fresh connections.
    let stop = false
    let served = 0
    const goodAgent = new https.Agent({ ca: certs.ca.cert, keepAlive: true })
    const goodLoop = (async () => {
      while (!stop) {
        const fresh = served % 5 === 0
        const { res, body } = await request(url(`/good/${served}`), fresh ? { agent: false, ca: certs.ca.cert } : { agent: goodAgent })
        if (res.statusCode !== 200 || JSON.parse(body).cipher === undefined) throw new Error(`bad answer ${res.statusCode} ${body}`)
        served++
      }
    })()
    goodLoop.catch(() => {}) // awaited below; a failed test must not leave it unhandled
    t.teardown(() => {
      stop = true
    })

    const expectations = [] // { port, kind, pattern }
    const watch = (socket, kind, pattern) => {
      socket.once('connect', () => expectations.push({ port: socket.localPort, kind, pattern }))
    }

    // 1. plaintext HTTP to the TLS port: a TLS alert, then the close.
    const plain = Array.from({ length: 5 }, () => {
      const s = net.connect(port, HOST, () => s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'))
      watch(s, 'plaintext', /ERR_SSL_HTTP_REQUEST/)
      return received(s)
    })
    // 2. a request that stops mid-body, then the client vanishes.
    const aborted = Array.from({ length: 5 }, async () => {
      const s = tls.connect({ host: HOST, port, servername: 'localhost', ca: certs.ca.cert })
      watch(s, 'aborted', /ECONNRESET: POST \/upload aborted after \d+ body bytes/)
      await connected(s, 'secureConnect')
      s.write('POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n')
      s.write(payload(1000, 'partial'))
      await delay(200)
      s.destroy()
    })
    // 3. headers that never finish: 408 once headersTimeout passes.
    const stalled = Array.from({ length: 3 }, async () => {
      const s = tls.connect({ host: HOST, port, servername: 'localhost', ca: certs.ca.cert })
      watch(s, 'stalled', /ERR_HTTP_REQUEST_TIMEOUT/)
      const got = received(s)
      await connected(s, 'secureConnect')
      s.write('GET /never HTTP/1.1\r\nHost: localhost\r\n')
      return got
    })
    // 4. a handshake that never finishes: five bytes of a record header.
    const noHandshake = Array.from({ length: 3 }, () => {
      const s = net.connect(port, HOST, () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])))
      watch(s, 'no handshake', /ERR_TLS_HANDSHAKE_TIMEOUT/)
      return received(s)
    })
    // 5. many that connect and vanish, half with FIN, half with RST.
    const VANISH = 100
    const vanishPorts = []
    const vanished = Array.from({ length: VANISH }, (_, i) => {
      const s = net.connect(port, HOST)
      s.on('error', () => {})
      return connected(s).then(() => {
        vanishPorts.push(s.localPort)
        if (i % 2) s.resetAndDestroy()
        else s.destroy()
      })
    })

    const plainGot = await Promise.all(plain)
    for (const got of plainGot) t.is(got[0], 0x15, 'a TLS alert answers plaintext')
    await Promise.all(aborted)
    const stalledGot = await Promise.all(stalled)
    for (const got of stalledGot) t.regex(got.toString(), /^HTTP\/1\.1 408 /)
    await Promise.all(noHandshake)
    await Promise.all(vanished)

    // Every bad client logged exactly once.
    const errorLine = (l) => !/ tx=(kernel|rustls) /.test(l)
    const deadline = Date.now() + env.ms(5000)
    const expectedErrors = expectations.length + VANISH
    while (lines.filter(errorLine).length < expectedErrors && Date.now() < deadline) await delay(50)
    const errors = lines.filter(errorLine)
    for (const { port: p, kind, pattern } of expectations) {
      const mine = errors.filter((l) => l.includes(`:${p} `))
      t.is(mine.length, 1, `${kind} client :${p} logged once: ${JSON.stringify(mine)}`)
      if (mine[0]) t.regex(mine[0], pattern, kind)
    }
    const known = new Set(expectations.map((e) => `:${e.port} `))
    const rest = errors.filter((l) => ![...known].some((k) => l.includes(k)))
    t.is(rest.length, VANISH, `one line per vanished client: ${JSON.stringify(rest.slice(0, 5))}`)
    for (const p of vanishPorts) t.true(rest.filter((l) => l.includes(`:${p} `)).length <= 1)
    t.true(rest.every((l) => /ECONNRESET/.test(l)), 'vanished clients are ECONNRESET')
    t.true(lines.every((l) => !l.includes('\n')), 'one line means one line')

    // The good client never noticed.
    stop = true
    await goodLoop
    t.true(served > 0)
    t.log(`${served} good requests during the bad traffic; ${lines.length} log lines`)
    const after = await request(url('/after'), { agent: false, ca: certs.ca.cert })
    t.is(after.res.statusCode, 200)
    goodAgent.destroy()

    const fdsAfter = await settleFds(fdsBefore, { timeout: env.ms(5000) })
    if (fdsAfter > fdsBefore) t.log({ before: fdMapBefore, after: listFds() })
    t.is(fdsAfter, fdsBefore, 'no descriptor leaked')
    await serving.close()
  })
}

// ---------------------------------------------------------------- net.Server recipe

export function netRecipeSuite(env) {
  const certs = getCerts()

  env.test('a plain net.Server sends TLS to ktls by the first byte and plaintext to http', async (t) => {
    t.timeout(env.ms(30000))
    const secure = ktls.createHttpsServer({ key: certs.server.key, cert: certs.server.cert }, (req, res) => {
      res.end(JSON.stringify({ url: req.url, encrypted: req.socket.encrypted === true, ktls: req.socket.ktls }))
    })
    const plain = http.createServer((req, res) => {
      res.writeHead(308, { location: `https://localhost:${front.address().port}${req.url}` }).end()
    })
    // The recipe (docs/integration.md): read the first chunk, put it back, hand over.
    const front = net.createServer({ pauseOnConnect: true }, (socket) => {
      socket.once('data', (first) => {
        socket.pause()
        socket.unshift(first)
        if (first[0] === 0x16) {
          secure.emit('connection', socket) // a TLS handshake record: ktls takes the descriptor
        } else {
          plain.emit('connection', socket)
          socket.resume()
        }
      })
      socket.resume()
    })
    const port = await listen(front, HOST)
    const viaNode = await request(`https://${HOST}:${port}/node`, { ca: certs.ca.cert, agent: false })
    const got = JSON.parse(viaNode.body)
    t.like(got, { url: '/node', encrypted: true })
    env.expectOffload(t, got.ktls, 'handed-over connection')
    const agent = ktlsAgent()
    const viaKtls = await request(`https://${HOST}:${port}/ktls`, { agent })
    t.like(JSON.parse(viaKtls.body), { url: '/ktls', encrypted: true })
    env.expectOffload(t, viaKtls.socket.ktls, 'client side')
    const { stdout } = await curl(port, [`https://localhost:${port}/curl`])
    t.like(JSON.parse(stdout), { url: '/curl', encrypted: true })
    const redirect = await request(`http://${HOST}:${port}/plain`, { agent: false }, undefined, http)
    t.is(redirect.res.statusCode, 308)
    t.is(redirect.res.headers.location, `https://localhost:${port}/plain`)
    agent.destroy()
    await closeServer(front)
  })

  env.test('a net.Server on two ports hands the TLS port to ktls before reading a byte', async (t) => {
    t.timeout(env.ms(30000))
    const secure = ktls.createHttpsServer({ key: certs.server.key, cert: certs.server.cert }, (req, res) => res.end(`tls ${req.url}`))
    const plain = http.createServer((req, res) => res.end(`plain ${req.url}`))
    let tlsPort = 0
    const onConnection = (socket) => (socket.localPort === tlsPort ? secure : plain).emit('connection', socket)
    const a = net.createServer({ pauseOnConnect: true }, onConnection)
    const b = net.createServer(onConnection)
    tlsPort = await listen(a, HOST)
    const plainPort = await listen(b, HOST)
    const s = await request(`https://${HOST}:${tlsPort}/a`, { ca: certs.ca.cert, agent: false })
    t.is(s.body.toString(), 'tls /a')
    const p = await request(`http://${HOST}:${plainPort}/b`, { agent: false }, undefined, http)
    t.is(p.body.toString(), 'plain /b')
    await Promise.all([closeServer(a), closeServer(b)])
  })

  env.test('ktls.upgrade() on a socket whose first bytes were already read keeps those bytes', async (t) => {
    t.timeout(env.ms(30000))
    const server = net.createServer((socket) => {
      // Not paused: libuv reads the ClientHello into the net.Socket first.
      socket.once('data', async (first) => {
        socket.pause()
        socket.unshift(first)
        const secure = await ktls.upgrade(socket, { isServer: true, key: certs.server.key, cert: certs.server.cert })
        secure.on('error', () => {}) // pipe() does not forward errors
        secure.pipe(secure) // echo
      })
    })
    const port = await listen(server, HOST)
    const client = ktls.connect({ host: HOST, port, servername: 'localhost', ca: certs.ca.cert })
    await withTimeout(once(client, 'secureConnect'), env.ms(5000), 'secureConnect')
    const data = payload(256 * 1024, 'recipe echo')
    const chunks = []
    let n = 0
    const done = new Promise((resolve) =>
      client.on('data', (d) => {
        chunks.push(d)
        n += d.length
        if (n >= data.length) resolve()
      }),
    )
    client.write(data)
    await withTimeout(done, env.ms(10000), 'echo')
    t.is(sha256(Buffer.concat(chunks)), sha256(data))
    env.expectOffload(t, client.ktls, 'client')
    client.destroy()
    await closeServer(server)
  })
}

// ---------------------------------------------------------------- cluster

export function clusterSuite(env) {
  const certs = getCerts()
  const primaryScript = require.resolve('./http-cluster-primary.mjs')

  const startCluster = async (t, policy) => {
    const child = spawn(process.execPath, [primaryScript], {
      env: { ...process.env, NODE_CLUSTER_SCHED_POLICY: policy, KTLS_TEST_KEY: certs.server.keyPath, KTLS_TEST_CERT: certs.server.certPath },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    t.teardown(() => child.kill('SIGKILL'))
    child.stdout.setEncoding('utf8')
    let out = ''
    const ready = new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d
        const line = out.split('\n').find((l) => l.startsWith('{'))
        if (line) resolve(JSON.parse(line))
      })
      child.once('exit', (code) => reject(new Error(`cluster primary exited (${code}): ${out}`)))
    })
    const info = await withTimeout(ready, env.ms(20000), 'cluster listening')
    return {
      ...info,
      /** SIGTERM to the primary, which stops its workers; resolves its exit code. */
      async stop() {
        const exited = once(child, 'exit')
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), env.ms(5000))
        const [code] = await exited
        clearTimeout(timer)
        return code
      },
    }
  }

  for (const policy of ['rr', 'none']) {
    env.test(`two cluster workers share one ktls HTTPS port and resume each other's sessions (NODE_CLUSTER_SCHED_POLICY=${policy})`, async (t) => {
      t.timeout(env.ms(60000))
      const cluster = await startCluster(t, policy)
      t.is(cluster.workers.length, 2)
      const agent = ktlsAgent({ keepAlive: false })
      const answers = []
      const resumed = []
      for (let i = 0; i < 12; i++) {
        const { res, body } = await request(`https://${HOST}:${cluster.port}/c${i}`, { agent })
        t.is(res.statusCode, 200)
        const got = JSON.parse(body)
        t.is(got.url, `/c${i}`)
        t.true(cluster.workers.includes(got.pid), `answered by a worker (${got.pid})`)
        env.expectOffload(t, got.ktls, `worker ${got.pid}`)
        answers.push(got.pid)
        resumed.push(got.resumed)
      }
      // No ticketKeys given: cluster hands every worker the first one's (node:tls's
      // _getServerData/_setServerData), so a ticket from one resumes at the other.
      t.deepEqual(resumed, [false, ...Array(11).fill(true)], 'every connection after the first resumed')
      const answered = new Set(answers)
      t.log(`policy ${policy}: answers per worker ${JSON.stringify(cluster.workers.map((p) => answers.filter((a) => a === p).length))}`)
      if (policy === 'rr') t.is(answered.size, 2, 'round-robin spreads connections over both workers')
      agent.destroy()
      t.is(await cluster.stop(), 0, 'the primary and its workers shut down cleanly')
    })
  }
}

// ---------------------------------------------------------------- CLI

export function cliSuite(env) {
  const certs = getCerts()

  const run = (args, options = {}) => spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options })

  const output = async (child) => {
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const [code] = await once(child, 'exit')
    return { code, stdout, stderr }
  }

  /** Starts `ktls serve`, resolves { child, url, certPath, lines, waitFor(re), stop() }. */
  const startServe = async (t, args, envVars = {}) => {
    const child = run(['serve', '--port', '0', '--host', HOST, ...args], { env: { ...process.env, ...envVars } })
    t.teardown(() => child.kill('SIGKILL'))
    const lines = []
    let buffer = ''
    const waiters = []
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d) => {
      buffer += d
      let nl
      while ((nl = buffer.indexOf('\n')) >= 0) {
        lines.push(buffer.slice(0, nl))
        buffer = buffer.slice(nl + 1)
        for (const w of [...waiters]) w()
      }
    })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const waitFor = (re) =>
      withTimeout(
        new Promise((resolve, reject) => {
          const check = () => {
            const hit = lines.find((l) => re.test(l))
            if (hit) resolve(hit)
            else if (child.exitCode !== null) reject(new Error(`ktls serve exited ${child.exitCode}: ${stderr}`))
          }
          waiters.push(check)
          child.once('exit', check)
          check()
        }),
        env.ms(15000),
        `ktls serve output ${re}`,
      )
    const url = (await waitFor(/^serving /)).slice('serving '.length)
    const certPath = args.includes('--cert') ? undefined : (await waitFor(/^certificate /)).split(' ')[1]
    const stop = async () => {
      child.kill('SIGTERM')
      const [code] = await once(child, 'exit')
      return code
    }
    return { child, url, certPath, lines, waitFor, stop }
  }

  env.test('`ktls probe` reports the kernel, TCP_ULP "tls" and the ciphers', async (t) => {
    t.timeout(env.ms(15000))
    const { code, stdout } = await output(run(['probe']))
    t.is(code, 0)
    t.true(stdout.split('\n').includes(`kernel            ${ktls.capabilities().kernel}`), stdout)
    if (env.caps.ulp) {
      t.regex(stdout, /^TCP_ULP "tls"\s+available$/m)
      for (const suite of env.suites) t.regex(stdout, new RegExp(`^  ${suite}\\s+offloaded$`, 'm'))
    } else {
      t.regex(stdout, /^TCP_ULP "tls"\s+not available: /m)
      t.regex(stdout, /modprobe tls/)
    }
    const json = JSON.parse((await output(run(['probe', '--json']))).stdout)
    t.deepEqual(json, JSON.parse(JSON.stringify(ktls.capabilities())))
  })

  env.test('`ktls serve` makes its certificate at first start, prints the URL and one line per connection', async (t) => {
    t.timeout(env.ms(60000))
    const home = mkdtempSync(join(tmpdir(), 'ktls-home-'))
    const vars = { HOME: home, XDG_CACHE_HOME: join(home, 'cache') }
    const first = await startServe(t, [], vars)
    t.regex(first.lines[0], /^kernel\s/, 'the capability report comes first')
    t.is(first.certPath, join(home, 'cache', 'ktls', 'default-cert.pem'))
    t.regex(first.url, new RegExp(`^https://${HOST.replace(/\./g, '\\.')}:\\d+/$`))
    const statusUrl = new URL('.well-known/ktls', first.url).href
    const { stdout } = await curl(new URL(first.url).port, ['--cacert', first.certPath, '-w', '\n%{ssl_verify_result}', statusUrl])
    const [json, verify] = stdout.toString().split('\n').filter(Boolean)
    t.is(verify, '0', 'curl verified the generated certificate')
    const status = JSON.parse(json)
    env.expectOffload(t, status, 'served connection')
    const line = await first.waitFor(/ tx=(kernel|rustls) rx=(kernel|rustls)/)
    t.regex(line, env.offloads(status.cipher) ? / tx=kernel rx=kernel$/ : / tx=rustls rx=rustls: \S/)
    t.is(await first.stop(), 0)
    const cert = readFileSync(first.certPath, 'utf8')

    const second = await startServe(t, [], vars)
    t.is(readFileSync(second.certPath, 'utf8'), cert, 'the second start reuses the certificate')
    await second.stop()
    rmSync(home, { recursive: true, force: true })
  })

  env.test('`ktls serve --cert --key` serves the given certificate', async (t) => {
    t.timeout(env.ms(30000))
    const served = await startServe(t, ['--cert', certs.server.certPath, '--key', certs.server.keyPath])
    t.is(served.certPath, undefined)
    const port = new URL(served.url).port
    const { stdout } = await curl(port, [`https://localhost:${port}/.well-known/ktls`])
    t.is(JSON.parse(stdout).protocol, 'TLSv1.3')
    await served.waitFor(/ tx=/)
    await served.stop()
  })

  env.test('`ktls serve <dir>` serves its files (sendfile where the kernel encrypts), a request with a body gets its sha256', async (t) => {
    t.timeout(env.ms(30000))
    const dir = mkdtempSync(join(tmpdir(), 'ktls-serve-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const body = payload(3 * MiB + 5, 'serve-dir')
    writeFileSync(join(dir, 'big.bin'), body)
    writeFileSync(join(dir, 'index.html'), '<h1>ktls</h1>\n')
    const served = await startServe(t, [dir, '--cert', certs.server.certPath, '--key', certs.server.keyPath, '--max-age', '60000', '--zero-copy'])
    t.is(await served.waitFor(/^files /), `files ${dir}`)
    const port = new URL(served.url).port
    const base = `https://localhost:${port}`
    const file = await curl(port, [`${base}/big.bin`])
    t.is(sha256(file.stdout), sha256(body))
    const index = await curl(port, ['-D', '-', `${base}/`])
    t.regex(index.stdout.toString(), /^content-type: text\/html; charset=utf-8\r$/im)
    t.regex(index.stdout.toString(), /<h1>ktls<\/h1>/)
    t.regex(index.stdout.toString(), /^cache-control: public, max-age=60\r$/im)
    const missing = await curl(port, ['-o', '/dev/null', '-w', '%{http_code}', `${base}/nothing-here`])
    t.is(missing.stdout.toString(), '404')
    const posted = await curl(port, ['--data-binary', `@${join(dir, 'big.bin')}`, `${base}/big.bin`])
    t.is(JSON.parse(posted.stdout).sha256, sha256(body))
    const line = await served.waitFor(/ tx=(kernel|rustls) rx=(kernel|rustls)/)
    t.regex(line, env.kernel ? / tx=kernel rx=kernel$/ : / tx=(kernel|rustls) rx=/)
    t.is(await served.stop(), 0)
  })

  env.test('`ktls serve` refuses a directory that is not one, and a --max-age that is not milliseconds, with status 2', async (t) => {
    t.timeout(env.ms(15000))
    const missing = await output(run(['serve', join(tmpdir(), 'ktls-no-such-dir')]))
    t.is(missing.code, 2)
    t.regex(missing.stderr, /not a directory/)
    const badAge = await output(run(['serve', '--max-age', 'soon']))
    t.is(badAge.code, 2)
    t.regex(badAge.stderr, /--max-age/)
  })

  env.test('`ktls serve` refuses bad options with status 2', async (t) => {
    t.timeout(env.ms(15000))
    const badPort = await output(run(['serve', '--port', 'http']))
    t.is(badPort.code, 2)
    t.regex(badPort.stderr, /--port/)
    const half = await output(run(['serve', '--cert', certs.server.certPath]))
    t.is(half.code, 2)
    t.regex(half.stderr, /--cert and --key/)
  })
}
