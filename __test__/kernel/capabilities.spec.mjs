// Kernel facts inside the harness guests (KTLS_REQUIRE=1: no skipping).
import { release } from 'node:os'
import { ktls } from '../helpers/ktls.mjs'
import { TLS13_SUITES } from '../helpers/peers.mjs'
import {
  kernelTest,
  kernelOptions,
  readTlsStat,
  statSnapshot,
  assertOffloaded,
  assertOffloadCount,
  assertOffloadReleased,
} from '../helpers/kernel.mjs'
import { startKtlsServer, ktlsConnect, nodeConnect, startNodeServer, exchange, closed, endAndClose } from '../helpers/tls.mjs'
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

kernelTest('capabilities() reports the tls ULP on the harness kernel', (t) => {
  const caps = ktls.capabilities()
  t.true(caps.ulp, `reason: ${caps.reason}`)
  t.is(caps.kernel, release())
  if (process.env.KTLS_HARNESS_KERNEL) t.is(caps.kernel, process.env.KTLS_HARNESS_KERNEL)
})

kernelTest('capabilities() reports all three TLS 1.3 suites as offloadable', (t) => {
  const { ciphers } = ktls.capabilities()
  for (const suite of TLS13_SUITES) t.true(ciphers[suite], suite)
})

// Checked against what the kernel accepts (found without ktls), not a version:
// distribution kernels backport.
for (const option of ['rekey', 'txZeroCopy', 'txMaxPayload', 'rxExpectNoPad']) {
  kernelTest(`capabilities().${option} agrees with the kernel, checked without ktls`, (t) => {
    const found = kernelOptions()
    t.log(`kernel ${ktls.capabilities().kernel}: ${JSON.stringify(found)}`)
    t.is(ktls.capabilities()[option], found[option])
  })
}

kernelTest("client with ktls 'require' connects with both directions offloaded", async (t) => {
  const srv = await startNodeServer()
  const before = statSnapshot()
  const c = await ktlsConnect({ port: srv.port, ktls: 'require' })
  assertOffloaded(t, c)
  assertOffloadCount(t, before, 1)
  t.not(readTlsStat(), null, '/proc/net/tls_stat exists once kTLS is in use')
  const peer = await srv.nextPeer()
  const r = await exchange(c, peer, 256 * 1024)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.is(r.aGot.sha256, r.bSent.sha256)
  await endAndClose(c)
  await assertOffloadReleased(t, before)
  await srv.close()
})

kernelTest("server with ktls 'require' serves with both directions offloaded", async (t) => {
  const srv = await startKtlsServer({ ktls: 'require' })
  const before = statSnapshot()
  const client = await nodeConnect({ port: srv.port })
  const s = await srv.nextSocket()
  assertOffloaded(t, s)
  assertOffloadCount(t, before, 1)
  const r = await exchange(client, s, 256 * 1024)
  t.is(r.bGot.sha256, r.aSent.sha256)
  t.is(r.aGot.sha256, r.bSent.sha256)
  const sClosed = closed(s)
  await endAndClose(client)
  await sClosed
  await assertOffloadReleased(t, before)
  await srv.close()
})
