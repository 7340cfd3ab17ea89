import test from 'ava'
import { ktls } from '../helpers/ktls.mjs'
import { getCerts } from '../helpers/certs.mjs'
import { hostEvidenceOfKernelTls } from '../helpers/kernel.mjs'
import { listen, closeServer } from '../helpers/peers.mjs'
import { onceEvent, withTimeout, delay } from '../helpers/stream.mjs'
import {
  startNodeServer,
  startKtlsServer,
  ktlsConnect,
  ktlsConnectError,
  nodeConnect,
  collectErrors,
  exchange,
  endAndClose,
} from '../helpers/tls.mjs'
import { cleanupAll, track } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const certs = getCerts()
const userspaceHost = !hostEvidenceOfKernelTls()
const onUserspaceHost = userspaceHost ? test : test.skip

// Calls fn expecting a synchronous throw; cleans up anything it returned instead.
function syncError(fn) {
  let ret
  try {
    ret = fn()
  } catch (err) {
    return err
  }
  if (ret && typeof ret.on === 'function') {
    ret.on('error', () => {})
    if (typeof ret.destroy === 'function') ret.destroy()
    if (typeof ret.close === 'function') ret.close()
  }
  return null
}

// ktls 'auto' on this package's client or server side: userspace with a
// reason, and the connection works. `ours` is this package's socket; a is the
// client, b the server.
const AUTO_FALLBACK = [
  {
    side: 'client',
    async connect() {
      const srv = await startNodeServer()
      const c = await ktlsConnect({ port: srv.port, ktls: 'auto' })
      const peer = await srv.nextPeer()
      return { srv, ours: c, a: c, b: peer }
    },
  },
  {
    side: 'server',
    async connect() {
      const srv = await startKtlsServer({ ktls: 'auto' })
      const client = await nodeConnect({ port: srv.port })
      const s = await srv.nextSocket()
      return { srv, ours: s, a: client, b: s }
    },
  },
]

for (const { side, connect } of AUTO_FALLBACK) {
  onUserspaceHost(`${side} ktls 'auto' falls back to userspace with a reason on a kernel without kTLS`, async (t) => {
    const { srv, ours, a, b } = await connect()
    const errors = collectErrors(ours)
    t.false(ours.ktls.tx)
    t.false(ours.ktls.rx)
    t.is(typeof ours.ktls.reason, 'string')
    t.true(ours.ktls.reason.length > 0)
    const r = await exchange(a, b, 256 * 1024)
    t.is(r.bGot.sha256, r.aSent.sha256)
    t.is(r.aGot.sha256, r.bSent.sha256)
    await endAndClose(a)
    t.deepEqual(errors, [])
    await srv.close()
  })
}

onUserspaceHost("client ktls 'require' fails with ERR_KTLS_UNAVAILABLE on a kernel without kTLS", async (t) => {
  const srv = await startNodeServer()
  let result
  const thrown = syncError(() => {
    result = ktlsConnectError({ port: srv.port, ktls: 'require' })
  })
  if (thrown) {
    t.is(thrown.code, 'ERR_KTLS_UNAVAILABLE')
  } else {
    const { err, secure } = await result
    t.is(err.code, 'ERR_KTLS_UNAVAILABLE')
    t.false(secure, "'secureConnect' must not be emitted when offload is required but impossible")
  }
  await srv.close()
})

onUserspaceHost("server ktls 'require' refuses connections with ERR_KTLS_UNAVAILABLE on a kernel without kTLS", async (t) => {
  let server
  const thrown = syncError(() => {
    server = ktls.createServer({ key: certs.server.key, cert: certs.server.cert, ktls: 'require' })
  })
  if (thrown) {
    t.is(thrown.code, 'ERR_KTLS_UNAVAILABLE')
    return
  }
  let secured = false
  server.on('secureConnection', () => {
    secured = true
  })
  const clientError = onceEvent(server, 'tlsClientError', { timeout: 30000 })
  const port = await listen(server)
  const { connect } = await import('node:tls')
  const c = track(connect({ port, host: '127.0.0.1', servername: 'localhost', ca: certs.ca.cert }))
  c.on('error', () => {})
  const [err] = await clientError
  t.is(err.code, 'ERR_KTLS_UNAVAILABLE')
  await delay(50)
  t.false(secured)
  c.destroy()
  await closeServer(server)
})

test("ktls 'off' keeps both directions in userspace", async (t) => {
  const srv = await startNodeServer()
  const c = await ktlsConnect({ port: srv.port, ktls: 'off' })
  const peer = await srv.nextPeer()
  t.false(c.ktls.tx)
  t.false(c.ktls.rx)
  const r = await exchange(c, peer, 64 * 1024)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.is(r.aGot.sha256, r.bSent.sha256)
  await endAndClose(c)
  await srv.close()
})

test('connect() rejects an unknown ktls mode with ERR_INVALID_ARG_VALUE', (t) => {
  const err = syncError(() => ktls.connect({ host: '127.0.0.1', port: 9, ktls: 'sometimes' }))
  t.truthy(err, 'expected a synchronous throw')
  t.is(err?.code, 'ERR_INVALID_ARG_VALUE')
})

