// Interop matrix: `mib` MiB each way per TLS 1.3 suite, this package against
// openssl s_server / s_client and node:tls, as client and as server. Shared by
// __test__/unit/interop-{openssl,node}.spec.mjs (userspace path, 8 MiB) and
// __test__/kernel/interop.spec.mjs (offloaded, 64 MiB, with tls_stat proof).
import { getCerts } from '../certs.mjs'
import { TLS13_SUITES, startOpensslServer, startOpensslClient } from '../peers.mjs'
import { MiB, expectedSha256, hashStream, hashExactly, writePayload } from '../stream.mjs'
import { startNodeServer, startKtlsServer, ktlsConnect, nodeConnect, collectErrors, exchange, closed, endAndClose } from '../tls.mjs'

const UP = { seed: 'client->server' }
const DOWN = { seed: 'server->client' }
const theServer = (env) => (env.kernel ? 'an offloaded server' : 'the server')

function logRate(t, n, started) {
  const s = (Date.now() - started) / 1000
  t.log(`${(2 * n) / MiB} MiB in ${s.toFixed(1)} s (${((2 * n) / MiB / s).toFixed(1)} MiB/s)`)
}

/** Our socket's view of the negotiated suite, and its data path. */
function assertSuite(env, t, sock, suite) {
  t.true(sock.encrypted)
  t.is(sock.getProtocol(), 'TLSv1.3')
  t.like(sock.getCipher(), { name: suite, standardName: suite, version: 'TLSv1.3' })
  env.assertPath(t, sock, suite)
}

// openssl peers talk through stdin/stdout. connect() resolves { ours (our
// socket), peer (the process), stop() } with the peer's side already running:
// it sends `peerSeed` and its stdout is hashed.
const OPENSSL = [
  {
    title: (env, mib, suite) => `${env.title('client')} exchanges ${mib} MiB each way with openssl s_server over ${suite}`,
    oursSeed: UP,
    peerSeed: DOWN,
    async connect(suite, n, env) {
      const certs = getCerts()
      const peer = await startOpensslServer({ cert: certs.server.certPath, key: certs.server.keyPath })
      // s_server: what we send comes out of its stdout; its stdin is sent to us.
      const peerGot = hashStream(peer.stdout)
      const peerSent = writePayload(peer.stdin, n, DOWN)
      const stat = env.stat()
      const ours = await ktlsConnect({ port: peer.port, ciphers: suite, ktls: 'auto' }).catch(async (e) => {
        await peer.kill()
        throw e
      })
      return { ours, peer, peerGot, peerSent, stat, stop: () => peer.kill() }
    },
  },
  {
    title: (env, mib, suite) => `openssl s_client exchanges ${mib} MiB each way with ${theServer(env)} over ${suite}`,
    oursSeed: DOWN,
    peerSeed: UP,
    async connect(suite, n, env) {
      const certs = getCerts()
      const srv = await startKtlsServer({ ciphers: suite, ktls: 'auto' })
      const stat = env.stat()
      const peer = startOpensslClient({ port: srv.port, caFile: certs.ca.certPath })
      const stop = async () => {
        await peer.kill()
        await srv.close()
      }
      const peerSent = writePayload(peer.stdin, n, { ...UP, end: true })
      const peerGot = hashStream(peer.stdout)
      const ours = await srv.nextSocket().catch(async (e) => {
        await stop()
        throw e
      })
      return { ours, peer, peerGot, peerSent, stat, stop }
    },
  },
]

