// ktls.serveStatic(): files over HTTPS, bodies by sendfile(2) where the
// kernel encrypts (the kernel suites: counted at the binding, TlsTxSw), streamed
// on the userspace path (this host). Clients: curl and node:https.
// Shared by __test__/unit/static.spec.mjs and __test__/kernel/static.spec.mjs.
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ktls } from '../ktls.mjs'
import { getCerts } from '../certs.mjs'
import { countFds, settleFds } from '../fds.mjs'
import { countSendfile } from '../sendfile-count.mjs'
import { curl } from '../http.mjs'
import { statSnapshot, tlsStatDelta } from '../kernel.mjs'
import { closeServer, listen } from '../peers.mjs'
import { delay, withTimeout } from '../stream.mjs'
import { HOST } from '../tls.mjs'

const require = createRequire(import.meta.url)
const express = require('express')

const KiB = 1024
const MiB = 1024 * KiB
const SIZES = [0, 1, 16383, 16384, 16385, 3 * MiB]
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex')

/** A root with files of every size, an index, a dotfile, a subdirectory, and a secret beside it reached by a symlink. */
function makeSite(t) {
  const base = fs.mkdtempSync(join(tmpdir(), 'ktls-static-'))
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }))
  const root = join(base, 'root')
  fs.mkdirSync(join(root, 'sub'), { recursive: true })
  fs.mkdirSync(join(root, 'bare'))
  const files = {}
  for (const size of SIZES) {
    files[size] = randomBytes(size)
    fs.writeFileSync(join(root, `f${size}.bin`), files[size])
  }
  fs.writeFileSync(join(root, 'index.html'), '<h1>ktls</h1>\n')
  fs.writeFileSync(join(root, 'sub', 'index.html'), '<p>sub</p>\n')
  fs.writeFileSync(join(root, 'style.css'), 'body{}\n')
  fs.writeFileSync(join(root, '.env'), 'SECRET=dotfile\n')
  fs.writeFileSync(join(base, 'secret.txt'), 'SECRET=outside\n')
  fs.symlinkSync(join(base, 'secret.txt'), join(root, 'leak.txt'))
  fs.symlinkSync(base, join(root, 'up'))
  return { base, root, files }
}

/** ktls.createHttpsServer(handler) on 127.0.0.1:0; `sockets`: its secure connections. */
async function startHttps(t, handler) {
  const certs = getCerts()
  const server = ktls.createHttpsServer({ key: certs.server.key, cert: certs.server.cert }, handler)
  const sockets = []
  server.on('secureConnection', (socket) => sockets.push(socket))
  const port = await listen(server, HOST)
  t.teardown(() => closeServer(server))
  return { server, port, sockets, url: (path) => `https://localhost:${port}${path}` }
}