test('createServer() rejects an unknown ktls mode with ERR_INVALID_ARG_VALUE', (t) => {
  const err = syncError(() => ktls.createServer({ key: certs.server.key, cert: certs.server.cert, ktls: true }))
  t.truthy(err, 'expected a synchronous throw')
  t.is(err?.code, 'ERR_INVALID_ARG_VALUE')
})

test('connect() rejects a non-array ALPNProtocols with ERR_INVALID_ARG_TYPE', (t) => {
  const err = syncError(() => ktls.connect({ host: '127.0.0.1', port: 9, ALPNProtocols: 42 }))
  t.truthy(err, 'expected a synchronous throw')
  t.is(err?.code, 'ERR_INVALID_ARG_TYPE')
})

test('connect() rejects an unknown protocol version with ERR_TLS_INVALID_PROTOCOL_VERSION', (t) => {
  for (const opt of [{ minVersion: 'TLSv9' }, { maxVersion: 'SSLv3' }]) {
    const err = syncError(() => ktls.connect({ host: '127.0.0.1', port: 9, ...opt }))
    t.truthy(err, `expected a synchronous throw for ${JSON.stringify(opt)}`)
    t.is(err?.code, 'ERR_TLS_INVALID_PROTOCOL_VERSION', JSON.stringify(opt))
  }
})

test('connect() rejects a negative handshakeTimeout with ERR_OUT_OF_RANGE', (t) => {
  const err = syncError(() => ktls.connect({ host: '127.0.0.1', port: 9, handshakeTimeout: -5 }))
  t.truthy(err, 'expected a synchronous throw')
  t.is(err?.code, 'ERR_OUT_OF_RANGE')
})

test('connect() rejects a non-numeric handshakeTimeout with ERR_INVALID_ARG_TYPE', (t) => {
  const err = syncError(() => ktls.connect({ host: '127.0.0.1', port: 9, handshakeTimeout: 'soon' }))
  t.truthy(err, 'expected a synchronous throw')
  t.is(err?.code, 'ERR_INVALID_ARG_TYPE')
})

test('connect() rejects a recordLimit below 1 with ERR_OUT_OF_RANGE and a fractional one with ERR_INVALID_ARG_TYPE', (t) => {
  t.is(syncError(() => ktls.connect({ host: '127.0.0.1', port: 9, recordLimit: 0 }))?.code, 'ERR_OUT_OF_RANGE')
  t.is(syncError(() => ktls.connect({ host: '127.0.0.1', port: 9, recordLimit: 1.5 }))?.code, 'ERR_INVALID_ARG_TYPE')
})

test('connect() rejects a ciphers list without any known TLS suite', (t) => {
  const err = syncError(() => ktls.connect({ host: '127.0.0.1', port: 9, ciphers: 'TLS_NOT_A_SUITE' }))
  t.truthy(err, 'expected a synchronous throw')
  t.true(['ERR_INVALID_ARG_VALUE', 'ERR_SSL_NO_CIPHER_MATCH'].includes(err?.code), `code ${err?.code}`)
})

test('createSecureContext() rejects a malformed private key with a coded error', (t) => {
  const err = syncError(() => ktls.createSecureContext({ key: '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n', cert: certs.server.cert }))
  t.truthy(err, 'expected a synchronous throw')
  t.is(typeof err?.code, 'string')
})

test('createSecureContext() result is accepted by createServer() and connect()', async (t) => {
  const serverCtx = ktls.createSecureContext({ key: certs.server.key, cert: certs.server.cert })
  const clientCtx = ktls.createSecureContext({ ca: certs.ca.cert })
  const srv = await startKtlsServer({ key: undefined, cert: undefined, secureContext: serverCtx })
  const c = await ktlsConnect({ port: srv.port, ca: undefined, secureContext: clientCtx })
  t.true(c.authorized)
  const s = await srv.nextSocket()
  const r = await exchange(c, s, 64 * 1024)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.is(r.aGot.sha256, r.bSent.sha256)
  await endAndClose(c)
  await srv.close()
})

test('connect() calls the secureConnect listener argument once', async (t) => {
  const srv = await startNodeServer()
  let calls = 0
  const c = ktls.connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', ca: certs.ca.cert }, () => calls++)
  await withTimeout(onceEvent(c, 'secureConnect'), 30000, 'secureConnect')
  await delay(20)
  t.is(calls, 1)
  await endAndClose(c)
  await srv.close()
})

test('createServer() passes secure sockets to the secureConnection listener argument', async (t) => {
  let got
  const server = ktls.createServer({ key: certs.server.key, cert: certs.server.cert }, (s) => {
    s.on('error', () => {})
    s.resume()
    got = s
  })
  const port = await listen(server)
  const c = await nodeConnect({ port })
  await withTimeout(
    (async () => {
      while (!got) await delay(5)
    })(),
    30000,
    'secureConnection listener',
  )
  t.true(got.encrypted)
  await endAndClose(c)
  await closeServer(server)
})
