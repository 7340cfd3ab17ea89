// TLS over a transport that is not a TCP descriptor of ours (any Duplex, a
// TLS socket inside another): rustls in the binding seals and opens the
// records, this module moves them through the transport's own stream API.
import type { Duplex } from 'node:stream'
import type { HandshakeInfo, ServerSecureContext, StreamConnection, StreamStep } from '../binding/index'
import { KtlsError, fromNative } from './errors'

/** What the carrier reports to its socket. */
export interface CarrierEvents {
  /** A server choosing its context has the ClientHello: its name and ALPN offer (see `acceptWith`). */
  clientHello(servername: string | null, protocols: string[] | null): void
  /** The handshake finished. */
  secure(): void
  /** Plaintext arrived; false asks for no more until `resume()`. */
  data(plaintext: Buffer): boolean
  /** The peer's close_notify, or the transport's end after the handshake. */
  end(): void
  fail(err: Error): void
  /** NSS key log lines the last step produced (only after `logKeys()`). */
  keylog(lines: string[]): void
}

export class DuplexCarrier {
  private secure = false
  private ended = false
  private keylogOn = false
  private readonly onData = (chunk: Buffer | string) =>
    this.apply(() => this.conn.receive(typeof chunk === 'string' ? Buffer.from(chunk) : chunk))
  private readonly onEnd = () => {
    if (!this.secure) {
      this.events.fail(new KtlsError('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'))
    } else if (!this.ended) {
      this.ended = true
      this.events.end()
    }
  }
  private readonly onError = (err: Error) => this.events.fail(err)

  constructor(
    readonly transport: Duplex,
    private readonly conn: StreamConnection,
    private readonly events: CarrierEvents,
  ) {
    transport.on('data', this.onData)
    transport.on('end', this.onEnd)
    transport.on('error', this.onError)
  }

  /** Sends the first flight (a client's) and takes what the transport had read already. */
  start(alreadyRead?: Buffer): void {
    this.apply(() => this.conn.advance())
    if (alreadyRead && alreadyRead.length > 0) this.onData(alreadyRead)
    this.transport.resume()
  }

  exportKeyingMaterial(length: number, label: Buffer, context?: Buffer): Buffer {
    return this.conn.exportKeyingMaterial(length, label, context)
  }

  info(reason: string): HandshakeInfo {
    return this.conn.info(reason)
  }

  /** Keeps the handshake's secrets as key log lines from now on (node:tls's 'keylog'). */
  logKeys(): void {
    this.conn.logKeys(true)
    this.keylogOn = true
  }

  /** Continues a server that reported `clientHello` with the context chosen. */
  acceptWith(context: ServerSecureContext): void {
    this.apply(() => this.conn.acceptWith(context))
  }

  /** Answers the ClientHello with a handshake_failure alert (nothing to serve). */
  refuseHello(): void {
    let alert: Buffer
    try {
      alert = this.conn.refuseHello()
    } catch {
      return // nothing waits for a ClientHello: the failure that follows says enough
    }
    this.send(alert)
  }

  /** The socket wants data again. */
  resume(): void {
    if (!this.transport.destroyed) this.transport.resume()
  }

  write(chunks: Buffer[], callback: (err?: Error | null) => void): void {
    let records: Buffer
    try {
      records = this.conn.encrypt(chunks)
    } catch (err) {
      return callback(fromNative(err))
    }
    this.send(records, callback)
  }

  /** close_notify, then the transport's end. */
  end(callback: (err?: Error | null) => void): void {
    let record: Buffer
    try {
      record = this.conn.closeNotify()
    } catch (err) {
      return callback(fromNative(err))
    }
    this.transport.end(record, () => callback())
  }

  destroy(): void {
    this.conn.destroy()
    this.transport.off('data', this.onData)
    this.transport.off('end', this.onEnd)
    this.transport.destroy()
  }

  private apply(run: () => StreamStep): void {
    if (this.transport.destroyed) return
    let step: StreamStep
    try {
      step = run()
    } catch (err) {
      this.reportKeylog()
      // rustls queued the alert for the error: it goes out before the end.
      const alert = this.conn.takeOutput()
      if (alert) this.send(alert)
      this.events.fail(fromNative(err))
      return
    }
    this.reportKeylog()
    if (step.output && !this.send(step.output)) return
    if (step.clientHello) return this.events.clientHello(this.conn.requestedServername() ?? null, this.conn.offeredAlpn() ?? null)
    if (step.secure && !this.secure) {
      this.secure = true
      this.events.secure()
    }
    if (step.plaintext && !this.events.data(step.plaintext)) this.transport.pause()
    if (step.peerClosed && !this.ended) {
      this.ended = true
      this.events.end()
    }
  }

  /**
   * Writes to the transport. A stream that throws on write (a Duplex with no
   * `_write`) fails the TLS socket instead of the process. false then.
   */
  private send(data: Buffer, callback?: (err?: Error | null) => void): boolean {
    try {
      this.transport.write(data, callback)
      return true
    } catch (err) {
      callback?.(err as Error)
      this.events.fail(err as Error)
      return false
    }
  }

  private reportKeylog(): void {
    if (!this.keylogOn) return
    const lines = this.conn.takeKeylog()
    if (lines.length > 0) this.events.keylog(lines)
  }
}
