// exportKeyingMaterial, as node:tls: both ends of a connection derive the
// same bytes (RFC 8446 §7.5 for TLS 1.3, RFC 5705 for TLS 1.2), node:tls on
// the other end. The secret is captured during the handshake, so offloaded
// sockets answer too. Shared by __test__/unit/exporter.spec.mjs and
// __test__/kernel/exporter.spec.mjs.
import tls from 'node:tls'
import { ktls } from '../ktls.mjs'
import { getCerts } from '../certs.mjs'
import { track } from '../cleanup.mjs'
import { onceEvent } from '../stream.mjs'
import { startKtlsServer, startNodeServer, ktlsConnect, nodeConnect, HOST } from '../tls.mjs'

const LABEL = 'EXPERIMENTAL-ktls-test'

function exports(sock) {
  return {
    plain: sock.exportKeyingMaterial(32, LABEL).toString('hex'),
    withContext: sock.exportKeyingMaterial(48, LABEL, Buffer.from('context')).toString('hex'),
    emptyContext: sock.exportKeyingMaterial(16, LABEL, Buffer.alloc(0)).toString('hex'),
  }
}

export function exporterSuite(env) {
  const certs = getCerts()
  for (const version of ['TLSv1.3', 'TLSv1.2']) {
    env.test(env.title(`exportKeyingMaterial agrees with node:tls at the other end over ${version}, client and server`), async (t) => {
      const nodeSide = []
      const srv = await startNodeServer({ maxVersion: version }, (s) => nodeSide.push(s))
      const c = await ktlsConnect({ port: srv.port, maxVersion: version })
      env.assertPath(t, c)
      t.is(c.getProtocol(), version)
      while (!nodeSide.length) await new Promise((r) => setTimeout(r, 5))
      const ours = exports(c)
      t.deepEqual(ours, exports(nodeSide[0]))
      t.not(ours.plain, c.exportKeyingMaterial(32, `${LABEL}-2`).toString('hex'), 'the label matters')
      t.not(ours.plain, ours.emptyContext.padEnd(64, '0'), 'lengths and context matter')
      c.destroy()
      await srv.close()

      const ourServer = await startKtlsServer({ maxVersion: version })
      const client = await nodeConnect({ port: ourServer.port })
      const s = await ourServer.nextSocket()
      env.assertPath(t, s)
      t.deepEqual(exports(s), exports(client))
      client.destroy()
      await ourServer.close()
    })
  }

  env.test('exportKeyingMaterial before the handshake ends, or with bad arguments, throws what node:tls throws', async (t) => {
    const srv = await startKtlsServer()
    const sockets = [
      track(ktls.connect({ port: srv.port, host: HOST, servername: 'localhost', ca: certs.ca.cert })),
      track(tls.connect({ port: srv.port, host: HOST, servername: 'localhost', ca: certs.ca.cert })),
    ]
    const [ours, theirs] = sockets.map((s) => t.throws(() => s.exportKeyingMaterial(32, LABEL)))
    t.is(ours.code, 'ERR_TLS_INVALID_STATE')
    t.is(ours.code, theirs.code)
    await Promise.all(sockets.map((s) => onceEvent(s, 'secureConnect', { timeout: env.ms(10000) })))
    for (const args of [[0, LABEL], ['32', LABEL], [32, 7], [32, LABEL, 'context']]) {
      const [mine, node] = sockets.map((s) => t.throws(() => s.exportKeyingMaterial(...args)))
      t.is(mine.code, node.code, JSON.stringify(args))
      t.is(mine.constructor, node.constructor, JSON.stringify(args))
    }
    for (const s of sockets) s.destroy()
    await srv.close()
  })
}

/** NSS key log lines: LABEL <client random, hex> <secret, hex>. */
const KEYLOG_LINE = /^([A-Z_0-9]+) ([0-9a-f]{64}) ([0-9a-f]+)\n$/

export function keylogSuite(env) {
  env.test(env.title("'keylog' gives NSS key log lines on the client and on the server, the same lines node:tls gives its peer"), async (t) => {
    const certs = getCerts()
    // Our client, node:tls server: both sides log the same secrets.
    const nodeLines = []
    const srv = await startNodeServer({})
    srv.server.on('keylog', (line) => nodeLines.push(String(line)))
    const ourLines = []
    const c = track(ktls.connect({ port: srv.port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
    c.on('keylog', (line) => {
      t.true(Buffer.isBuffer(line))
      ourLines.push(String(line))
    })
    await onceEvent(c, 'secureConnect', { timeout: env.ms(10000) })
    env.assertPath(t, c)
    while (nodeLines.length < 5) await new Promise((r) => setTimeout(r, 5))
    t.is(ourLines.length, 5, 'TLS 1.3: two handshake, two traffic secrets and the exporter secret')
    for (const line of ourLines) t.regex(line, KEYLOG_LINE)
    t.deepEqual([...ourLines].sort(), [...nodeLines].sort())
    c.destroy()
    await srv.close()

    // Our server, node:tls client: (line, socket) on the server.
    const ourServer = await startKtlsServer({})
    const serverLines = []
    ourServer.server.on('keylog', (line, socket) => serverLines.push([String(line), socket]))
    const clientLines = []
    const client = track(tls.connect({ port: ourServer.port, host: HOST, servername: 'localhost', ca: certs.ca.cert }))
    client.on('keylog', (line) => clientLines.push(String(line)))
    await onceEvent(client, 'secureConnect', { timeout: env.ms(10000) })
    const s = await ourServer.nextSocket()
    env.assertPath(t, s)
    t.true(serverLines.every(([, socket]) => socket === s))
    t.deepEqual(serverLines.map(([line]) => line).sort(), [...clientLines].sort())
    client.destroy()
    await ourServer.close()
  })
}
