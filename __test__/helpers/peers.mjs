// `openssl s_server` / `openssl s_client` peers and a node:tls reference peer.
//
// Data patterns (verified against node:tls, OpenSSL 3.0):
//  * s_server -quiet: bytes the client sends appear verbatim on s_server's
//    stdout; bytes written to its stdin are sent to the client. Despite the
//    documented -ign_eof default, stdin EOF makes s_server close the connection
//    (after sending what it read), so keep its stdin open until the client is
//    done. When the client sends close_notify, s_server answers with
//    close_notify, closes, and (with -naccept 1) exits with status 0.
//  * s_client -quiet: same mapping; stdin EOF is ignored; it exits after the
//    server's close_notify / FIN.
//  * Non-quiet s_server interprets stdin chunks starting with q/Q/P/S/k/K/r/R
//    as commands ("k\n" / "K\n" = KeyUpdate without / with update_requested;
//    the two bytes must be read alone, so write them only when its stdin pipe
//    is empty), prints diagnostics on stdout, prints "DONE" when it receives
//    close_notify and "ERROR" on EOF without close_notify. Feed it `hex: true`
//    payloads only. With msg + unbuffered, protocol messages such as
//    ">>> TLS 1.3, Handshake [length 0005], KeyUpdate" appear immediately.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import net from 'node:net'
import { delay } from './stream.mjs'
import { onCleanup } from './cleanup.mjs'

const live = new Set()
process.once('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL')
    } catch {}
  }
})

export const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']

function socketInodes(pid) {
  const inodes = new Set()
  let fds
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return inodes
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m) inodes.add(m[1])
    } catch {}
  }
  return inodes
}

function listeningPorts() {
  // inode -> port, for TCP sockets in LISTEN (0A) state
  const out = new Map()
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text
    try {
      text = readFileSync(f, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols.length < 10 || cols[3] !== '0A') continue
      const port = parseInt(cols[1].split(':')[1], 16)
      out.set(cols[9], port)
    }
  }
  return out
}

/** Polls /proc until process `pid` owns a listening TCP socket; resolves its port. */
export async function waitForListeningPort(pid, { timeout = 30000, proc } = {}) {
  const deadline = Date.now() + timeout
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) throw new Error(`process ${pid} exited (${proc.exitCode}) before listening`)
    const inodes = socketInodes(pid)
    if (inodes.size) {
      const ports = listeningPorts()
      for (const ino of inodes) if (ports.has(ino)) return ports.get(ino)
    }
    await delay(20)
  }
  throw new Error(`process ${pid} did not listen within ${timeout} ms`)
}

function wrap(proc, label) {
  live.add(proc)
  const off = onCleanup(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  proc.once('exit', off)
  let stderr = ''
  proc.stderr.setEncoding('utf8')
  proc.stderr.on('data', (d) => {
    stderr += d
  })
  // Writing to a dead peer's stdin must not crash the test process.
  proc.stdin.on('error', () => {})
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc)
      resolve({ code, signal })
    })
  })
  // 'exit' can come before the last of stdout is read; 'close' waits for it
  // (it only fires once stdout is consumed, so use it where a listener reads).
  const outputDone = new Promise((resolve) => proc.once('close', () => resolve()))
  return {
    label,
    proc,
    pid: proc.pid,
    stdin: proc.stdin,
    stdout: proc.stdout,
    stderr: () => stderr,
    exited,
    outputDone,
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal)
        const t = setTimeout(() => proc.kill('SIGKILL'), 3000)
        await exited
        clearTimeout(t)
      }
      return exited
    },
  }
}

/**
 * Starts `openssl s_server` on 127.0.0.1 (kernel-chosen port).
 * opts: cert, key (file paths), ciphersuites (colon list), alpn (string[]),
 * quiet (default true), naccept (default 1), numTickets, msg (print protocol
 * messages, e.g. ">>> TLS 1.3, Handshake [length 0005], KeyUpdate"),
 * unbuffered (run under `stdbuf -o0` so diagnostics reach stdout at once),
 * version ('tls1_3' by default, or 'tls1_2'), args (extra argv).
 * Resolves { port, stdin, stdout, stderr(), exited, kill() } once listening.
 */
