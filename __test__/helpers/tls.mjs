// Small wrappers around the package under test and node:tls reference peers.
import net from 'node:net'
import tls from 'node:tls'
import { getCerts } from './certs.mjs'
import { ktls } from './ktls.mjs'
import { closeServer, listen } from './peers.mjs'
import { onCleanup, track } from './cleanup.mjs'
import { hashExactly, onceEvent, withTimeout, writePayload } from './stream.mjs'

export const HOST = '127.0.0.1'

/** The error a node:tls client ends its handshake with, for comparing codes. */
export function nodeConnectError(options = {}) {
  return new Promise((resolve) => {
    const c = tls.connect({ host: HOST, rejectUnauthorized: false, ...options })
    track(c)
    c.once('secureConnect', () => resolve(undefined))
    c.once('error', resolve)
  })
}

/**
 * Starts a ktls server on 127.0.0.1:0.
 * Resolves { server, port, nextSocket(), nextClientError(), clientErrors (all so far), close() }.
 */
export async function startKtlsServer(options = {}, onSecure) {
  const certs = getCerts()
  const server = ktls.createServer({ key: certs.server.key, cert: certs.server.cert, ...options })
  const queue = []
  const waiters = []
  const clientErrors = []
  const errQueue = []
  const errorWaiters = []
  server.on('secureConnection', (sock) => {
    trackClose(track(sock))
    // Unchecked server-side errors must not crash the test process; tests that
    // care attach their own listener (collectErrors / onceEvent).
    sock.on('error', () => {})
    if (onSecure) onSecure(sock)
    const w = waiters.shift()
    if (w) w(sock)
    else queue.push(sock)
  })
  server.on('tlsClientError', (err, raw) => {
    trackClose(track(raw))
    clientErrors.push({ err, raw })
    const w = errorWaiters.shift()
    if (w) w({ err, raw })
    else errQueue.push({ err, raw })
  })
  const port = await listen(server)
  onCleanup(() => closeServer(server))
  return {
    server,
    port,
    clientErrors,
    /** Resolves the next KtlsSocket delivered by 'secureConnection'. */
    nextSocket(timeout = 30000) {
      const s = queue.shift()
      if (s) return Promise.resolve(s)
      return withTimeout(new Promise((r) => waiters.push(r)), timeout, "server 'secureConnection'")
    },
    /** Resolves the next { err, raw } delivered by 'tlsClientError'. */
    nextClientError(timeout = 30000) {
      const e = errQueue.shift()
      if (e) return Promise.resolve(e)
      return withTimeout(new Promise((r) => errorWaiters.push(r)), timeout, "server 'tlsClientError'")
    },
    close: () => closeServer(server),
  }
}

/** ktls.connect() to 127.0.0.1, resolving on 'secureConnect' (rejects on 'error'). */
export function ktlsConnect(options = {}, timeout = 30000) {
  const certs = getCerts()
  const sock = trackClose(track(ktls.connect({ host: HOST, servername: 'localhost', ca: certs.ca.cert, ...options })))
  return withTimeout(
    onceEvent(sock, 'secureConnect').then(() => sock),
    timeout,
    'ktls client secureConnect',
  ).catch((err) => {
    sock.destroy()
    throw err
  })
}

/** ktls.connect() that is expected to fail; resolves the 'error'. */
export function ktlsConnectError(options = {}, timeout = 30000) {
  const certs = getCerts()
  const sock = trackClose(track(ktls.connect({ host: HOST, servername: 'localhost', ca: certs.ca.cert, ...options })))
  let secure = false
  sock.on('secureConnect', () => {
    secure = true
  })
  return withTimeout(onceEvent(sock, 'error'), timeout, 'ktls client error').then((err) => {
    sock.destroy()
    return { err, secure, sock }
  })
}

/**
 * node:tls server on 127.0.0.1:0 with the CA-signed ECDSA cert.
 * Resolves { server, port, nextPeer(), close() }; nextPeer() resolves the next
 * server-side TLSSocket (in accept order). Server-side socket errors are
 * swallowed unless `onSecure` attaches its own handling.
 */
