// The kernel smoke test: no handshake, just the binding and the kernel.
// Both ends of a loopback pair get kernel TLS with the same known key; a
// message goes through the kernel's crypto, and the read-back of TCP_ULP
// and TLS_TX/TLS_RX (checked by the binding) proves the kernel holds it.
import { once } from 'node:events'
import net from 'node:net'
import { createRequire } from 'node:module'
import { kernelTest, readTlsStat, tlsStatDelta } from '../helpers/kernel.mjs'
import { TLS13_SUITES } from '../helpers/peers.mjs'
// A wrong key on one end is covered by kernel/faults.spec.mjs (tampered records: EBADMSG).

const binding = createRequire(import.meta.url)('../../binding/index.js')

async function loopbackPair() {
  const server = net.createServer({ pauseOnConnect: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = net.connect(server.address().port, '127.0.0.1')
  const connected = once(client, 'connect')
  const [accepted] = await once(server, 'connection')
  // Listened for before the accept: the client's 'connect' may come first.
  await connected
  server.close()
  return { client, accepted }
}

for (const cipher of TLS13_SUITES) {
  kernelTest(`a message crosses the kernel's ${cipher} when both ends hold the same fixed key`, async (t) => {
    const { client, accepted } = await loopbackPair()
    const before = readTlsStat()
    t.is(binding.offloadWithFixedKey(client._handle.fd, cipher, 0x42).ulp, 'tls')
    t.is(binding.offloadWithFixedKey(accepted._handle.fd, cipher, 0x42).ulp, 'tls')
    const during = tlsStatDelta(before, readTlsStat())
    t.is(during.TlsCurrTxSw, 2, 'both sockets count as software kTLS TX')
    t.is(during.TlsCurrRxSw, 2, 'both sockets count as software kTLS RX')

    const message = `hello through the kernel with ${cipher}`
    client.write(message)
    accepted.resume()
    const [chunk] = await once(accepted, 'data')
    t.is(chunk.toString(), message)
    client.destroy()
    accepted.destroy()
  })
}

kernelTest('an unknown suite name is refused with ERR_INVALID_ARG_VALUE', async (t) => {
  const { client, accepted } = await loopbackPair()
  const err = t.throws(() => binding.offloadWithFixedKey(client._handle.fd, 'TLS_AES_128_CCM_SHA256', 1))
  t.is(err.code, 'ERR_INVALID_ARG_VALUE')
  client.destroy()
  accepted.destroy()
})
