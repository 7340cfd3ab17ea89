// Our own KeyUpdates: socket.updateKeys() and the records-per-key limit,
// against openssl s_server, whose -msg trace shows every KeyUpdate it gets.
// The kernel suite runs on kernels that can rekey (6.14+) and ones that
// cannot; each test asserts the behaviour its kernel calls for (the
// capability probe decides, not the version). Shared by
// __test__/unit/key-lifecycle.spec.mjs and __test__/kernel/key-lifecycle.spec.mjs.
import { ktls } from '../ktls.mjs'
import { getCerts } from '../certs.mjs'
import { startOpensslServer, waitForOutput } from '../peers.mjs'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { collectErrors, closed, ktlsConnect, nodeConnect, startKtlsServer } from '../tls.mjs'
import { onceEvent } from '../stream.mjs'

const GOT_KEYUPDATE = /<<< TLS 1\.3, Handshake \[length 0005\], KeyUpdate/g
const certs = getCerts()

async function traced() {
  const peer = await startOpensslServer({ cert: certs.server.certPath, key: certs.server.keyPath, quiet: false, msg: true, unbuffered: true })
  peer.out = ''
  peer.stdout.on('data', (d) => (peer.out += d.toString('latin1')))
  return peer
}

async function seen(peer, marker) {
  await waitForOutput(peer.stdout, new RegExp(marker), { timeout: 60000 }).catch(() => {})
  return peer.out.includes(marker)
}

