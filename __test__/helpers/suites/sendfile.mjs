// socket.sendFile(): a file range in order with the socket's writes. In the
// kernel suites the server's TX is offloaded, so sendfile(2) moves the file
// (counted at the binding); on this host the userspace path reads and writes.
// A socket without TLS (the benchmark mode) uses sendfile(2) everywhere.
// Shared by __test__/unit/sendfile.spec.mjs and __test__/kernel/sendfile.spec.mjs.
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ktls } from '../ktls.mjs'
import { getCerts } from '../certs.mjs'
import { countFds, settleFds } from '../fds.mjs'
import { countSendfile } from '../sendfile-count.mjs'
import { track } from '../cleanup.mjs'
import { delay, hashExactly, withTimeout } from '../stream.mjs'
import { HOST, closed, ktlsConnect, startKtlsServer, trackClose } from '../tls.mjs'


const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex')

function tempDir(t) {
  const dir = fs.mkdtempSync(join(tmpdir(), 'ktls-sendfile-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function writeFile(dir, name, bytes) {
  const path = join(dir, name)
  fs.writeFileSync(path, bytes)
  return path
}

/** A file of `size` zero bytes that takes no room (a hole). */
function sparseFile(dir, name, size) {
  const path = join(dir, name)
  fs.closeSync(fs.openSync(path, 'w'))
  fs.truncateSync(path, size)
  return path
}

/** A ktls server socket and its client, both secure; `fds`: this process's count before they connected. */
async function tlsPair(t) {
  const srv = await startKtlsServer()
  t.teardown(() => srv.close())
  const fds = countFds()
  const client = await ktlsConnect({ port: srv.port })
  const server = await srv.nextSocket()
  t.teardown(() => closeBoth(client, server))
  return { client, server, fds }
}

/** A server socket without TLS (benchmark mode) and a plain TCP client. */
async function plainPair(t) {
  const srv = await startKtlsServer({ unencryptedBenchmarkOnly: true })
  t.teardown(() => srv.close())
  const client = trackClose(track(net.connect(srv.port, HOST)))
  const server = await srv.nextSocket()
  t.teardown(() => closeBoth(client, server))
  return { client, server }
}

/** Runs before the server's close (teardowns run last first), which waits for its connections. */
function closeBoth(client, server) {
  client.destroy()
  server.destroy()
}

/** Resolves once `n` bytes or more arrived. */
function received(socket, n) {
  return new Promise((resolve, reject) => {
    let bytes = 0
    const onData = (chunk) => {
      bytes += chunk.length
      if (bytes < n) return
      socket.off('data', onData)
      socket.pause()
      resolve(bytes)
    }
    socket.on('data', onData)
    socket.once('error', reject)
  })
}

const codeOf = (promise) =>
  promise.then(
    () => 'resolved',
    (err) => err.code,
  )

export function sendfileSuite(env) {
  /** In the kernel suites the server's records are the kernel's, so sendfile(2) must have run. */
  const expectKernelSends = (t, counter, n) => {
    if (env.kernel) t.is(counter.made, n, 'sendfile(2) senders')
    else if (env.userspaceHost) t.is(counter.made, 0, 'the userspace path reads and writes')
  }

  env.serial(env.title('sendFile sends files of 0, 1, 16383, 16384, 16385 bytes and 3 MiB whole, between the writes around it'), async (t) => {
    t.timeout(env.ms(20000))
    const dir = tempDir(t)
    const stat = env.stat()
    const counter = countSendfile(t)
    const { client, server } = await tlsPair(t)
    env.assertPath(t, server)
    const sizes = [0, 1, 16383, 16384, 16385, 3 * MiB]
    const expected = []
    const sends = []
    for (const size of sizes) {
      const bytes = randomBytes(size)
      const path = writeFile(dir, `f${size}`, bytes)
      const head = Buffer.from(`<${size}>`)
      server.write(head)
      sends.push(server.sendFile(path))
      expected.push(head, bytes)
    }
    server.write('</>')
    expected.push(Buffer.from('</>'))
    const whole = Buffer.concat(expected)
    const got = await withTimeout(hashExactly(client, whole.length), env.ms(15000), 'client read')
    t.is(got.sha256, sha256(whole))
    t.deepEqual(await Promise.all(sends), sizes)
    expectKernelSends(t, counter, sizes.length)
    t.true(server.bytesWritten >= whole.length, 'bytesWritten counts the file bytes')
    stat.count(t, 2)
  })

  env.serial(env.title('sendFile takes a path, a descriptor or a FileHandle, with offset and length, and leaves given files open'), async (t) => {
    t.timeout(env.ms(15000))
    const dir = tempDir(t)
    const bytes = randomBytes(100 * KiB)
    const path = writeFile(dir, 'file', bytes)
    const { client, server } = await tlsPair(t)
    const fd = fs.openSync(path, 'r')
    t.teardown(() => fs.closeSync(fd))
    const handle = await fs.promises.open(path, 'r')
    t.teardown(() => handle.close())
    const sends = [
      server.sendFile(fd, { offset: 1000, length: 5000 }),
      server.sendFile(handle, { offset: 99 * KiB }),
      server.sendFile(path, { offset: 7, length: 0 }),
      server.sendFile(new URL(`file://${path}`), { length: 10 }),
    ]
    const expected = Buffer.concat([bytes.subarray(1000, 6000), bytes.subarray(99 * KiB), bytes.subarray(0, 10)])
    const got = await withTimeout(hashExactly(client, expected.length), env.ms(10000), 'client read')
    t.is(got.sha256, sha256(expected))
    t.deepEqual(await Promise.all(sends), [5000, KiB, 0, 10])
    t.true(fs.fstatSync(fd).isFile(), 'the descriptor is still open')
    t.is((await handle.stat()).size, bytes.length, 'the FileHandle is still open')
  })

  env.serial(env.title('a sendFile issued before the handshake ends goes out after it, in order'), async (t) => {
    t.timeout(env.ms(15000))
    const dir = tempDir(t)
    const bytes = randomBytes(200 * KiB)
    const path = writeFile(dir, 'early', bytes)
    const srv = await startKtlsServer()
    t.teardown(() => srv.close())
    const certs = getCerts()
    const client = trackClose(track(ktls.connect({ host: HOST, port: srv.port, servername: 'localhost', ca: certs.ca.cert })))
    client.write('early:')
    const sending = client.sendFile(path)
    client.write(':late')
    const server = await srv.nextSocket()
    t.teardown(() => closeBoth(client, server))
    const expected = Buffer.concat([Buffer.from('early:'), bytes, Buffer.from(':late')])
    const got = await withTimeout(hashExactly(server, expected.length), env.ms(10000), 'server read')
    t.is(got.sha256, sha256(expected))
    t.is(await sending, bytes.length)
  })

  env.serial(env.title('sendFile refuses a range past the end (ERR_KTLS_SENDFILE_RANGE), bad arguments and non-files; the socket carries on'), async (t) => {
    t.timeout(env.ms(15000))
    const dir = tempDir(t)
    const path = writeFile(dir, 'small', randomBytes(1000))
    const { client, server } = await tlsPair(t)
    t.is(await codeOf(server.sendFile(path, { offset: 10, length: 991 })), 'ERR_KTLS_SENDFILE_RANGE')
    t.is(await codeOf(server.sendFile(path, { offset: 1001 })), 'ERR_KTLS_SENDFILE_RANGE')
    t.is(await codeOf(server.sendFile(path, { offset: -1 })), 'ERR_OUT_OF_RANGE')
    t.is(await codeOf(server.sendFile(path, { length: 1.5 })), 'ERR_OUT_OF_RANGE')
    t.is(await codeOf(server.sendFile(path, { offset: '1' })), 'ERR_INVALID_ARG_TYPE')
    t.is(await codeOf(server.sendFile({})), 'ERR_INVALID_ARG_TYPE')
    t.is(await codeOf(server.sendFile(join(dir, 'missing'))), 'ENOENT')
    t.is(await codeOf(server.sendFile(dir)), 'EISDIR')
    server.write('still here')
    const got = await withTimeout(hashExactly(client, 10), env.ms(5000), 'client read')
    t.is(got.sha256, sha256(Buffer.from('still here')))
    t.false(server.destroyed)
  })

  env.serial(env.title('a peer that leaves mid-file: the send rejects with EPIPE or ECONNRESET, the file is closed, no fd leak'), async (t) => {
    t.timeout(env.ms(20000))
    const dir = tempDir(t)
    const path = sparseFile(dir, 'big', 64 * MiB)
    const { client, server, fds } = await tlsPair(t)
    const sending = server.sendFile(path)
    await withTimeout(received(client, 64 * KiB), env.ms(5000), 'first bytes')
    client.destroy()
    const code = await withTimeout(codeOf(sending), env.ms(10000), 'send to settle')
    t.true(code === 'EPIPE' || code === 'ECONNRESET', `rejected with ${code}`)
    await closed(server, env.ms(5000))
    t.true(await settleFds(fds) <= fds, 'the connection and the file released (descriptors other tests left may close meanwhile)')
  })

  env.serial(env.title('a file truncated while it is sent rejects with ERR_KTLS_SENDFILE_TRUNCATED, never hangs'), async (t) => {
    t.timeout(env.ms(20000))
    const dir = tempDir(t)
    const path = sparseFile(dir, 'shrinking', 32 * MiB)
    const { client, server } = await tlsPair(t)
    client.pause()
    const sending = server.sendFile(path)
    await delay(env.ms(300, 1000)) // the peer's window and our send buffer fill up
    fs.truncateSync(path, MiB)
    client.resume()
    client.on('error', () => {})
    t.is(await withTimeout(codeOf(sending), env.ms(10000), 'send to settle'), 'ERR_KTLS_SENDFILE_TRUNCATED')
    await closed(server, env.ms(5000))
    t.true(server.destroyed, 'the byte stream is broken: the socket is closed')
  })

  env.serial(env.title('destroying the socket mid-send settles the send (ECANCELED) and releases the file'), async (t) => {
    t.timeout(env.ms(20000))
    const dir = tempDir(t)
    const path = sparseFile(dir, 'stalled', 32 * MiB)
    const { client, server, fds } = await tlsPair(t)
    client.pause()
    const sending = server.sendFile(path)
    const after = server.sendFile(path, { length: 10 }) // queued behind it
    await delay(env.ms(200, 1000))
    server.destroy()
    t.is(await withTimeout(codeOf(sending), env.ms(5000), 'send to settle'), 'ECANCELED')
    t.not(await withTimeout(codeOf(after), env.ms(5000), 'queued send to settle'), 'resolved')
    client.destroy()
    t.true(await settleFds(fds) <= fds, 'the connection and the files released (descriptors other tests left may close meanwhile)')
  })

  env.serial(env.title('sends to peers that stop reading do not hold the threadpool: file system calls go on'), async (t) => {
    t.timeout(env.ms(30000))
    const dir = tempDir(t)
    const path = sparseFile(dir, 'stalled', 64 * MiB)
    const counter = countSendfile(t)
    const stalled = []
    for (let i = 0; i < 8; i++) {
      const pair = await (env.kernel ? tlsPair(t) : plainPair(t))
      pair.client.pause()
      stalled.push(pair.server.sendFile(path).catch((err) => err.code))
    }
    await delay(env.ms(300, 1000)) // every send buffer is full by now
    const began = Date.now()
    await withTimeout(Promise.all(Array.from({ length: 16 }, () => fs.promises.stat(path))), env.ms(2000), 'fs calls beside 8 stalled sends')
    t.log(`16 stat() calls took ${Date.now() - began} ms beside 8 stalled sends`)
    t.is(counter.made, 8, 'all eight went through sendfile(2)')
  })

  env.serial(env.title('sendFile reaches offsets past 4 GiB (a sparse file)'), async (t) => {
    t.timeout(env.ms(15000))
    const dir = tempDir(t)
    const path = sparseFile(dir, 'huge', 4 * GiB + MiB)
    const marker = randomBytes(1000)
    const far = randomBytes(777)
    const fd = fs.openSync(path, 'r+')
    fs.writeSync(fd, marker, 0, marker.length, 4 * GiB - 300) // across the 32-bit boundary
    fs.writeSync(fd, far, 0, far.length, 4 * GiB + 12345)
    fs.closeSync(fd)
    const { client, server } = await tlsPair(t)
    const sends = [server.sendFile(path, { offset: 4 * GiB - 300, length: 1000 }), server.sendFile(path, { offset: 4 * GiB + 12345, length: 777 })]
    const got = await withTimeout(hashExactly(client, 1777), env.ms(10000), 'client read')
    t.is(got.sha256, sha256(Buffer.concat([marker, far])))
    t.deepEqual(await Promise.all(sends), [1000, 777])
  })

  env.serial(env.title('zeroCopy: true sends the same bytes, also past one 16 MiB slice'), async (t) => {
    t.timeout(env.ms(30000))
    const dir = tempDir(t)
    const bytes = randomBytes(2 * MiB + 3)
    const path = writeFile(dir, 'zc', bytes)
    const counter = countSendfile(t)
    const { client, server } = await tlsPair(t)
    const sending = server.sendFile(path, { zeroCopy: true })
    const got = await withTimeout(hashExactly(client, bytes.length), env.ms(10000), 'client read')
    t.is(got.sha256, sha256(bytes))
    t.is(await sending, bytes.length)
    const several = 33 * MiB // more than one 16 MiB slice
    const long = server.sendFile(sparseFile(dir, 'holes', several), { zeroCopy: true })
    const zeros = await withTimeout(hashExactly(client, several), env.ms(20000), 'long read')
    t.is(zeros.sha256, sha256(Buffer.alloc(several)))
    t.is(await long, several)
    expectKernelSends(t, counter, 2)
    if (env.kernel) t.true(ktls.capabilities().txZeroCopy, 'the harness kernels know TLS_TX_ZEROCOPY_RO')
  })

  env.serial(env.title('on a socket without TLS (benchmark mode) sendFile uses sendfile(2): intact, truncation and a leaving peer coded'), async (t) => {
    t.timeout(env.ms(30000))
    const dir = tempDir(t)
    const bytes = randomBytes(3 * MiB + 1)
    const path = writeFile(dir, 'plain', bytes)
    const counter = countSendfile(t)
    const { client, server } = await plainPair(t)
    const sending = server.sendFile(path, { offset: 1 })
    const got = await withTimeout(hashExactly(client, bytes.length - 1), env.ms(10000), 'client read')
    t.is(got.sha256, sha256(bytes.subarray(1)))
    t.is(await sending, bytes.length - 1)
    t.is(counter.made, 1)

    const several = 40 * MiB + 7 // more than one 16 MiB slice
    const holes = sparseFile(dir, 'holes', several)
    const long = server.sendFile(holes)
    const zeros = await withTimeout(hashExactly(client, several), env.ms(20000), 'long read')
    t.is(zeros.sha256, sha256(Buffer.alloc(several)))
    t.is(await long, several)

    const shrinking = sparseFile(dir, 'shrinking', 32 * MiB)
    const second = await plainPair(t)
    second.client.pause()
    const truncated = second.server.sendFile(shrinking)
    await delay(env.ms(300, 1000))
    fs.truncateSync(shrinking, MiB)
    second.client.resume()
    t.is(await withTimeout(codeOf(truncated), env.ms(10000), 'truncated send'), 'ERR_KTLS_SENDFILE_TRUNCATED')

    const third = await plainPair(t)
    const leaving = third.server.sendFile(sparseFile(dir, 'big', 64 * MiB))
    await withTimeout(received(third.client, 64 * KiB), env.ms(5000), 'first bytes')
    third.client.destroy()
    const code = await withTimeout(codeOf(leaving), env.ms(10000), 'send to settle')
    t.true(code === 'EPIPE' || code === 'ECONNRESET', `rejected with ${code}`)
  })
}
