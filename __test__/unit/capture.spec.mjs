// Packet-capture proof that application data never crosses loopback in
// cleartext on the userspace path (plus a self-test of the capture helper).
import test from 'ava'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { startCapture, captureContains, countOccurrences, tcpdumpAvailable } from '../helpers/capture.mjs'
import { MiB, expectedSha256, hashStream, onceEvent, writePayload } from '../helpers/stream.mjs'
import { listen, closeServer } from '../helpers/peers.mjs'
import { cleanupAll, track } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { captureSuite } from '../helpers/suites/capture.mjs'

test.after.always(cleanupAll)

test.serial('capture helper finds a marker sent in cleartext over plain TCP', async (t) => {
  t.true(tcpdumpAvailable(), 'tcpdump is required (apt-get install -y tcpdump)')
  const marker = Buffer.from(`PLAIN-${randomBytes(8).toString('hex')}`)
  const size = 1 * MiB
  const received = []
  const server = net.createServer((s) => received.push(hashStream(track(s))))
  const port = await listen(server)
  track(server)
  const cap = await startCapture({ port })
  const c = track(net.connect(port, '127.0.0.1'))
  await onceEvent(c, 'connect')
  await writePayload(c, size, { seed: 'plain', marker, end: true })
  while (!received.length) await new Promise((r) => setTimeout(r, 5))
  t.is((await received[0]).sha256, expectedSha256(size, { seed: 'plain', marker }))
  const res = await cap.stop()
  t.is(res.dropped, 0)
  t.is(res.holes, 0)
  t.true(captureContains(res, marker))
  t.is(countOccurrences(res.all, marker), size / (64 * 1024))
  await closeServer(server)
})

// Shared with the kernel harness (__test__/kernel/capture.spec.mjs).
captureSuite(tlsEnv('unit'))
