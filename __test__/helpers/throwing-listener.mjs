// Run as a script: a ktls server whose second 'data' listener call throws.
// The client sends its second message only after the server answered the
// first, so that call comes straight out of a readiness report (the server's
// buffer is empty and flowing). Reports what the process and socket saw.
import { ktls } from './ktls.mjs'
import { getCerts } from './certs.mjs'

const certs = getCerts()
const socketErrors = []
let serverSide

process.once('uncaughtException', (err) => {
  setImmediate(() => {
    const result = { uncaught: err.message, socketErrors, destroyed: serverSide.destroyed }
    process.stdout.write(JSON.stringify(result))
    process.exit(0)
  })
})

const server = ktls.createServer({ key: certs.server.key, cert: certs.server.cert }, (s) => {
  serverSide = s
  s.on('error', (err) => socketErrors.push(err.code ?? err.message))
  let calls = 0
  s.on('data', () => {
    if (++calls === 1) return s.write('ok')
    throw new Error('thrown by a data listener')
  })
})
server.listen(0, '127.0.0.1', () => {
  const c = ktls.connect({ port: server.address().port, host: '127.0.0.1', servername: 'localhost', ca: certs.ca.cert }, () => {
    c.write('first')
  })
  c.once('data', () => c.write('second'))
})
