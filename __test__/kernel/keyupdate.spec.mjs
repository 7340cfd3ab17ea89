// TLS 1.3 KeyUpdate from the peer mid-transfer. openssl s_server (non-quiet)
// sends a KeyUpdate when it reads exactly "k\n" (update_not_requested) or
// "K\n" (update_requested) from stdin. Linux >= 6.14 can rekey kTLS
// (TLS_RX/TLS_TX again after EKEYEXPIRED); older kernels cannot, and the
// package must then fail with ERR_KTLS_KEY_UPDATE_UNSUPPORTED rather than
// deliver data decrypted with stale keys.
import test from 'ava'
import { getCerts } from '../helpers/certs.mjs'
import { startOpensslServer, waitForOutput } from '../helpers/peers.mjs'
import { CHUNK, MiB, delay, expectedSha256, hashExactly, withTimeout, writePayload } from '../helpers/stream.mjs'
import { kernelTest, statSnapshot, tlsStatDelta, assertOffloaded } from '../helpers/kernel.mjs'
import { ktlsConnect, closed, collectErrors } from '../helpers/tls.mjs'
import { ktls } from '../helpers/ktls.mjs'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const certs = getCerts()
const HALF = 2 * MiB
const DOWN = { seed: 'key update down', hex: true } // hex: s_server must not see command letters
const SENT_KEYUPDATE = />>> TLS 1\.3, Handshake \[length 0005\], KeyUpdate/
const GOT_KEYUPDATE = /<<< TLS 1\.3, Handshake \[length 0005\], KeyUpdate/

async function startKeyUpdatePeer() {
  const peer = await startOpensslServer({
    cert: certs.server.certPath,
    key: certs.server.keyPath,
    quiet: false,
    msg: true,
    unbuffered: true,
  })
  peer.out = ''
  peer.stdout.on('data', (d) => (peer.out += d.toString('latin1')))
  return peer
}

// Sends the first half, waits until the client has all of it (so s_server's
// stdin pipe is empty), then has s_server send a KeyUpdate, and returns once
// s_server reports having sent it.
async function firstHalfThenKeyUpdate(peer, progress, command) {
  await writePayload(peer.stdin, HALF, DOWN)
  await withTimeout(
    (async () => {
      while (progress.received < HALF) await delay(10)
    })(),
    300000,
    'first half',
  )
  peer.stdin.write(`${command}\n`)
  await waitForOutput(peer.stdout, SENT_KEYUPDATE, { timeout: 60000 }).catch(() => {})
  if (!SENT_KEYUPDATE.test(peer.out)) throw new Error(`s_server did not send a KeyUpdate:\n${peer.out.slice(-2000)}`)
}

async function rekeyCase(t, command) {
  const peer = await startKeyUpdatePeer()
  try {
    const before = statSnapshot()
    const c = await ktlsConnect({ port: peer.port })
    assertOffloaded(t, c)
    const errors = collectErrors(c)
    const progress = { received: 0 }
    const got = hashExactly(c, 2 * HALF, { onBytes: (b) => (progress.received = b) })
    await firstHalfThenKeyUpdate(peer, progress, command)
    await writePayload(peer.stdin, HALF, { ...DOWN, startChunk: HALF / CHUNK })
    const r = await got
    t.is(r.sha256, expectedSha256(2 * HALF, DOWN), 'stream intact across the KeyUpdate')

    // Our side must still be able to send; for update_requested our own
    // KeyUpdate has to precede this data and s_server must decrypt it.
    const END = `${command}-done-${Date.now()}-END`
    c.write(END)
    await waitForOutput(peer.stdout, new RegExp(END), { timeout: 60000 }).catch(() => {})
    t.true(peer.out.includes(END), 's_server received our data after the KeyUpdate')
    t.notRegex(peer.out, /^ERROR$/m)
    if (command === 'K') t.regex(peer.out, GOT_KEYUPDATE, 'we answered update_requested with our own KeyUpdate')

    const d = tlsStatDelta(before, statSnapshot())
    t.true((d.TlsRxRekeyReceived ?? 0) >= 1, 'kernel saw the KeyUpdate')
    t.true((d.TlsRxRekeyOk ?? 0) >= 1, 'RX rekeyed in the kernel')
    t.is(d.TlsRxRekeyError ?? 0, 0)
    if (command === 'K') t.true((d.TlsTxRekeyOk ?? 0) >= 1, 'TX rekeyed in the kernel')
    t.is(d.TlsTxRekeyError ?? 0, 0)
    t.is(d.TlsDecryptError ?? 0, 0)

    const cClosed = closed(c)
    c.end()
    await peer.exited
    await cClosed
    t.deepEqual(errors, [])
  } finally {
    await peer.kill()
  }
}

async function noRekeyCase(t, command) {
  const peer = await startKeyUpdatePeer()
  try {
    const c = await ktlsConnect({ port: peer.port })
    assertOffloaded(t, c)
    const progress = { received: 0 }
    let soFar
    const got = hashExactly(c, 2 * HALF, {
      onBytes: (b, h) => {
        progress.received = b
        soFar = h
      },
    })
    const outcome = got.then(
      () => null,
      (e) => e,
    )
    await firstHalfThenKeyUpdate(peer, progress, command)
    // Records under the new key are already queued behind the KeyUpdate.
    await writePayload(peer.stdin, HALF, { ...DOWN, startChunk: HALF / CHUNK }).catch(() => {})
    const err = await withTimeout(outcome, 120000, 'client outcome')
    t.truthy(err, 'the stream must not complete on a kernel that cannot rekey')
    t.is(err?.code, 'ERR_KTLS_KEY_UPDATE_UNSUPPORTED')
    t.is(progress.received, HALF, 'nothing after the KeyUpdate may be delivered')
    t.is(soFar.copy().digest('hex'), expectedSha256(HALF, DOWN), 'the delivered half is intact')
    await closed(c)
  } finally {
    await peer.kill()
  }
}

// One test per KeyUpdate kind; the expected outcome depends on the kernel
// (the harness forbids skipped tests, so both kernels run both tests).
for (const [command, kind] of [
  ['k', 'update_not_requested'],
  ['K', 'update_requested'],
]) {
  kernelTest(
    `peer KeyUpdate (${kind}) mid-transfer keeps the stream intact where the kernel can rekey and fails with ERR_KTLS_KEY_UPDATE_UNSUPPORTED without corrupting data elsewhere`,
    async (t) => {
      const { rekey } = ktls.capabilities()
      t.log(`kernel ${process.env.KTLS_HARNESS_KERNEL || 'host'}: rekey ${rekey ? 'expected' : 'not supported'} (probed)`)
      if (rekey) await rekeyCase(t, command)
      else await noRekeyCase(t, command)
    },
  )
}
