// A kernel that takes the ULP but then refuses a direction's keys. The
// guest's chacha20poly1305 module is unloaded after the capability probe saw
// it and the kernel's module loader is blocked, so TLS_TX fails for real
// after TCP_ULP succeeded. Only inside the UML guest: it changes the kernel.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { ktls } from '../helpers/ktls.mjs'
import { getCerts } from '../helpers/certs.mjs'
import { kernelTest } from '../helpers/kernel.mjs'
import { startNodeServer } from '../helpers/tls.mjs'
import { onceEvent, withTimeout } from '../helpers/stream.mjs'
import { cleanupAll, track } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const SUITE = 'TLS_CHACHA20_POLY1305_SHA256'
const MODULE = 'chacha20poly1305'
const MARKER = 'cleartext must never leave this process'

/** Unloads `module` and blocks on-demand loading; returns the undo. */
function withoutModule(module) {
  const loader = readFileSync('/proc/sys/kernel/modprobe', 'utf8').trim()
  writeFileSync('/proc/sys/kernel/modprobe', '/bin/false')
  try {
    execFileSync('rmmod', [module])
  } catch (err) {
    writeFileSync('/proc/sys/kernel/modprobe', loader)
    throw err
  }
  return () => {
    writeFileSync('/proc/sys/kernel/modprobe', loader)
    execFileSync(loader, [module])
  }
}

if (process.env.KTLS_HARNESS_GUEST === '1') {
  kernelTest('a direction the kernel refuses after TCP_ULP destroys the socket with ERR_KTLS_OFFLOAD_FAILED; nothing is sent in cleartext', async (t) => {
    const certs = getCerts()
    t.true(ktls.capabilities().ciphers[SUITE], 'the probe saw the cipher while its module was loaded')
    const srv = await startNodeServer({ ciphers: SUITE })
    const restore = withoutModule(MODULE)
    try {
      const c = track(ktls.connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', ca: certs.ca.cert, ciphers: SUITE }))
      c.write(MARKER) // buffered until the handshake ends, then refused
      const secured = onceEvent(c, 'secureConnect').then(() => true, () => false)
      const err = await onceEvent(c, 'error', { timeout: 30000 }).catch((e) => e)
      t.is(err.code, 'ERR_KTLS_OFFLOAD_FAILED')
      t.true(c.destroyed)
      t.false(await secured, "no 'secureConnect' for a connection that was never usable")
      // The peer finished its handshake but got not a byte of application data.
      const peer = await srv.nextPeer()
      const received = []
      peer.on('data', (d) => received.push(d))
      await withTimeout(onceEvent(peer, 'close').catch(() => {}), 10000, "node:tls peer 'close'")
      t.is(Buffer.concat(received).length, 0)
    } finally {
      restore()
      await srv.close()
    }
    // The module is back: the same suite offloads again.
    const srv2 = await startNodeServer({ ciphers: SUITE })
    const ok = track(ktls.connect({ host: '127.0.0.1', port: srv2.port, servername: 'localhost', ca: certs.ca.cert, ciphers: SUITE }))
    await onceEvent(ok, 'secureConnect', { timeout: 30000 })
    t.true(ok.ktls.tx && ok.ktls.rx)
    ok.destroy()
    await srv2.close()
  })
}
