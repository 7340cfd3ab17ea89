// Session tickets under keys the application holds (ticketKeys,
// getTicketKeys, setTicketKeys, sessionTimeout), as node:tls: servers that
// share the keys (cluster workers, a fleet) resume each other's sessions,
// and a resumed connection is offloaded like a full one. node:tls is the
// client (its `session` option and 'session' event carry the ticket).
// Shared by __test__/unit/tickets.spec.mjs and __test__/kernel/tickets.spec.mjs.
import { randomBytes } from 'node:crypto'
import tls from 'node:tls'
import net from 'node:net'
import { getCerts } from '../certs.mjs'
import { onCleanup, track } from '../cleanup.mjs'
import { listen, closeServer, startOpensslClient, startOpensslServer } from '../peers.mjs'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onceEvent } from '../stream.mjs'
import { ktls } from '../ktls.mjs'
import { HOST, startKtlsServer, startNodeServer } from '../tls.mjs'

/** A node:tls connection to `port`: its 'session' (if any), whether it resumed, and the server's socket. */
async function visit(srv, { session, maxVersion = 'TLSv1.3' } = {}) {
  const certs = getCerts()
  const client = tls.connect({ host: HOST, port: srv.port, servername: 'localhost', ca: certs.ca.cert, session, maxVersion })
  let ticket
  client.on('session', (s) => (ticket = s))
  client.on('error', () => {}) // a reset at the end changes nothing here
  await onceEvent(client, 'secureConnect')
  const server = await srv.nextSocket()
  // TLS 1.3 tickets come after the handshake: one round trip makes sure they are in.
  const echoed = onceEvent(client, 'data')
  server.once('data', (d) => server.write(d))
  client.write('x')
  await echoed
  const result = { resumed: client.isSessionReused(), serverResumed: server.isSessionReused(), ticket, server }
  client.end()
  return result
}

export function ticketsSuite(env) {
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
    env.test(env.title(`${maxVersion}: two servers with the same ticketKeys resume each other's sessions; with other keys they do not`), async (t) => {
      const keys = randomBytes(48)
      const a = await startKtlsServer({ ticketKeys: keys, maxVersion })
      const b = await startKtlsServer({ ticketKeys: keys, maxVersion })
      const other = await startKtlsServer({ maxVersion })
      const first = await visit(a, { maxVersion })
      t.false(first.resumed)
      t.truthy(first.ticket, 'the server issued a ticket')
      const atB = await visit(b, { session: first.ticket, maxVersion })
      t.true(atB.resumed, 'node:tls resumed at the other server')
      t.true(atB.serverResumed, "the server's socket says so too")
      env.assertPath(t, atB.server)
      const elsewhere = await visit(other, { session: first.ticket, maxVersion })
      t.false(elsewhere.resumed, 'a server with its own keys cannot open the ticket')
    })
  }

  env.test(env.title('getTicketKeys() returns the keys given, random 48 bytes otherwise; setTicketKeys() rotates them, and older tickets no longer resume'), async (t) => {
    const keys = randomBytes(48)
    const srv = await startKtlsServer({ ticketKeys: keys })
    t.deepEqual(srv.server.getTicketKeys(), keys)
    const plain = await startKtlsServer()
    t.is(plain.server.getTicketKeys().length, 48)
    t.notDeepEqual(plain.server.getTicketKeys(), (await startKtlsServer()).server.getTicketKeys())

    const before = await visit(srv)
    t.true((await visit(srv, { session: before.ticket })).resumed, 'resumes before the rotation')
    const next = randomBytes(48)
    srv.server.setTicketKeys(next)
    t.deepEqual(srv.server.getTicketKeys(), next)
    t.false((await visit(srv, { session: before.ticket })).resumed, 'a ticket from before the rotation does not')
  })

  env.test(env.title('ticketKeys other than 48 bytes are refused: ERR_INVALID_ARG_VALUE, ERR_INVALID_ARG_TYPE for a non-buffer'), async (t) => {
    const { ktls } = await import('../ktls.mjs')
    const certs = getCerts()
    t.is(t.throws(() => ktls.createServer({ key: certs.server.key, cert: certs.server.cert, ticketKeys: randomBytes(47) })).code, 'ERR_INVALID_ARG_VALUE')
    const srv = await startKtlsServer()
    t.is(t.throws(() => srv.server.setTicketKeys(randomBytes(49))).code, 'ERR_INVALID_ARG_VALUE')
    t.is(t.throws(() => srv.server.setTicketKeys('k'.repeat(48))).code, 'ERR_INVALID_ARG_TYPE')
  })

  env.test(env.title('sessionTimeout: a ticket older than it does not resume'), async (t) => {
    const srv = await startKtlsServer({ sessionTimeout: 1 })
    const first = await visit(srv)
    t.true((await visit(srv, { session: first.ticket })).resumed, 'fresh: resumes')
    await new Promise((resolve) => setTimeout(resolve, 2500))
    t.false((await visit(srv, { session: first.ticket })).resumed, 'older than sessionTimeout: a full handshake')
  })
}

