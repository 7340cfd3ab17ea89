// A TLS-record-aware TCP proxy for fault injection between a client and a server.
//
//   const proxy = await startProxy({ targetPort })
//   ... client connects to proxy.port ...
//   await proxy.corruptNextRecord('toClient')   // flips one ciphertext byte of the
//                                                // next application_data record
//   proxy.resetClient() / proxy.resetServer()   // TCP RST towards one side
//
// Records are forwarded whole (the proxy buffers up to one record per
// direction), so a corrupted record is otherwise well-formed: same length and
// header, only an AEAD-protected byte changes.
import net from 'node:net'
import { onCleanup } from './cleanup.mjs'

const TYPE_APPLICATION_DATA = 0x17

class RecordPipe {
  constructor(src, dst, name, { flushDelayMs = 0 } = {}) {
    this.src = src
    this.dst = dst
    this.name = name
    this.flushDelayMs = flushDelayMs
    this.held = []
    this.timer = null
    this.buf = Buffer.alloc(0)
    this.bytes = 0
    this.records = 0
    /** Every record forwarded: { type, length } (length without the header). */
    this.lengths = []
    this.armed = null // { type, resolve }
    src.on('data', (d) => this.onData(d))
    src.on('end', () => {
      this.flushHeld()
      if (this.buf.length) dst.write(this.buf)
      this.buf = Buffer.alloc(0)
      dst.end()
    })
    dst.on('drain', () => src.resume())
  }

  onData(d) {
    this.bytes += d.length
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
    const out = []
    const fired = []
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt16BE(3)
      if (this.buf.length < 5 + len) break
      const rec = Buffer.from(this.buf.subarray(0, 5 + len))
      this.buf = this.buf.subarray(5 + len)
      this.records++
      this.lengths.push({ type: rec[0], length: len })
      if (this.armed && rec[0] === this.armed.type && len > 0) {
        rec[5 + Math.floor(len / 2)] ^= 0x01
        fired.push({ resolve: this.armed.resolve, info: { recordIndex: this.records - 1, length: len } })
        this.armed = null
      }
      out.push(rec)
    }
    if (out.length) this.forward(out)
    for (const f of fired) f.resolve(f.info)
  }

  forward(records) {
    if (this.flushDelayMs > 0) {
      // Hold complete records and send whatever accumulated in one write, so
      // records that left the sender separately arrive in the same segment.
      this.held.push(...records)
      if (!this.timer) this.timer = setTimeout(() => this.flushHeld(), this.flushDelayMs)
      return
    }
    if (this.dst.destroyed) return
    if (!this.dst.write(records.length === 1 ? records[0] : Buffer.concat(records))) this.src.pause()
  }

  flushHeld() {
    clearTimeout(this.timer)
    this.timer = null
    if (!this.held.length || this.dst.destroyed) return
    const data = Buffer.concat(this.held)
    this.held = []
    if (!this.dst.write(data)) this.src.pause()
  }
}

/**
 * Starts the proxy on 127.0.0.1:0 forwarding to targetHost:targetPort.
 * `flushDelayMs` (per direction: { toServer, toClient } or a number for both)
 * makes the proxy hold complete records for that long and forward them in a
 * single write (coalescing e.g. a Finished and the data written right behind it).
 * Resolves { port, connections, corruptNextRecord(dir, {type}), resetClient(),
 * resetServer(), close(), connected: Promise<first connection> }.
 */
export async function startProxy({ targetPort, targetHost = '127.0.0.1', flushDelayMs = 0 }) {
  const delays = typeof flushDelayMs === 'number' ? { toServer: flushDelayMs, toClient: flushDelayMs } : flushDelayMs
  const connections = []
  let pendingArm = []
  let onFirst
  const connected = new Promise((r) => {
    onFirst = r
  })
  // allowHalfOpen on both legs: a FIN is forwarded as a FIN (half-close), and
  // a leg is torn down only when its counterpart is fully closed.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.pause()
    const upstream = net.connect({ port: targetPort, host: targetHost, allowHalfOpen: true })
    const conn = { client, upstream }
    client.on('error', () => {})
    upstream.on('error', () => {})
    const onClientGone = () => upstream.destroy()
    const onUpstreamGone = () => client.destroy()
    client.on('close', onClientGone)
    upstream.on('close', onUpstreamGone)
    upstream.once('connect', () => {
      conn.toServer = new RecordPipe(client, upstream, 'toServer', { flushDelayMs: delays.toServer || 0 })
      conn.toClient = new RecordPipe(upstream, client, 'toClient', { flushDelayMs: delays.toClient || 0 })
      client.resume()
      connections.push(conn)
      for (const a of pendingArm) arm(conn, a)
      pendingArm = []
      onFirst(conn)
    })
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const closeAll = () => {
    for (const { client, upstream } of connections) {
      client.destroy()
      upstream.destroy()
    }
    return new Promise((r) => (server.listening ? server.close(() => r()) : r()))
  }
  onCleanup(closeAll)

  function arm(conn, { dir, type, resolve }) {
    const pipe = dir === 'toClient' ? conn.toClient : conn.toServer
    pipe.armed = { type, resolve }
  }

  return {
    port: server.address().port,
    connections,
    connected,
    /**
     * Flips one byte in the next record of `type` (default application_data,
     * i.e. any encrypted TLS 1.3 record) travelling in `dir` ('toClient' or
     * 'toServer') on the most recent connection. Resolves once it was forwarded.
     */
    corruptNextRecord(dir, { type = TYPE_APPLICATION_DATA } = {}) {
      if (dir !== 'toClient' && dir !== 'toServer') throw new TypeError(`bad direction ${dir}`)
      return new Promise((resolve) => {
        const conn = connections[connections.length - 1]
        if (conn) arm(conn, { dir, type, resolve })
        else pendingArm.push({ dir, type, resolve })
      })
    },
    /** Sends a TCP RST to the client side of every connection (upstream is closed). */
    resetClient() {
      for (const { client, upstream } of connections) {
        client.removeAllListeners('close')
        client.resetAndDestroy()
        upstream.destroy()
      }
    },
    /** Sends a TCP RST to the server side of every connection (client is closed). */
    resetServer() {
      for (const { client, upstream } of connections) {
        upstream.removeAllListeners('close')
        upstream.resetAndDestroy()
        client.destroy()
      }
    },
    bytes() {
      const c = connections[connections.length - 1]
      return c ? { toServer: c.toServer.bytes, toClient: c.toClient.bytes } : { toServer: 0, toClient: 0 }
    },
    close: closeAll,
  }
}