export function opensslInteropSuite(env, { mib }) {
  const N = mib * MiB
  for (const suite of TLS13_SUITES) {
    for (const row of OPENSSL) {
      env.test(row.title(env, mib, suite), async (t) => {
        const { ours, peer, peerGot, peerSent, stat, stop } = await row.connect(suite, N, env)
        try {
          const errors = collectErrors(ours)
          t.like(ours.getCipher(), { standardName: suite, version: 'TLSv1.3' })
          env.assertPath(t, ours, suite)
          stat.count(t, 1)

          const started = Date.now()
          const oursGot = hashExactly(ours, N)
          await writePayload(ours, N, row.oursSeed)
          t.is((await oursGot).sha256, expectedSha256(N, row.peerSeed))
          await peerSent

          // Our close_notify: s_server answers with its own and exits 0, s_client exits 0.
          const oursClosed = closed(ours)
          ours.end()
          const got = await peerGot
          logRate(t, N, started)
          t.is(got.bytes, N)
          t.is(got.sha256, expectedSha256(N, row.oursSeed))
          t.deepEqual(await peer.exited, { code: 0, signal: null }, peer.stderr())
          await oursClosed
          t.deepEqual(errors, [])
          if (env.kernel) t.is(stat.decryptErrors(), 0)
          await stat.released(t)
        } finally {
          await stop()
        }
      })
    }
  }
}

// node:tls peers: connect() resolves { srv, a (the client), b (the server),
// ours (this package's sockets among them), theirs (the node:tls one, if any) }.
const NODE = [
  {
    title: (env, mib, suite) => `${env.title('client')} exchanges ${mib} MiB each way with a node:tls server over ${suite}`,
    async connect(suite, env) {
      const srv = await startNodeServer({ minVersion: 'TLSv1.3' })
      const stat = env.stat()
      // Only this package's side is restricted: it must offer exactly `suite`.
      const c = await ktlsConnect({ port: srv.port, ciphers: suite, ktls: 'auto' })
      const peer = await srv.nextPeer()
      return { srv, stat, a: c, b: peer, ours: [c], theirs: peer }
    },
  },
  {
    title: (env, mib, suite) => `node:tls client exchanges ${mib} MiB each way with ${theServer(env)} over ${suite}`,
    async connect(suite, env) {
      const srv = await startKtlsServer({ ciphers: suite, ktls: 'auto' })
      const stat = env.stat()
      const client = await nodeConnect({ port: srv.port, minVersion: 'TLSv1.3' })
      const s = await srv.nextSocket()
      return { srv, stat, a: client, b: s, ours: [s], theirs: client }
    },
  },
  {
    // Userspace only: in the kernel, client and server of this package are
    // covered by handshake-edges (both offloaded, two sockets in tls_stat).
    userspaceOnly: true,
    title: (env, mib, suite) => `client and server of this package exchange ${mib} MiB each way over ${suite}`,
    async connect(suite, env) {
      const srv = await startKtlsServer({ ciphers: suite, ktls: 'auto' })
      const stat = env.stat()
      const c = await ktlsConnect({ port: srv.port, ciphers: suite, ktls: 'auto' })
      const s = await srv.nextSocket()
      return { srv, stat, a: c, b: s, ours: [c, s] }
    },
  },
]

export function nodeInteropSuite(env, { mib }) {
  const N = mib * MiB
  for (const suite of TLS13_SUITES) {
    for (const row of NODE) {
      if (row.userspaceOnly && env.kernel) continue
      env.test(row.title(env, mib, suite), async (t) => {
        const { srv, stat, a, b, ours, theirs } = await row.connect(suite, env)
        const errors = ours.map(collectErrors)
        for (const sock of ours) assertSuite(env, t, sock, suite)
        if (theirs) t.is(theirs.getCipher().standardName, suite)
        stat.count(t, ours.length)

        const started = Date.now()
        const r = await exchange(a, b, N, { seedA: UP.seed, seedB: DOWN.seed })
        logRate(t, N, started)
        t.is(r.bGot.bytes, N)
        t.is(r.bGot.sha256, expectedSha256(N, UP))
        t.is(r.aGot.bytes, N)
        t.is(r.aGot.sha256, expectedSha256(N, DOWN))

        const bClosed = closed(b)
        await endAndClose(a)
        await bClosed
        t.deepEqual(errors, ours.map(() => []))
        await stat.released(t)
        await srv.close()
      })
    }
  }
}
