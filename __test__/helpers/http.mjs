// Fixtures for the HTTP integration suites (__test__/helpers/http-suites.mjs),
// which run natively on the userspace path and inside the kernel harness.
//
//   const env = httpEnv('kernel' | 'native')
//   env.test(title, fn)        serial; in the harness a kernelTest (fails without kTLS)
//   env.ms(n)                  a time budget, x10 inside the UML guest
//   env.expectOffload(t, s)    s = socket.ktls: offloaded where the kernel can, else userspace with a reason
//   startApp(env, opts)        the ktls HTTPS server with the test app (routes below)
//   curl(args), request(...)   clients
import test from 'ava'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import https from 'node:https'
import { createRequire } from 'node:module'
import { getCerts } from './certs.mjs'
import { kernelTest } from './kernel.mjs'
import { ktls } from './ktls.mjs'
import { closeServer, listen, TLS13_SUITES } from './peers.mjs'
import { dataChunks } from './stream.mjs'

const require = createRequire(import.meta.url)

/** dist/serve.js: the library behind `ktls serve` (not part of the index). */
export const serveModule = require('../../dist/serve.js')
export const CLI = require.resolve('../../dist/cli.js')

export const HOST = '127.0.0.1'

/** The kernel's name for the AEAD of a suite (TLS 1.2 names included). */
function kernelSuite(cipher) {
  if (/AES_128_GCM/.test(cipher)) return 'TLS_AES_128_GCM_SHA256'
  if (/AES_256_GCM/.test(cipher)) return 'TLS_AES_256_GCM_SHA384'
  if (/CHACHA20/.test(cipher)) return 'TLS_CHACHA20_POLY1305_SHA256'
  return undefined
}

export function httpEnv(kind) {
  const kernel = kind === 'kernel'
  const caps = ktls.capabilities()
  return {
    kernel,
    caps,
    test: kernel ? kernelTest : (title, fn) => test.serial(title, fn),
    ms: (n) => (kernel ? n * 10 : n),
    /** Suites this kernel offloads (all three natively are "tested in userspace"). */
    suites: kernel ? TLS13_SUITES.filter((s) => caps.ciphers[s]) : TLS13_SUITES,
    /** Would this kernel offload a connection using `cipher`? */
    offloads(cipher) {
      return caps.ulp === true && caps.ciphers[kernelSuite(cipher)] === true
    },
    expectOffload(t, status, what = 'connection') {
      const detail = `${what}: ${JSON.stringify(status)}`
      if (this.offloads(status.cipher)) {
        t.true(status.tx && status.rx, `${detail} should be offloaded both ways`)
      } else {
        t.false(kernel, `${detail}: the harness kernel must offload ${status.cipher}`)
        t.false(status.tx, detail)
        t.false(status.rx, detail)
        t.is(typeof status.reason, 'string', detail)
      }
    },
  }
}

/** A payload of `size` bytes with a known sha256 (deterministic, from stream.mjs). */
export function payload(size, seed = 'http') {
  return Buffer.concat([...dataChunks(size, { seed })])
}

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex')

/**
 * The test app: `GET /chunked/<n>` streams n payload bytes without a length
 * (chunked); `/slow/<ms>` answers after ms; a request with a body gets
 * { bytes, sha256 }; anything else "ok <url>". Every response carries
 * x-conn (the server's number for the connection) and x-ktls.
 */
export function testApp(connIds) {
  return (req, res) => {
    res.setHeader('x-conn', String(connIds.get(req.socket) ?? -1))
    if (req.socket.ktls) res.setHeader('x-ktls', JSON.stringify(req.socket.ktls))
    const chunked = /^\/chunked\/(\d+)$/.exec(req.url)
    if (chunked) {
      res.setHeader('content-type', 'application/octet-stream')
      for (const chunk of dataChunks(Number(chunked[1]), { seed: 'chunked' })) res.write(chunk)
      return res.end()
    }
    const slow = /^\/slow\/(\d+)$/.exec(req.url)
    if (slow) return setTimeout(() => res.end(`slow ${slow[1]}\n`), Number(slow[1]))
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (d) => {
      hash.update(d)
      bytes += d.length
    })
    req.on('end', () => {
      if (bytes === 0 && req.method === 'GET') return res.end(`ok ${req.url}\n`)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }))
    })
  }
}

/**
 * ktls.createHttpsServer on 127.0.0.1:0 with the test app (or `handler`),
 * closed at the end of test `t`.
 * Resolves { server, port, url(path), origin, sockets (secure sockets in
 * accept order), connections ('connection' count), close() }.
 */
export async function startApp(env, { t, handler, options = {} } = {}) {
  const certs = getCerts()
  const connIds = new Map()
  const server = ktls.createHttpsServer({ key: certs.server.key, cert: certs.server.cert, ...options }, handler ?? testApp(connIds))
  const state = { server, sockets: [], connections: 0 }
  server.on('connection', () => state.connections++)
  server.on('secureConnection', (socket) => {
    connIds.set(socket, state.sockets.length)
    state.sockets.push(socket)
  })
  state.port = await listen(server, HOST)
  state.origin = `https://${HOST}:${state.port}`
  state.url = (path = '/') => `${state.origin}${path}`
  state.close = () => closeServer(server)
  t?.teardown(state.close) // a failed test must not leave the worker running
  /** Every server-side connection so far is offloaded (or, natively, in userspace with a reason). */
  state.expectOffload = (t) => {
    t.true(state.sockets.length > 0, 'the server saw connections')
    for (const s of state.sockets) env.expectOffload(t, s.ktls, `server connection from port ${s.remotePort}`)
  }
  return state
}

/** node:https server (OpenSSL) on 127.0.0.1:0 with the same app. */
export async function startNodeHttps(t) {
  const certs = getCerts()
  const connIds = new Map()
  const server = https.createServer({ key: certs.server.key, cert: certs.server.cert }, testApp(connIds))
  const state = { server, connections: 0 }
  server.on('secureConnection', (s) => connIds.set(s, state.connections++))
  state.port = await listen(server, HOST)
  state.url = (path = '/') => `https://${HOST}:${state.port}${path}`
  state.close = () => closeServer(server)
  t?.teardown(state.close)
  return state
}

/** `curl` with the test CA, localhost pinned to 127.0.0.1; resolves { stdout (Buffer), stderr }. */
export function curl(port, args, { timeout = 60000 } = {}) {
  const certs = getCerts()
  const argv = ['-sS', '--cacert', certs.ca.certPath, '--resolve', `localhost:${port}:${HOST}`, ...args]
  return new Promise((resolve, reject) => {
    execFile('curl', argv, { encoding: 'buffer', maxBuffer: 64 << 20, timeout }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\ncurl ${argv.join(' ')}\n${stderr}`
        return reject(err)
      }
      resolve({ stdout, stderr: stderr.toString() })
    })
  })
}

/**
 * One request through node:http(s) machinery; resolves { res, body (Buffer),
 * req, socket } (`socket` as the response began: a pooled response lets go of it).
 * `send` is written as the body. `lib` defaults to node:https.
 */
export function request(url, options = {}, send, lib = https) {
  return new Promise((resolve, reject) => {
    const req = lib.request(url, options, (res) => {
      const socket = res.socket
      const chunks = []
      res.on('data', (d) => chunks.push(d))
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks), req, socket }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(send)
  })
}

/** A ktls Agent trusting the test CA (keep-alive unless told otherwise). */
export function ktlsAgent(options = {}) {
  return new ktls.Agent({ keepAlive: true, ca: getCerts().ca.cert, ...options })
}
