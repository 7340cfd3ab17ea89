// Run with NAPI_RS_NATIVE_LIBRARY_PATH naming a file that does not exist, as
// on a platform ktls ships no binary for: prints what ktls did, as JSON.
import { createRequire } from 'node:module'
import { getCerts } from './certs.mjs'

const require = createRequire(import.meta.url)
const ktls = require('../../dist/index.js')
const certs = getCerts()
const report = { capabilities: ktls.capabilities() }

const server = ktls.createServer({ key: certs.server.key, cert: certs.server.cert }, (s) => {
  report.serverStatus = { ...s.ktls }
  s.pipe(s)
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const client = ktls.connect({ host: '127.0.0.1', port: server.address().port, servername: 'localhost', ca: certs.ca.cert })
await new Promise((resolve, reject) => client.once('secureConnect', resolve).once('error', reject))
report.clientStatus = { ...client.ktls }
client.end('ping')
let echoed = ''
for await (const chunk of client) echoed += chunk
report.echoed = echoed
report.instanceOfKtlsSocket = client instanceof ktls.KtlsSocket
report.updateKeys = await client.updateKeys().then(() => 'resolved', (err) => err.code)
server.close()

const web = ktls.https.createServer({ key: certs.server.key, cert: certs.server.cert }, (req, res) => res.end(`hello ${req.url}`))
await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve))
report.https = await new Promise((resolve, reject) => {
  ktls.https
    .get({ host: '127.0.0.1', port: web.address().port, path: '/x', servername: 'localhost', ca: certs.ca.cert }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode, body }))
    })
    .on('error', reject)
})
web.close()
console.log(JSON.stringify(report))