export function keyLifecycleSuite(env) {
  const rekeys = !env.kernel || ktls.capabilities().rekey

  for (const requestPeerUpdate of [true, false]) {
    const title = rekeys
      ? `updateKeys({ requestPeerUpdate: ${requestPeerUpdate} }) sends a KeyUpdate openssl follows; data flows both ways after it`
      : `updateKeys({ requestPeerUpdate: ${requestPeerUpdate} }) on a kernel that cannot rekey rejects with ERR_KTLS_KEY_UPDATE_UNSUPPORTED, sends nothing, and the connection goes on`
    env.test(env.title(title), async (t) => {
      const peer = await traced()
      try {
        const c = await ktlsConnect({ port: peer.port })
        env.assertPath(t, c)
        const errors = collectErrors(c)
        c.write('before-the-update\n')
        t.true(await seen(peer, 'before-the-update'))
        if (rekeys) {
          await c.updateKeys({ requestPeerUpdate })
          t.is(c.keyUpdatesSent, 1)
        } else {
          const err = await c.updateKeys({ requestPeerUpdate }).catch((e) => e)
          t.is(err?.code, 'ERR_KTLS_KEY_UPDATE_UNSUPPORTED')
          t.is(c.keyUpdatesSent, 0)
        }
        c.write('after-the-update\n')
        t.true(await seen(peer, 'after-the-update'), 's_server decrypts what follows')
        t.is((peer.out.match(GOT_KEYUPDATE) ?? []).length, rekeys ? 1 : 0)
        // s_server answers update_requested with its own KeyUpdate (the peer's next key, for us to follow).
        const got = onceEvent(c, 'data')
        peer.stdin.write('from-the-server\n')
        t.regex((await got).toString(), /from-the-server/)
        t.deepEqual(errors, [])
        c.destroy()
      } finally {
        await peer.kill()
      }
    })
  }

  env.test(env.title('updateKeys() on a TLS 1.2 connection rejects with ERR_TLS_INVALID_STATE'), async (t) => {
    const srv = await startKtlsServer({ maxVersion: 'TLSv1.2' })
    const c = await ktlsConnect({ port: srv.port })
    t.is(c.getProtocol(), 'TLSv1.2')
    const err = await c.updateKeys().catch((e) => e)
    t.is(err?.code, 'ERR_TLS_INVALID_STATE')
    c.destroy()
  })

  env.test(env.title('updateKeys() before the handshake rejects with ERR_TLS_INVALID_STATE'), async (t) => {
    const srv = await startKtlsServer()
    const c = ktls.connect({ port: srv.port, host: '127.0.0.1', ca: certs.ca.cert, servername: 'localhost' })
    const err = await c.updateKeys().catch((e) => e)
    t.is(err?.code, 'ERR_TLS_INVALID_STATE')
    await onceEvent(c, 'secureConnect')
    c.destroy()
  })

  if (!env.kernel) return

  const LIMIT = 64
  const WRITES = 300
  env.test(
    env.title(
      rekeys
        ? `recordLimit: the sending key is updated before it seals ${LIMIT} records, and every byte arrives`
        : `recordLimit on a kernel that cannot rekey: close_notify and ERR_KTLS_RECORD_LIMIT before the limit, nothing after it`,
    ),
    async (t) => {
      const peer = await traced()
      try {
        const c = await ktlsConnect({ port: peer.port, recordLimit: LIMIT })
        env.assertPath(t, c)
        c.setNoDelay(true)
        const failed = onceEvent(c, 'error').catch((e) => e)
        let written = 0
        for (let i = 0; i < WRITES && !c.destroyed; i++) {
          // One write per turn of the loop: one record each.
          await new Promise((resolve) => c.write(`line-${i}\n`, resolve))
          written++
        }
        if (rekeys) {
          t.true(await seen(peer, `line-${WRITES - 1}\n`), 'the last line arrives')
          for (let i = 0; i < WRITES; i++) if (!peer.out.includes(`line-${i}\n`)) t.fail(`line-${i} lost`)
          const updates = (peer.out.match(GOT_KEYUPDATE) ?? []).length
          t.true(updates >= Math.floor(WRITES / LIMIT), `${updates} KeyUpdates for ${WRITES} records`)
          t.is(c.keyUpdatesSent, updates)
          c.destroy()
        } else {
          const err = await failed
          t.is(err?.code, 'ERR_KTLS_RECORD_LIMIT')
          t.true(written < LIMIT, `stopped after ${written} writes`)
          await closed(c)
          t.false(peer.out.includes(`line-${LIMIT}\n`))
        }
      } finally {
        await peer.kill()
      }
    },
  )

  env.test(
    env.title(
      rekeys
        ? `recordLimit counts sendFile's records too: keys change mid-file and node:tls receives it intact`
        : 'recordLimit counts sendFile\'s records too: the send stops with ERR_KTLS_RECORD_LIMIT before the limit',
    ),
    async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'ktls-limit-'))
      const file = join(dir, 'file')
      const data = randomBytes(3 * 1024 * 1024 + 5)
      writeFileSync(file, data)
      const srv = await startKtlsServer({ recordLimit: LIMIT })
      const c = await nodeConnect({ port: srv.port })
      const s = await srv.nextSocket()
      env.assertPath(t, s)
      const received = []
      c.on('data', (d) => received.push(d))
      const outcome = await s.sendFile(file).then(
        (bytes) => ({ bytes }),
        (err) => ({ err }),
      )
      if (rekeys) {
        t.is(outcome.bytes, data.length)
        while (Buffer.concat(received).length < data.length) await new Promise((r) => setTimeout(r, 20))
        t.true(Buffer.concat(received).equals(data), 'node:tls decrypted every record under the right key')
        t.true(s.keyUpdatesSent >= 2, `${s.keyUpdatesSent} KeyUpdates for ${Math.ceil(data.length / 16384)} records`)
      } else {
        t.is(outcome.err?.code, 'ERR_KTLS_RECORD_LIMIT')
        await closed(c)
        const got = Buffer.concat(received)
        t.true(got.length < LIMIT * 16384, `${got.length} bytes: fewer records than the limit`)
        t.true(got.equals(data.subarray(0, got.length)), 'what arrived is the start of the file')
      }
      c.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  )

  env.test(
    env.title(
      rekeys
        ? 'requireKeyUpdate: TLS 1.3 is offloaded on a kernel that can rekey'
        : 'requireKeyUpdate: TLS 1.3 stays in userspace on a kernel that cannot rekey, and says why',
    ),
    async (t) => {
      const srv = await startKtlsServer({ requireKeyUpdate: true })
      const c = await ktlsConnect({ port: srv.port, requireKeyUpdate: true })
      const s = await srv.nextSocket()
      for (const sock of [c, s]) {
        t.is(sock.ktls.tx, rekeys)
        t.is(sock.ktls.rx, rekeys)
        if (!rekeys) t.regex(sock.ktls.reason, /requireKeyUpdate/)
      }
      const got = onceEvent(s, 'data')
      c.write('still works')
      t.is((await got).toString(), 'still works')
      c.destroy()
    },
  )
}