/** A ktls client's visit: its sessions ('session' events, getSession()) and whether it resumed. */
async function ktlsVisit(port, { session, maxVersion = 'TLSv1.3', secureContext } = {}) {
  const certs = getCerts()
  const client = ktls.connect({ host: HOST, port, servername: 'localhost', ca: certs.ca.cert, session, maxVersion, secureContext })
  const events = []
  // As node:tls: during each 'session', getSession() is that very session.
  const duringEvents = []
  client.on('session', (s) => {
    events.push(s)
    duringEvents.push(s.equals(client.getSession()))
  })
  client.on('error', () => {})
  await onceEvent(client, 'secureConnect')
  // TLS 1.3 tickets follow the handshake: a round trip brings them in.
  const echoed = onceEvent(client, 'data')
  client.write('x')
  await echoed
  const result = { resumed: client.isSessionReused(), events, duringEvents, session: client.getSession(), status: client.ktls }
  client.end()
  return result
}

/** The client side of sessions: 'session', getSession() and the `session` option, against ktls and node:tls servers. */
export function clientSessionsSuite(env) {
  const echo = (s) => s.on('data', (d) => s.write(d))
  const servers = {
    ktls: async (maxVersion) => (await startKtlsServer({ maxVersion }, echo)).port,
    'node:tls': async (maxVersion) => (await startNodeServer({ maxVersion }, echo)).port,
  }
  for (const [name, start] of Object.entries(servers)) {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
      env.test(env.title(`${maxVersion}, ${name} server: a ktls client's 'session' and getSession() resume a later connection given as \`session\`, from another secure context too`), async (t) => {
        const port = await start(maxVersion)
        const first = await ktlsVisit(port, { maxVersion })
        t.false(first.resumed)
        t.true(first.events.length >= 1, "'session' fired")
        t.deepEqual(first.duringEvents, first.events.map(() => true), "getSession() in each 'session' is that session")
        t.true(Buffer.isBuffer(first.session))
        // A fresh context: only the `session` option can make it resume.
        const secureContext = ktls.createSecureContext({ ca: getCerts().ca.cert, maxVersion })
        const again = await ktlsVisit(port, { session: first.session, maxVersion, secureContext })
        t.true(again.resumed)
        env.assertPath(t, { ktls: again.status })
      })
    }
  }

  env.test(env.title('a session unknown to this process (or a used TLS 1.3 ticket) is a full handshake, not an error'), async (t) => {
    const port = await servers.ktls('TLSv1.3')
    const stranger = await ktlsVisit(port, { session: Buffer.from('not a session we know') })
    t.false(stranger.resumed)
    const first = await ktlsVisit(port)
    const secureContext = ktls.createSecureContext({ ca: getCerts().ca.cert })
    t.true((await ktlsVisit(port, { session: first.session, secureContext })).resumed)
    const secureContext2 = ktls.createSecureContext({ ca: getCerts().ca.cert })
    t.false((await ktlsVisit(port, { session: first.session, secureContext: secureContext2 })).resumed, 'a TLS 1.3 ticket resumes once')
  })
}

