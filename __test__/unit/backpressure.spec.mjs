// Flow control on the userspace path with 32 MiB in flight and a paused reader.
import test from 'ava'
import { MiB, delay, expectedSha256, hashExactly, writePayload } from '../helpers/stream.mjs'
import { startNodeServer, startKtlsServer, ktlsConnect, nodeConnect, collectErrors, endAndClose } from '../helpers/tls.mjs'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const N = 32 * MiB
const PAUSE_MS = 1500
const DATA = { seed: 'backpressure' }

test('client write() reports backpressure while the server is not reading', async (t) => {
  const srv = await startNodeServer({}, (s) => s.pause())
  const c = await ktlsConnect({ port: srv.port })
  const peer = await srv.nextPeer()
  const errors = collectErrors(c)
  let accepted = 0
  const writing = writePayload(c, N, { ...DATA, onProgress: (b) => (accepted = b) })
  await delay(PAUSE_MS)
  const acceptedWhilePaused = accepted
  const bufferedWhilePaused = c.writableLength
  const got = hashExactly(peer, N)
  peer.resume()
  const sent = await writing
  t.is((await got).sha256, expectedSha256(N, DATA))
  t.true(sent.writeReturnedFalse, 'write() never returned false')
  t.true(acceptedWhilePaused < 16 * MiB, `writer pushed ${acceptedWhilePaused} bytes into a paused peer`)
  t.true(bufferedWhilePaused <= 4 * MiB, `writableLength ${bufferedWhilePaused} while paused`)
  t.true(sent.maxWritableLength <= 4 * MiB, `max writableLength ${sent.maxWritableLength}`)
  await endAndClose(c)
  t.deepEqual(errors, [])
  await srv.close()
})

test('server stops pulling from the network while its reader is paused', async (t) => {
  const srv = await startKtlsServer({}, (s) => s.pause())
  const client = await nodeConnect({ port: srv.port })
  const s = await srv.nextSocket()
  const errors = collectErrors(s)
  let accepted = 0
  const writing = writePayload(client, N, { ...DATA, onProgress: (b) => (accepted = b) })
  await delay(PAUSE_MS)
  const acceptedWhilePaused = accepted
  const bufferedWhilePaused = s.readableLength
  const got = hashExactly(s, N)
  s.resume()
  const sent = await writing
  t.is((await got).sha256, expectedSha256(N, DATA))
  t.true(sent.writeReturnedFalse, "the node:tls client's write() never returned false")
  t.true(acceptedWhilePaused < 16 * MiB, `client pushed ${acceptedWhilePaused} bytes into a paused server`)
  t.true(bufferedWhilePaused <= 4 * MiB, `server buffered ${bufferedWhilePaused} bytes for a paused reader`)
  await endAndClose(client)
  t.deepEqual(errors, [])
  await srv.close()
})

test('a slow reader still receives every byte in order', async (t) => {
  const srv = await startKtlsServer()
  const c = await ktlsConnect({ port: srv.port })
  const s = await srv.nextSocket()
  // Reader alternates 200 ms pauses with short bursts while 8 MiB flows.
  const size = 8 * MiB
  const got = hashExactly(s, size)
  let stop = false
  const toggler = (async () => {
    while (!stop) {
      s.pause()
      await delay(200)
      s.resume()
      await delay(20)
    }
  })()
  await writePayload(c, size, DATA)
  const r = await got
  stop = true
  await toggler
  s.resume()
  t.is(r.sha256, expectedSha256(size, DATA))
  await endAndClose(c)
  await srv.close()
})