export async function startOpensslServer(opts) {
  const { cert, key, ciphersuites, alpn, quiet = true, naccept = 1, numTickets, msg = false, unbuffered = false, version = 'tls1_3', args = [] } = opts
  const argv = ['s_server', `-${version}`, '-accept', '127.0.0.1:0', '-cert', cert, '-key', key]
  if (ciphersuites) argv.push('-ciphersuites', ciphersuites)
  if (alpn) argv.push('-alpn', alpn.join(','))
  if (quiet) argv.push('-quiet')
  if (naccept) argv.push('-naccept', String(naccept))
  if (numTickets !== undefined) argv.push('-num_tickets', String(numTickets))
  if (msg) argv.push('-msg')
  argv.push(...args)
  const proc = unbuffered
    ? spawn('stdbuf', ['-o0', 'openssl', ...argv], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn('openssl', argv, { stdio: ['pipe', 'pipe', 'pipe'] })
  const peer = wrap(proc, `openssl ${argv.join(' ')}`)
  try {
    peer.port = await waitForListeningPort(proc.pid, { proc })
  } catch (err) {
    await peer.kill('SIGKILL')
    err.message += `\nstderr: ${peer.stderr()}`
    throw err
  }
  return peer
}

/**
 * Starts `openssl s_client` connecting to 127.0.0.1:port.
 * opts: port, host, servername (default 'localhost'), ciphersuites, alpn,
 * caFile, quiet (default true), version ('tls1_3' by default, or 'tls1_2'), args.
 */
export function startOpensslClient(opts) {
  const { port, host = '127.0.0.1', servername = 'localhost', ciphersuites, alpn, caFile, quiet = true, version = 'tls1_3', args = [] } = opts
  const argv = ['s_client', `-${version}`, '-connect', `${host}:${port}`]
  if (servername) argv.push('-servername', servername)
  else argv.push('-noservername')
  if (ciphersuites) argv.push('-ciphersuites', ciphersuites)
  if (alpn) argv.push('-alpn', alpn.join(','))
  if (caFile) argv.push('-CAfile', caFile, '-verify_return_error')
  if (quiet) argv.push('-quiet')
  argv.push(...args)
  const proc = spawn('openssl', argv, { stdio: ['pipe', 'pipe', 'pipe'] })
  return wrap(proc, `openssl ${argv.join(' ')}`)
}

/** Resolves with all text `stream` emitted once `pattern` matches it. */
export function waitForOutput(stream, pattern, { timeout = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`timed out waiting for ${pattern} in output: ${JSON.stringify(text.slice(-500))}`))
    }, timeout)
    const onData = (d) => {
      text += d.toString('latin1')
      if (pattern.test(text)) {
        cleanup()
        resolve(text)
      }
    }
    const onEnd = () => {
      cleanup()
      reject(new Error(`stream ended before ${pattern} appeared: ${JSON.stringify(text.slice(-500))}`))
    }
    const cleanup = () => {
      clearTimeout(timer)
      stream.off('data', onData)
      stream.off('end', onEnd)
    }
    stream.on('data', onData)
    stream.on('end', onEnd)
  })
}

/** Picks a currently free TCP port on 127.0.0.1 (racy by nature; prefer listen(0)). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** net.Server.listen(0, 127.0.0.1) as a promise; resolves the port. */
export function listen(server, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => {
      server.off('error', reject)
      resolve(server.address().port)
    })
  })
}

export function closeServer(server) {
  return new Promise((resolve) => {
    if (!server || !server.listening) return resolve()
    server.close(() => resolve())
    // Don't let idle keep-alive connections hold the close.
    server.closeAllConnections?.()
  })
}