/** A TCP relay to `port` that keeps each connection's first record (the ClientHello). */
async function helloRecorder(port) {
  const hellos = []
  const relay = net.createServer((client) => {
    const upstream = net.connect(port, HOST)
    let first = Buffer.alloc(0)
    client.on('data', (d) => {
      if (first && (first = Buffer.concat([first, d])).length >= 5 && first.length >= 5 + first.readUInt16BE(3)) {
        hellos.push(first.subarray(0, 5 + first.readUInt16BE(3)))
        first = null
      }
      upstream.write(d)
    })
    upstream.pipe(client)
    client.on('end', () => upstream.end())
    for (const s of [client, upstream]) s.on('error', () => {}).on('close', () => { client.destroy(); upstream.destroy() })
  })
  const relayPort = await listen(relay)
  onCleanup(() => closeServer(relay))
  return { port: relayPort, hellos }
}

/** The ticket a ClientHello presents: TLS 1.3's first PSK identity, or TLS 1.2's SessionTicket. */
function presentedTicket(record) {
  let at = 5 + 4 + 2 + 32 // record header, handshake header, version, random
  at += 1 + record[at] // session id
  at += 2 + record.readUInt16BE(at) // cipher suites
  at += 1 + record[at] // compression
  const end = at + 2 + record.readUInt16BE(at)
  for (at += 2; at < end; ) {
    const type = record.readUInt16BE(at)
    const len = record.readUInt16BE(at + 2)
    const data = record.subarray(at + 4, at + 4 + len)
    if (type === 41) return data.subarray(4, 4 + data.readUInt16BE(2)) // identities<2>: identity<2> ...
    if (type === 35 && len > 0) return data
    at += 4 + len
  }
  return undefined
}

/** getTLSTicket(), as node:tls: the ticket of each session, the one a resumption presents. */
export function tlsTicketSuite(env) {
  const certs = getCerts()
  const servers = {
    ktls: (maxVersion) => startKtlsServer({ maxVersion }, (s) => s.end('x')),
    'node:tls': (maxVersion) => startNodeServer({ maxVersion }, (s) => s.end('x')),
  }
  for (const [name, start] of Object.entries(servers)) {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
      env.test(env.title(`${maxVersion}, ${name} server: getTLSTicket() is each 'session''s ticket, the very one a resumption presents`), async (t) => {
        const srv = await start(maxVersion)
        const relay = await helloRecorder(srv.port)
        const visit = async (session) => {
          const c = track(ktls.connect({ host: HOST, port: relay.port, servername: 'localhost', ca: certs.ca.cert, maxVersion, session }))
          const seen = []
          c.on('session', (token) => seen.push({ token, ticket: c.getTLSTicket() }))
          t.is(c.getTLSTicket(), undefined, 'nothing before the handshake')
          let atEnd
          c.once('end', () => (atEnd = c.getTLSTicket()))
          c.resume()
          await onceEvent(c, 'end', { timeout: env.ms(10000) }) // TLS 1.3 tickets follow the handshake
          return { c, seen, atEnd, hello: relay.hellos.at(-1) }
        }
        const first = await visit()
        t.true(first.seen.length >= 1)
        for (const { ticket } of first.seen) t.true(Buffer.isBuffer(ticket) && ticket.length > 0)
        t.is(new Set(first.seen.map(({ ticket }) => ticket.toString('hex'))).size, first.seen.length, 'each session its own ticket')
        t.deepEqual(first.atEnd, first.seen.at(-1).ticket, 'afterwards: the newest')
        t.is(presentedTicket(first.hello), undefined, 'a first connection presents none')
        first.c.destroy()
        t.is(first.c.getTLSTicket(), null, 'null once destroyed, as node:tls')

        const { token, ticket } = first.seen.at(-1)
        const again = await visit(token)
        t.true(again.c.isSessionReused())
        t.deepEqual(presentedTicket(again.hello), ticket, 'the ClientHello presents the ticket reported')
        t.deepEqual(again.atEnd, again.seen.at(-1)?.ticket ?? ticket, 'a resumed connection: its newest session, else the one it resumed')
        again.c.destroy()
      })
    }
  }

  env.test(env.title("a server's getTLSTicket() is undefined, as node:tls's"), async (t) => {
    const theirs = []
    const srv = await startKtlsServer({}, (s) => theirs.push(s))
    const client = track(tls.connect({ host: HOST, port: srv.port, servername: 'localhost', ca: certs.ca.cert }))
    await onceEvent(client, 'secureConnect', { timeout: env.ms(10000) })
    const ours = await srv.nextSocket()
    t.is(ours.getTLSTicket(), undefined)
    const nodeServer = await startNodeServer()
    const c2 = track(tls.connect({ host: HOST, port: nodeServer.port, servername: 'localhost', ca: certs.ca.cert }))
    await onceEvent(c2, 'secureConnect', { timeout: env.ms(10000) })
    t.is((await nodeServer.nextPeer()).getTLSTicket(), undefined)
    client.destroy()
    c2.destroy()
  })
}

