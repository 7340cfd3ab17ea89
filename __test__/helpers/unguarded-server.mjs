// A TLS server with no 'error' listener anywhere, under clients that reset,
// destroy or end as soon as the server's first bytes arrive (so every
// connection was secure, and offloaded where the kernel can), while half of
// the server sockets write to them again after they left. Prints { survived, sockets, offloaded } as JSON; a crash
// (an 'error' nobody could have listened for) ends it with a stack instead.
//   node unguarded-server.mjs ktls|tls   (KEY, CERT: PEM in the environment)
import net from 'node:net'
import tls from 'node:tls'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const ktls = require('../../dist/index.js')
const lib = process.argv[2] === 'ktls' ? ktls : tls
const CLIENTS = 60
let sockets = 0
let offloaded = 0
const server = lib.createServer({ key: process.env.KEY, cert: process.env.CERT }, (socket) => {
  sockets++
  if (socket.ktls?.tx && socket.ktls?.rx) offloaded++
  socket.write('hi')
  if (sockets % 2 === 0) setTimeout(() => socket.write('late'), 20)
})
server.listen(0, '127.0.0.1', async () => {
  const port = server.address().port
  for (let i = 0; i < CLIENTS; i++) {
    await new Promise((resolve) => {
      const raw = net.connect(port, '127.0.0.1')
      raw.on('error', () => {})
      const c = tls.connect({ socket: raw, rejectUnauthorized: false })
      c.once('data', () => {
        if (i % 3 === 0) raw.resetAndDestroy()
        else if (i % 3 === 1) c.destroy()
        else c.end()
        setTimeout(resolve, 5)
      })
      c.on('error', () => resolve())
    })
  }
  setTimeout(() => {
    console.log(JSON.stringify({ survived: true, sockets, offloaded }))
    process.exit(0)
  }, 500)
})
