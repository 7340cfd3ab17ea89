// How the server takes accepted connections: straight from libuv's handle
// unless someone else listens to 'connection', with net.Server's options
// and limits ('maxConnections' / 'drop', getConnections) intact.
import test from 'ava'
import net from 'node:net'
import diagnostics from 'node:diagnostics_channel'
import { execFileSync } from 'node:child_process'
import { startKtlsServer, nodeConnect, exchange, endAndClose } from '../helpers/tls.mjs'
import { KiB, onceEvent } from '../helpers/stream.mjs'
import { cleanupAll, track } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

/** Counts the net.Sockets a given server builds for accepted connections. */
function countNetSockets(server) {
  const seen = { count: 0 }
  const onSocket = ({ socket }) => {
    if (socket.server === server) seen.count++
  }
  diagnostics.subscribe('net.server.socket', onSocket)
  seen.stop = () => diagnostics.unsubscribe('net.server.socket', onSocket)
  return seen
}

async function secureExchange(t, srv) {
  const client = await nodeConnect({ port: srv.port })
  const s = await srv.nextSocket()
  const { aGot, bGot, aSent, bSent } = await exchange(client, s, 64 * KiB)
  t.is(aGot.sha256, bSent.sha256)
  t.is(bGot.sha256, aSent.sha256)
  return { client, s }
}

test.serial('accepted connections become secure without a net.Socket, with their addresses', async (t) => {
  const srv = await startKtlsServer()
  const sockets = countNetSockets(srv.server)
  const { client, s } = await secureExchange(t, srv)
  sockets.stop()
  t.is(sockets.count, 0)
  t.is(s.remotePort, client.localPort)
  t.is(s.remoteAddress, '127.0.0.1')
  t.is(s.remoteFamily, 'IPv4')
  t.is(s.localPort, srv.port)
  t.deepEqual(s.address(), { address: '127.0.0.1', port: srv.port, family: 'IPv4' })
  t.is(await new Promise((r) => srv.server.getConnections((_e, n) => r(n))), 1)
  await endAndClose(client)
})

test.serial("a user's 'connection' listener gets the TCP socket, and the connection still becomes secure", async (t) => {
  const srv = await startKtlsServer()
  const sockets = countNetSockets(srv.server)
  const raw = []
  srv.server.on('connection', (socket) => raw.push(socket))
  const { client } = await secureExchange(t, srv)
  sockets.stop()
  t.is(raw.length, 1)
  t.true(raw[0] instanceof net.Socket)
  t.is(sockets.count, 1)
  await endAndClose(client)
})

test.serial("maxConnections drops the extra connection with 'drop', as net.Server does", async (t) => {
  const srv = await startKtlsServer()
  srv.server.maxConnections = 1
  const { client } = await secureExchange(t, srv)
  const dropped = onceEvent(srv.server, 'drop', { timeout: 10000 })
  const extra = track(net.connect({ host: '127.0.0.1', port: srv.port }))
  extra.on('error', () => {})
  await onceEvent(extra, 'connect', { timeout: 10000 })
  const drop = await dropped
  t.is(drop.remotePort, extra.localPort)
  t.is(drop.localPort, srv.port)
  await onceEvent(extra, 'close', { timeout: 10000 })
  t.is(srv.clientErrors.length, 0)
  await endAndClose(client)
})

test.serial("the server's keepAlive option arms TCP keep-alive on connections it accepts", async (t) => {
  const srv = await startKtlsServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 5000 })
  const sockets = countNetSockets(srv.server)
  const { client } = await secureExchange(t, srv)
  sockets.stop()
  t.is(sockets.count, 0)
  // ss -o shows a keep-alive timer on the server side of the connection; it
  // shows only one timer, the retransmit one while data is still unacknowledged.
  const filter = `( sport = :${srv.port} and dport = :${client.localPort} )`
  let line = ''
  for (const deadline = Date.now() + 2000; !/timer:\(keepalive,/.test(line) && Date.now() < deadline; ) {
    line = execFileSync('ss', ['-tnoH', 'state', 'established', filter]).toString()
    if (!/timer:\(keepalive,/.test(line)) await new Promise((r) => setTimeout(r, 50))
  }
  t.regex(line, /timer:\(keepalive,/)
  await endAndClose(client)
})