/** Resumption with OpenSSL at the other end, both ways, resumed connections offloaded like full ones. */
export function opensslSessionsSuite(env) {
  const certs = getCerts()
  for (const version of ['tls1_3', 'tls1_2']) {
    env.test(env.title(`${version}: openssl s_client resumes with a ktls server (-sess_out, -sess_in)`), async (t) => {
      const srv = await startKtlsServer({}, (s) => s.end('x'))
      const dir = mkdtempSync(join(tmpdir(), 'ktls-sess-'))
      onCleanup(() => rmSync(dir, { recursive: true, force: true }))
      const file = join(dir, 'session.pem')
      for (const args of [['-sess_out', file], ['-sess_in', file]]) {
        const client = startOpensslClient({ port: srv.port, caFile: certs.ca.certPath, version, args })
        client.stdin.end()
        // The server's answer then close_notify: s_client has read its tickets and saved the session.
        await client.exited
      }
      const [first, second] = [await srv.nextSocket(), await srv.nextSocket()]
      env.assertPath(t, second)
      t.deepEqual([first.isSessionReused(), second.isSessionReused()], [false, true])
    })

    env.test(env.title(`${version}: a ktls client resumes with openssl s_server`), async (t) => {
      const server = await startOpensslServer({ cert: certs.server.certPath, key: certs.server.keyPath, version, naccept: 2 })
      const secureContext = ktls.createSecureContext({ ca: certs.ca.cert })
      const visit = async () => {
        const c = track(ktls.connect({ host: HOST, port: server.port, servername: 'localhost', secureContext }))
        c.on('error', () => {})
        const session = onceEvent(c, 'session', { timeout: env.ms(10000) })
        await onceEvent(c, 'secureConnect', { timeout: env.ms(10000) })
        c.resume()
        await session // a TLS 1.3 ticket comes after the handshake
        return c
      }
      const first = await visit()
      t.false(first.isSessionReused())
      first.destroy()
      const second = await visit()
      env.assertPath(t, second)
      t.true(second.isSessionReused())
      second.destroy()
      await server.kill()
    })
  }
}

/** The order of a client's 'secureConnect' and 'session', and getSession() in 'secureConnect'. */
async function sessionOrder(lib, port, maxVersion) {
  const certs = getCerts()
  const order = []
  const c = track(lib.connect({ host: HOST, port, servername: 'localhost', ca: certs.ca.cert, maxVersion }))
  c.on('secureConnect', () => order.push(`secureConnect (getSession: ${Buffer.isBuffer(c.getSession())})`))
  c.on('session', () => order.push('session'))
  c.resume()
  await onceEvent(c, 'close', { timeout: 10000 })
  return order
}

export function sessionOrderSuite(env) {
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3']) {
    env.test(env.title(`${maxVersion}: 'session' follows 'secureConnect', where getSession() already answers, as node:tls`), async (t) => {
      const srv = await startNodeServer({ maxVersion }, (s) => s.end('x'))
      const ours = await sessionOrder(ktls, srv.port, maxVersion)
      const theirs = await sessionOrder(tls, srv.port, maxVersion)
      t.deepEqual(ours, theirs)
      t.is(ours[0], 'secureConnect (getSession: true)')
      t.true(ours.includes('session'))
    })
  }
}