export async function startNodeServer(options = {}, onSecure) {
  const certs = getCerts()
  const queue = []
  const waiters = []
  const server = tls.createServer({ key: certs.server.key, cert: certs.server.cert, ...options }, (s) => {
    trackClose(track(s))
    s.on('error', () => {})
    if (onSecure) onSecure(s)
    const w = waiters.shift()
    if (w) w(s)
    else queue.push(s)
  })
  server.on('tlsClientError', () => {})
  const port = await listen(server)
  onCleanup(() => closeServer(server))
  return {
    server,
    port,
    nextPeer(timeout = 30000) {
      const s = queue.shift()
      if (s) return Promise.resolve(s)
      return withTimeout(new Promise((r) => waiters.push(r)), timeout, "node:tls 'secureConnection'")
    },
    close: () => closeServer(server),
  }
}

/** node:tls client, resolving on 'secureConnect'. */
export function nodeConnect(options = {}, onSecureSync) {
  const certs = getCerts()
  const sock = trackClose(track(tls.connect({ host: HOST, servername: 'localhost', ca: certs.ca.cert, ...options }, () => {
    if (onSecureSync) onSecureSync(sock)
  })))
  return onceEvent(sock, 'secureConnect', { timeout: 30000 }).then(() => sock)
}

/** Plain TCP server on 127.0.0.1:0. */
export async function startRawServer(onConnection) {
  const server = net.createServer((sock) => {
    trackClose(track(sock))
    onConnection(sock)
  })
  const port = await listen(server)
  onCleanup(() => closeServer(server))
  return { server, port, close: () => closeServer(server) }
}

export { cleanupAll, track } from './cleanup.mjs'

/** Records every 'error' emitted by `emitter` (so they don't throw) for later assertions. */
export function collectErrors(emitter) {
  const errors = []
  emitter.on('error', (e) => errors.push(e))
  return errors
}

/**
 * Sends `size` bytes each way between a and b concurrently (a's payload seeded
 * with seedA, b's with seedB) and resolves the four hashes:
 * { aSent, bSent, aGot, bGot } ({ sha256, bytes } each).
 */
export async function exchange(a, b, size, { seedA = 'a->b', seedB = 'b->a', hex = false } = {}) {
  const aGot = hashExactly(a, size)
  const bGot = hashExactly(b, size)
  const [aSent, bSent] = await Promise.all([
    writePayload(a, size, { seed: seedA, hex }),
    writePayload(b, size, { seed: seedB, hex }),
  ])
  return { aSent, bSent, aGot: await aGot, bGot: await bGot }
}

const CLOSE_SEEN = Symbol('closeSeen')

/** Remembers whether `sock` has emitted 'close' (so closed() works after the fact). */
export function trackClose(sock) {
  if (sock && !(CLOSE_SEEN in sock)) {
    sock[CLOSE_SEEN] = false
    sock.once('close', () => {
      sock[CLOSE_SEEN] = true
    })
  }
  return sock
}

/**
 * Resolves when `sock` has emitted 'close' (also if it did so before this call,
 * for sockets passed through trackClose(); every socket the helpers hand out is).
 */
export function closed(sock, timeout = 30000) {
  if (sock[CLOSE_SEEN] === true) return Promise.resolve()
  return withTimeout(new Promise((r) => sock.once('close', r)), timeout, "socket 'close'")
}

/** Ends `sock` gracefully and waits for 'close'. */
export async function endAndClose(sock, timeout = 30000) {
  const c = closed(sock, timeout)
  sock.end()
  // Keep the readable side flowing so 'end' (and so 'close') can happen.
  if (sock.readableFlowing !== true) sock.resume()
  await c
}

/**
 * Asserts the connection runs in userspace when the host kernel has no kTLS
 * (the unit suite's situation); on a kTLS-capable host it only checks types.
 */
export function assertUserspaceOnThisHost(t, sock, userspaceHost) {
  t.is(typeof sock.ktls, 'object')
  t.is(typeof sock.ktls.tx, 'boolean')
  t.is(typeof sock.ktls.rx, 'boolean')
  if (userspaceHost) {
    t.false(sock.ktls.tx, 'tx must not be offloaded on a kernel without kTLS')
    t.false(sock.ktls.rx, 'rx must not be offloaded on a kernel without kTLS')
    t.is(typeof sock.ktls.reason, 'string')
  }
}