/** One request through node:https; resolves { res, body }. */
function get(url, options = {}) {
  const certs = getCerts()
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca: certs.ca.cert, lookup: localhost, ...options }, (res) => {
      const chunks = []
      res.on('data', (d) => chunks.push(d))
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** 'localhost' is 127.0.0.1, where the servers listen (the certificate names localhost). */
function localhost(_name, options, callback) {
  if (options?.all) return callback(null, [{ address: HOST, family: 4 }])
  callback(null, HOST, 4)
}

export function staticSuite(env) {
  const expectSendfile = (t, counter) => {
    if (env.kernel) t.true(counter.made > 0, 'bodies went out with sendfile(2)')
    else if (env.userspaceHost) t.is(counter.made, 0, 'the userspace path streams')
  }

  env.serial(env.title('serveStatic: files of 0 B to 3 MiB arrive whole over keep-alive, to node:https and curl, with Content-Length and no chunking'), async (t) => {
    t.timeout(env.ms(30000))
    const site = makeSite(t)
    const counter = countSendfile(t)
    const before = statSnapshot()
    const srv = await startHttps(t, ktls.serveStatic(site.root))
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    for (const size of SIZES) {
      const { res, body } = await get(srv.url(`/f${size}.bin`), { agent })
      t.is(res.statusCode, 200)
      t.is(sha256(body), sha256(site.files[size]), `${size} bytes`)
      t.is(res.headers['content-length'], String(size))
      t.is(res.headers['transfer-encoding'], undefined)
      t.is(res.headers['content-type'], 'application/octet-stream')
      t.is(res.headers['accept-ranges'], 'bytes')
      t.regex(res.headers.etag, /^W\/"/)
      t.is(res.headers['last-modified'], fs.statSync(join(site.root, `f${size}.bin`)).mtime.toUTCString())
    }
    t.is(srv.sockets.length, 1, 'one keep-alive connection carried every file')
    const urls = SIZES.map((size) => srv.url(`/f${size}.bin`))
    const { stdout } = await curl(srv.port, urls)
    t.is(sha256(stdout), sha256(Buffer.concat(SIZES.map((size) => site.files[size]))), 'curl, one connection for all')
    t.is(srv.sockets.length, 2)
    for (const socket of srv.sockets) env.assertPath(t, socket)
    expectSendfile(t, counter)
    if (env.kernel) t.true((tlsStatDelta(before, statSnapshot()).TlsTxSw ?? 0) >= 2, 'TlsTxSw counts both connections')
  })

  env.serial(env.title('serveStatic: Range first, middle, suffix and unsatisfiable (416); several ranges get the whole file'), async (t) => {
    t.timeout(env.ms(20000))
    const site = makeSite(t)
    const srv = await startHttps(t, ktls.serveStatic(site.root))
    const file = site.files[16385]
    const size = file.length
    const cases = [
      ['bytes=0-99', 0, 100],
      ['bytes=16000-16383', 16000, 384],
      ['bytes=-85', size - 85, 85],
      ['bytes=16380-', 16380, size - 16380],
    ]
    for (const [range, start, length] of cases) {
      const { res, body } = await get(srv.url('/f16385.bin'), { headers: { range } })
      t.is(res.statusCode, 206, range)
      t.is(res.headers['content-range'], `bytes ${start}-${start + length - 1}/${size}`, range)
      t.is(res.headers['content-length'], String(length), range)
      t.true(body.equals(file.subarray(start, start + length)), range)
    }
    const unsatisfiable = await get(srv.url('/f16385.bin'), { headers: { range: `bytes=${size}-` } })
    t.is(unsatisfiable.res.statusCode, 416)
    t.is(unsatisfiable.res.headers['content-range'], `bytes */${size}`)
    const several = await get(srv.url('/f16385.bin'), { headers: { range: 'bytes=0-1,100-101' } })
    t.is(several.res.statusCode, 200)
    t.is(sha256(several.body), sha256(file))
    const stale = await get(srv.url('/f16385.bin'), { headers: { range: 'bytes=0-1', 'if-range': '"not-this-one"' } })
    t.is(stale.res.statusCode, 200, 'If-Range for another version: the whole file')
    const { stdout } = await curl(srv.port, ['-r', '100-199', srv.url('/f3145728.bin')])
    t.true(stdout.equals(site.files[3 * MiB].subarray(100, 200)), 'curl -r')
  })

  env.serial(env.title('serveStatic: HEAD has the headers of GET and no body; 304 by ETag and by date'), async (t) => {
    t.timeout(env.ms(20000))
    const site = makeSite(t)
    const srv = await startHttps(t, ktls.serveStatic(site.root, { maxAge: 60_000 }))
    const full = await get(srv.url('/style.css'))
    t.is(full.res.headers['content-type'], 'text/css; charset=utf-8')
    t.is(full.res.headers['cache-control'], 'public, max-age=60')
    const head = await get(srv.url('/f16384.bin'), { method: 'HEAD' })
    t.is(head.res.statusCode, 200)
    t.is(head.res.headers['content-length'], '16384')
    t.is(head.body.length, 0)
    const byTag = await get(srv.url('/style.css'), { headers: { 'if-none-match': full.res.headers.etag } })
    t.is(byTag.res.statusCode, 304)
    t.is(byTag.body.length, 0)
    const byDate = await get(srv.url('/style.css'), { headers: { 'if-modified-since': full.res.headers['last-modified'] } })
    t.is(byDate.res.statusCode, 304)
    const older = new Date(Date.parse(full.res.headers['last-modified']) - 60_000).toUTCString()
    t.is((await get(srv.url('/style.css'), { headers: { 'if-modified-since': older } })).res.statusCode, 200)
    t.is((await get(srv.url('/style.css'), { headers: { 'if-none-match': '"other"' } })).res.statusCode, 200)
    const { stdout } = await curl(srv.port, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `If-None-Match: ${full.res.headers.etag}`, srv.url('/style.css')])
    t.is(stdout.toString(), '304', 'curl')
  })

  env.serial(env.title('serveStatic refuses traversal (.., %2e%2e%2f, NUL, a symlink out of root) and dotfiles; nothing secret in any answer'), async (t) => {
    t.timeout(env.ms(20000))
    const site = makeSite(t)
    const srv = await startHttps(t, ktls.serveStatic(site.root))
    const refused = {
      '/../secret.txt': 403,
      '/sub/../../secret.txt': 403,
      '/%2e%2e/secret.txt': 403,
      '/%2e%2e%2fsecret.txt': 403,
      '/sub%2f..%2f..%2fsecret.txt': 403,
      '/index.html%00.bin': 400,
      '/%00': 400,
      '/%E0%A4%A': 400,
      '/leak.txt': 404,
      '/up/secret.txt': 404,
      '/.env': 404,
      '/sub/../.env': 403,
    }
    for (const [path, status] of Object.entries(refused)) {
      const { res, body } = await get(srv.url('/'), { path }) // as sent: a URL would resolve the dots
      t.is(res.statusCode, status, path)
      t.false(body.toString().includes('SECRET'), path)
    }
    for (const path of ['/../secret.txt', '/%2e%2e%2fsecret.txt', '/leak.txt', '/.env']) {
      const { stdout } = await curl(srv.port, ['--path-as-is', '-s', '-w', '\n%{http_code}', srv.url(path)])
      t.false(stdout.toString().includes('SECRET'), `curl ${path}`)
      t.regex(stdout.toString(), /\n40[034]$/, `curl ${path}`)
    }
    const deny = await startHttps(t, ktls.serveStatic(site.root, { dotfiles: 'deny' }))
    t.is((await get(deny.url('/.env'))).res.statusCode, 403)
    const allow = await startHttps(t, ktls.serveStatic(site.root, { dotfiles: 'allow' }))
    t.is((await get(allow.url('/.env'))).body.toString(), 'SECRET=dotfile\n', 'dotfiles: allow serves them')
  })

  env.serial(env.title('serveStatic: index.html for directories, 301 to the slash, 404, 405 with Allow; bad options throw'), async (t) => {
    t.timeout(env.ms(20000))
    const site = makeSite(t)
    const srv = await startHttps(t, ktls.serveStatic(site.root))
    const index = await get(srv.url('/'))
    t.is(index.res.statusCode, 200)
    t.is(index.res.headers['content-type'], 'text/html; charset=utf-8')
    t.is(index.body.toString(), '<h1>ktls</h1>\n')
    t.is((await get(srv.url('/sub/'))).body.toString(), '<p>sub</p>\n')
    const redirect = await get(srv.url('/sub?x=1'))
    t.is(redirect.res.statusCode, 301)
    t.is(redirect.res.headers.location, '/sub/?x=1')
    t.is((await get(srv.url('/bare/'))).res.statusCode, 404, 'a directory without index.html')
    t.is((await get(srv.url('/missing.bin'))).res.statusCode, 404)
    t.throws(() => ktls.serveStatic(''), { code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => ktls.serveStatic(site.root, { maxAge: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => ktls.serveStatic(site.root, { maxAge: '1d' }), { code: 'ERR_INVALID_ARG_VALUE' })
    for (const method of ['POST', 'DELETE', 'PUT']) {
      const { res } = await get(srv.url('/index.html'), { method })
      t.is(res.statusCode, 405, method)
      t.is(res.headers.allow, 'GET, HEAD', method)
    }
  })

  env.serial(env.title('serveStatic: pipelined requests on one connection get their files in order'), async (t) => {
    t.timeout(env.ms(20000))
    const site = makeSite(t)
    const srv = await startHttps(t, ktls.serveStatic(site.root))
    const certs = getCerts()
    const socket = tls.connect({ host: HOST, port: srv.port, servername: 'localhost', ca: certs.ca.cert })
    t.teardown(() => socket.destroy())
    await once(socket, 'secureConnect')
    const order = [16385, 3 * MiB, 0, 1, 16384]
    const requests = order.map((size, i) => `GET /f${size}.bin HTTP/1.1\r\nHost: localhost\r\n${i === order.length - 1 ? 'Connection: close\r\n' : ''}\r\n`)
    socket.write(requests.join(''))
    const chunks = []
    socket.on('data', (d) => chunks.push(d))
    await withTimeout(once(socket, 'end'), env.ms(15000), 'all responses')
    let rest = Buffer.concat(chunks)
    for (const size of order) {
      const headEnd = rest.indexOf('\r\n\r\n')
      const head = rest.subarray(0, headEnd).toString()
      t.regex(head, /^HTTP\/1\.1 200 /, `response for ${size}`)
      t.true(head.toLowerCase().includes(`content-length: ${size}\r\n`), head)
      const body = rest.subarray(headEnd + 4, headEnd + 4 + size)
      t.is(sha256(body), sha256(site.files[size]), `body of ${size}`)
      rest = rest.subarray(headEnd + 4 + size)
    }
    t.is(rest.length, 0, 'nothing after the last response')

    // A client that sends its requests and leaves: the queued responses are
    // dropped (as node:http drops them), and their files closed.
    socket.destroy()
    await settleFds(0, { timeout: env.ms(300, 1000) }) // the first connection's descriptors go
    const fds = countFds()
    const leaving = tls.connect({ host: HOST, port: srv.port, servername: 'localhost', ca: certs.ca.cert })
    t.teardown(() => leaving.destroy())
    await once(leaving, 'secureConnect')
    leaving.on('data', () => {})
    leaving.end(requests.join(''))
    await withTimeout(once(leaving, 'close'), env.ms(10000), 'close')
    await delay(env.ms(300, 1000)) // the handlers open their files after the connection is gone
    const left = await settleFds(fds, { timeout: env.ms(5000) })
    t.true(left <= fds, `${left} descriptors open, ${fds} before`)
  })

  env.serial(env.title('serveStatic: a client that leaves mid-file costs its connection only, no fd leak'), async (t) => {
    t.timeout(env.ms(30000))
    const site = makeSite(t)
    const big = join(site.root, 'big.bin')
    fs.closeSync(fs.openSync(big, 'w'))
    fs.truncateSync(big, 48 * MiB)
    const srv = await startHttps(t, ktls.serveStatic(site.root))
    const fds = countFds()
    const certs = getCerts()
    for (let i = 0; i < 3; i++) {
      const req = https.get(srv.url('/big.bin'), { ca: certs.ca.cert, lookup: localhost, agent: false })
      req.on('error', () => {})
      const [res] = await withTimeout(once(req, 'response'), env.ms(10000), 'response')
      let bytes = 0
      await withTimeout(
        new Promise((resolve) => {
          res.on('data', (d) => {
            bytes += d.length
            if (bytes >= 256 * KiB) resolve()
          })
        }),
        env.ms(10000),
        'first bytes',
      )
      res.destroy()
      req.destroy()
    }
    await delay(env.ms(200, 1000))
    const after = await get(srv.url('/f16385.bin'), { agent: false })
    t.is(sha256(after.body), sha256(site.files[16385]), 'the server still serves')
    const left = await settleFds(fds, { timeout: env.ms(5000) })
    t.true(left <= fds, `${left} descriptors open, ${fds} before the downloads`)
  })

  env.serial(env.title('serveStatic: 24 concurrent downloads arrive whole'), async (t) => {
    t.timeout(env.ms(60000))
    const site = makeSite(t)
    const counter = countSendfile(t)
    const srv = await startHttps(t, ktls.serveStatic(site.root))
    const agent = new https.Agent({ keepAlive: true, maxSockets: 24 })
    t.teardown(() => agent.destroy())
    const want = sha256(site.files[16385])
    const wantBig = sha256(site.files[3 * MiB])
    const got = await Promise.all(Array.from({ length: 24 }, (_, i) => get(srv.url(i % 2 ? '/f16385.bin' : '/f3145728.bin'), { agent })))
    got.forEach(({ res, body }, i) => {
      t.is(res.statusCode, 200)
      t.is(sha256(body), i % 2 ? want : wantBig, `download ${i}`)
    })
    t.true(srv.sockets.length > 1, 'several connections at once')
    expectSendfile(t, counter)
  })

  env.serial(env.title('serveStatic as Express middleware: files, then the routes after it; refusals go to the error handler'), async (t) => {
    t.timeout(env.ms(20000))
    const site = makeSite(t)
    const app = express()
    app.use(ktls.serveStatic(site.root))
    app.use('/mounted', ktls.serveStatic(site.root))
    app.get('/api', (_req, res) => res.json({ ok: true }))
    app.use((_req, res) => res.status(404).send('app 404'))
    app.use((err, _req, res, _next) => res.status(err.status).send(`app error ${err.status}`))
    const srv = await startHttps(t, app)
    t.is(sha256((await get(srv.url('/f16384.bin'))).body), sha256(site.files[16384]))
    t.deepEqual(JSON.parse((await get(srv.url('/api'))).body), { ok: true })
    t.is((await get(srv.url('/missing'))).body.toString(), 'app 404')
    t.is((await get(srv.url('/mounted/sub/'))).body.toString(), '<p>sub</p>\n', 'under a mount path')
    t.is((await get(srv.url('/mounted/sub?q'))).res.headers.location, '/mounted/sub/?q', 'the redirect keeps the mount path')
    t.is((await get(srv.url('/index.html'), { method: 'POST' })).body.toString(), 'app 404', 'other methods fall through')
    const traversal = await get(srv.url('/'), { path: '/%2e%2e%2fsecret.txt' })
    t.is(traversal.res.statusCode, 403)
    t.is(traversal.body.toString(), 'app error 403')
  })

  env.serial(env.title('serveStatic on node:http streams the same bytes'), async (t) => {
    t.timeout(env.ms(20000))
    const site = makeSite(t)
    const server = http.createServer(ktls.serveStatic(site.root))
    const port = await listen(server, HOST)
    t.teardown(() => closeServer(server))
    const res = await fetch(`http://${HOST}:${port}/f3145728.bin`, { headers: { range: 'bytes=5-' } })
    t.is(res.status, 206)
    t.is(sha256(Buffer.from(await res.arrayBuffer())), sha256(site.files[3 * MiB].subarray(5)))
  })
}
