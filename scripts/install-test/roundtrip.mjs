// Run inside a project that installed the packed tarballs: a TLS round trip
// through the installed `ktls` (its own server and client).
// usage: node roundtrip.mjs <native|fallback> <key.pem> <cert.pem>
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(`${process.cwd()}/`)
const ktls = require('ktls')
const [expect, keyPath, certPath] = process.argv.slice(2)
const key = readFileSync(keyPath)
const cert = readFileSync(certPath)

const caps = ktls.capabilities()
const fallback = /no ktls binary/.test(caps.reason ?? '')
if (fallback !== (expect === 'fallback')) {
  console.error(`expected the ${expect} package, capabilities() says: ${JSON.stringify(caps)}`)
  process.exit(1)
}
const server = ktls.createServer({ key, cert }, (socket) => socket.pipe(socket))
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const client = ktls.connect({ host: '127.0.0.1', port: server.address().port, servername: 'localhost', ca: cert })
await new Promise((resolve, reject) => {
  client.once('secureConnect', resolve)
  client.once('error', reject)
})
client.end('ping')
let echoed = ''
for await (const chunk of client) echoed += chunk
server.close()
if (echoed !== 'ping' || !(client instanceof ktls.KtlsSocket)) {
  console.error(`round trip failed: echoed ${JSON.stringify(echoed)}`)
  process.exit(1)
}
console.log(`[install-test] ${expect}: round trip ok (offload tx=${client.ktls.tx} rx=${client.ktls.rx}: ${client.ktls.reason ?? 'offloaded'})`)
