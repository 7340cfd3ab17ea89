// Loopback packet capture with tcpdump, and a small pcap reader that
// reassembles the TCP payload of each direction so a marker split across
// segments is still found.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onCleanup } from './cleanup.mjs'

/** True when a usable tcpdump binary is on PATH. */
export function tcpdumpAvailable() {
  const r = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' })
  return r.status === 0
}

/**
 * Starts `tcpdump -i lo -U -w <file> 'tcp port <port>'` and resolves once it
 * is capturing. Returns { file, stop() } where stop() resolves a parsed capture
 * (see parsePcap) plus { dropped, stderr }.
 */
export async function startCapture({ port, iface = 'lo', timeout = 30000 } = {}) {
  if (!port) throw new TypeError('startCapture needs a port')
  const dir = mkdtempSync(join(tmpdir(), 'ktls-pcap-'))
  const file = join(dir, 'capture.pcap')
  // -Z root: don't drop privileges (the temp dir is root-only); -U: packet-buffered
  // output; -B: bigger kernel buffer so large transfers are not dropped.
  // --immediate-mode: without it TPACKET_V3 holds the last partially filled
  // block and tcpdump exits on SIGINT without writing it (tail of a transfer lost).
  const args = ['-i', iface, '-U', '--immediate-mode', '-n', '-s', '0', '-B', '32768', '-Z', 'root', '-w', file, `tcp port ${port}`]
  const proc = spawn('tcpdump', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  proc.once('error', (err) => {
    stderr += `spawn error: ${err.message}\n`
  })
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`tcpdump did not start listening: ${stderr}`))
    }, timeout)
    proc.stderr.setEncoding('utf8')
    proc.stderr.on('data', (d) => {
      stderr += d
      if (/listening on/.test(stderr)) {
        clearTimeout(timer)
        resolve()
      }
    })
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`tcpdump exited early (${code ?? signal}): ${stderr}`))
    })
  })
  const onExit = () => proc.kill('SIGKILL')
  process.once('exit', onExit)
  const offCleanup = onCleanup(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  return {
    file,
    async stop() {
      // Give in-flight loopback packets a moment to reach the capture buffer.
      await new Promise((r) => setTimeout(r, 200))
      proc.kill('SIGINT')
      const killer = setTimeout(() => proc.kill('SIGKILL'), 10000)
      await exited
      clearTimeout(killer)
      process.off('exit', onExit)
      offCleanup()
      const m = /(\d+) packets? dropped by kernel/.exec(stderr)
      const dropped = m ? Number(m[1]) : 0
      const parsed = parsePcap(readFileSync(file))
      rmSync(dir, { recursive: true, force: true })
      return { ...parsed, dropped, stderr }
    },
  }
}

/**
 * Parses a classic pcap file (IPv4/IPv6 + TCP) and reassembles each direction
 * by TCP sequence number (retransmissions are de-duplicated). Returns
 * { packets, payloadBytes, holes, streams: Map<'sport>dport', Buffer>, all }
 * where `holes` counts sequence gaps (missed segments) over all streams and
 * `all` concatenates every stream.
 */
export function parsePcap(buf) {
  if (buf.length < 24) throw new Error('pcap too short')
  const magic = buf.readUInt32LE(0)
  let le
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = false
  else throw new Error(`not a pcap file (magic ${magic.toString(16)})`)
  const u32 = (o) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o))
  const linktype = u32(20) & 0x0fffffff
  const dirs = new Map() // key -> { isn, segs: [{ off, payload }] }
  let packets = 0
  let off = 24
  while (off + 16 <= buf.length) {
    const incl = u32(off + 8)
    const start = off + 16
    off = start + incl
    if (off > buf.length) break
    packets++
    const frame = buf.subarray(start, start + incl)
    const ip = ipPayload(frame, linktype)
    if (!ip) continue
    const tcp = tcpSegment(ip)
    if (!tcp) continue
    const key = `${tcp.sport}>${tcp.dport}`
    let d = dirs.get(key)
    if (!d) {
      d = { isn: tcp.syn ? tcp.seq : (tcp.seq - 1) >>> 0, segs: [] }
      dirs.set(key, d)
    }
    if (tcp.syn) d.isn = tcp.seq
    if (tcp.payload.length) d.segs.push({ off: (tcp.seq - d.isn - 1) >>> 0, payload: tcp.payload })
  }
  const streams = new Map()
  let holes = 0
  let payloadBytes = 0
  for (const [key, d] of dirs) {
    d.segs.sort((a, b) => a.off - b.off)
    const out = []
    let end = d.segs.length ? d.segs[0].off : 0
    if (end !== 0) holes++
    for (const { off: o, payload } of d.segs) {
      if (o > end) {
        holes++
        end = o
      }
      const skip = end - o
      if (skip < payload.length) {
        out.push(payload.subarray(skip))
        end += payload.length - skip
      }
    }
    const s = Buffer.concat(out)
    payloadBytes += s.length
    streams.set(key, s)
  }
  return { packets, payloadBytes, holes, streams, all: Buffer.concat([...streams.values()]) }
}

function ipPayload(frame, linktype) {
  let off
  let proto
  switch (linktype) {
    case 1: // EN10MB
      off = 14
      proto = frame.readUInt16BE(12)
      if (proto === 0x8100) {
        proto = frame.readUInt16BE(16)
        off = 18
      }
      break
    case 113: // LINUX_SLL
      off = 16
      proto = frame.readUInt16BE(14)
      break
    case 276: // LINUX_SLL2
      off = 20
      proto = frame.readUInt16BE(0)
      break
    case 0: // BSD loopback
    case 108: {
      off = 4
      const fam = frame.readUInt32LE(0)
      proto = fam === 2 ? 0x0800 : 0x86dd
      break
    }
    case 12:
    case 101: // raw IP
      off = 0
      proto = (frame[0] >> 4) === 4 ? 0x0800 : 0x86dd
      break
    default:
      throw new Error(`unsupported pcap linktype ${linktype}`)
  }
  const ip = frame.subarray(off)
  if (proto === 0x0800 && ip.length >= 20) {
    const ihl = (ip[0] & 0x0f) * 4
    const total = ip.readUInt16BE(2)
    if (ip[9] !== 6) return null
    return ip.subarray(ihl, Math.min(total || ip.length, ip.length))
  }
  if (proto === 0x86dd && ip.length >= 40) {
    if (ip[6] !== 6) return null // no extension-header support needed on lo
    const plen = ip.readUInt16BE(4)
    return ip.subarray(40, 40 + plen)
  }
  return null
}

function tcpSegment(seg) {
  if (seg.length < 20) return null
  const doff = (seg[12] >> 4) * 4
  return {
    sport: seg.readUInt16BE(0),
    dport: seg.readUInt16BE(2),
    seq: seg.readUInt32BE(4),
    syn: (seg[13] & 0x02) !== 0,
    payload: seg.subarray(doff),
  }
}

/** Number of (possibly overlapping) occurrences of `needle` in `haystack`. */
export function countOccurrences(haystack, needle) {
  if (typeof needle === 'string') needle = Buffer.from(needle)
  let n = 0
  let i = haystack.indexOf(needle)
  while (i !== -1) {
    n++
    i = haystack.indexOf(needle, i + 1)
  }
  return n
}

/** True when `marker` occurs in any reassembled direction of the capture. */
export function captureContains(capture, marker) {
  if (typeof marker === 'string') marker = Buffer.from(marker)
  for (const s of capture.streams.values()) if (s.includes(marker)) return true
  return false
}
