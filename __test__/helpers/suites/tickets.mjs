// Session tickets under keys the application holds (ticketKeys,
// getTicketKeys, setTicketKeys, sessionTimeout), as node:tls: servers that
// share the keys (cluster workers, a fleet) resume each other's sessions,
// and a resumed connection is offloaded like a full one. node:tls is the
// client (its `session` option and 'session' event carry the ticket).
// Shared by __test__/unit/tickets.spec.mjs and __test__/kernel/tickets.spec.mjs.
import { randomBytes } from 'node:crypto'
import tls from 'node:tls'
import { getCerts } from '../certs.mjs'
import { onceEvent } from '../stream.mjs'
import { HOST, startKtlsServer } from '../tls.mjs'

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
