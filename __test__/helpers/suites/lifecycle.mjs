// Orderly shutdown and the unix-socket fallback, shared by
// __test__/unit/lifecycle.spec.mjs (userspace path) and the kernel harness
// (__test__/kernel/close.spec.mjs, handshake-edges.spec.mjs). Each export
// registers its tests for a tlsEnv (./env.mjs).
import tls from 'node:tls'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getCerts } from '../certs.mjs'
import { closeServer, startOpensslServer } from '../peers.mjs'
import { KiB, MiB, delay, expectedSha256, hashStream, writePayload } from '../stream.mjs'
import { startNodeServer, startKtlsServer, ktlsConnect, nodeConnect, collectErrors, exchange, closed, endAndClose } from '../tls.mjs'

const UP = { seed: 'half-close up' }
const DOWN = { seed: 'half-close down' }

// Who ends first (64 KiB, then end()), and who answers afterwards (1 MiB, then end()).
// `ours` are this package's sockets: no errors, and closed at the end.
const HALF_CLOSE = [
  {
    title: 'client end() half-closes: the server sees end and can still send (allowHalfOpen)',
    async connect(env, t) {
      const srv = await startNodeServer({ allowHalfOpen: true })
      const c = await ktlsConnect({ port: srv.port, allowHalfOpen: true })
      env.assertPath(t, c)
      const peer = await srv.nextPeer()
      return { srv, ours: [c], first: c, firstSeed: UP, second: peer, secondSeed: DOWN }
    },
  },
  {
    title: 'server end() half-closes: the client sees end and can still send (allowHalfOpen)',
    async connect(env, t) {
      const srv = await startKtlsServer({ allowHalfOpen: true })
      const client = await nodeConnect({ port: srv.port, allowHalfOpen: true })
      const s = await srv.nextSocket()
      env.assertPath(t, s)
      return { srv, ours: [s], first: s, firstSeed: DOWN, second: client, secondSeed: UP }
    },
  },
  {
    title: 'half-close works between client and server of this package',
    async connect(env, t) {
      const srv = await startKtlsServer({ allowHalfOpen: true })
      const c = await ktlsConnect({ port: srv.port, allowHalfOpen: true })
      const s = await srv.nextSocket()
      env.assertPath(t, c)
      env.assertPath(t, s)
      return { srv, ours: [c, s], first: c, firstSeed: UP, second: s, secondSeed: DOWN }
    },
  },
]

export function halfCloseSuite(env) {
  for (const row of HALF_CLOSE) {
    env.test(env.title(row.title), async (t) => {
      const { srv, ours, first, firstSeed, second, secondSeed } = await row.connect(env, t)
      const errors = ours.map(collectErrors)
      const secondGot = hashStream(second) // resolves on 'end'
      const firstGot = hashStream(first)
      await writePayload(first, 64 * KiB, { ...firstSeed, end: true })
      t.is((await secondGot).sha256, expectedSha256(64 * KiB, firstSeed))
      // The answer is written only after the first side's end: it must still be readable.
      await writePayload(second, 1 * MiB, { ...secondSeed, end: true })
      const answer = await firstGot
      t.is(answer.bytes, 1 * MiB)
      t.is(answer.sha256, expectedSha256(1 * MiB, secondSeed))
      await Promise.all(ours.map((s) => closed(s)))
      t.deepEqual(errors, ours.map(() => []))
      await srv.close()
    })
  }
}

// How the client goes away, and what openssl s_server must print: DONE only
// after a close_notify, ERROR on EOF without one.
const CLOSE_NOTIFY = [
  { title: 'client end() sends close_notify before closing', how: 'end' },
  { title: 'client destroy() closes without sending close_notify', how: 'destroy' },
]

export function closeNotifySuite(env) {
  const certs = getCerts()
  for (const { title, how } of CLOSE_NOTIFY) {
    env.test(env.title(title), async (t) => {
      const peer = await startOpensslServer({ cert: certs.server.certPath, key: certs.server.keyPath, quiet: false })
      try {
        let out = ''
        peer.stdout.on('data', (d) => (out += d.toString('latin1')))
        const c = await ktlsConnect({ port: peer.port })
        env.assertPath(t, c)
        await delay(env.ms(50, 100))
        c[how]()
        await peer.outputDone
        if (how === 'end') {
          t.regex(out, /^DONE$/m, 'openssl reports DONE only after a close_notify')
          t.notRegex(out, /^ERROR$/m)
          await closed(c)
        } else {
          t.notRegex(out, /^DONE$/m)
          t.regex(out, /^ERROR$/m, 'openssl sees EOF without close_notify')
          t.true(c.destroyed)
        }
      } finally {
        await peer.kill()
      }
    })
  }
}

export function unixSocketSuite(env) {
  const certs = getCerts()
  env.test("connect({ path }) with ktls 'auto' stays in userspace with a reason on a unix socket", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ktls-unix-'))
    const path = join(dir, 'tls.sock')
    const peers = []
    const server = tls.createServer({ key: certs.server.key, cert: certs.server.cert }, (s) => peers.push(s))
    await new Promise((r) => server.listen(path, r))
    try {
      const stat = env.stat()
      const c = await ktlsConnect({ path, host: undefined, port: undefined, ktls: 'auto' })
      t.false(c.ktls.tx, 'TCP_ULP cannot apply to a unix socket')
      t.false(c.ktls.rx)
      t.is(typeof c.ktls.reason, 'string')
      stat.count(t, 0)
      while (!peers.length) await delay(5)
      const r = await exchange(c, peers[0], 256 * KiB)
      t.is(r.bGot.sha256, r.aSent.sha256)
      t.is(r.aGot.sha256, r.bSent.sha256)
      await endAndClose(c)
    } finally {
      await closeServer(server)
      rmSync(dir, { recursive: true, force: true })
    }
  })
}
