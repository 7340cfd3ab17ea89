// TLS 1.3 KeyUpdate of our sending key: on request (`socket.updateKeys()`)
// and, on the offloaded path, before the current key has sealed the records
// RFC 8446 §5.5 allows for AES-GCM. rustls keeps that limit itself on the
// userspace path.
import type { Connection } from '../binding'
import { KtlsError, fromNative } from './errors'

/** RFC 8446 §5.5: an AES-GCM key seals at most 2^24.5 full-size records. */
export const AES_GCM_RECORD_LIMIT = Math.floor(2 ** 24.5)

const MAX_RECORD = 16384

export interface KeyUpdateHost {
  /** The connection (absent on carried streams and raw sockets). */
  readonly conn: Connection | undefined
  /** Arms a writable report: the KeyUpdate record waits for room. */
  waitWritable(): void
  /** The connection cannot go on (a key limit the kernel cannot rekey past). */
  fail(err: Error): void
}

export class KeyUpdates {
  private waiters: Array<{ resolve(): void; reject(err: Error): void }> = []
  /** An upper bound of the records written since the kernel's count was read. */
  private sinceCheck = 0
  /** How many records may go out between two reads of the kernel's count. */
  private readonly slack: number
  sent = 0

  /** `limit`: records per key on the offloaded path (undefined: no limit, e.g. ChaCha20). */
  constructor(
    private readonly host: KeyUpdateHost,
    private readonly limit: number | undefined,
    private readonly kernelCanRekey: boolean,
  ) {
    this.slack = limit === undefined ? Infinity : Math.max(1, Math.min(65536, Math.floor(limit / 8)))
  }

  /** Sends a KeyUpdate; resolves once it is on its way and the next key is in use. */
  request(requestPeer: boolean): Promise<void> {
    const conn = this.host.conn
    if (!conn) return Promise.reject(new KtlsError('ERR_TLS_INVALID_STATE', 'no TLS 1.3 connection to update'))
    let sent: boolean
    try {
      sent = conn.updateKeys(requestPeer)
    } catch (err) {
      return Promise.reject(fromNative(err))
    }
    this.sent++
    this.sinceCheck = 0
    if (sent) return Promise.resolve()
    this.host.waitWritable()
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  /** The most plaintext one write may hand the kernel between two checks (sendFile's slices). */
  get bytesBetweenChecks(): number {
    return this.limit === undefined ? Infinity : Math.max(1, this.slack - 1) * MAX_RECORD
  }

  /** A requested KeyUpdate waits for room on the socket. */
  get pending(): boolean {
    return this.waiters.length > 0
  }

  /** The socket drained its control records (`conn.flush()` returned true). */
  flushed(): void {
    for (const w of this.waiters.splice(0)) w.resolve()
  }

  /** The socket is gone: pending requests fail with its error. */
  abandon(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err)
  }

  /**
   * Offloaded path, before libuv gets a write of `bytes`: if this write
   * could carry the key past its limit, update the key first (or, where the
   * kernel cannot rekey, end the connection before the limit).
   */
  beforeWrite(bytes: number): void {
    if (this.limit === undefined) return
    const upcoming = Math.ceil(bytes / MAX_RECORD) + 1
    this.sinceCheck += upcoming
    if (this.sinceCheck < this.slack) return
    this.sinceCheck = 0
    let sealed: number
    try {
      sealed = this.host.conn!.txRecords()
    } catch (err) {
      return this.host.fail(fromNative(err))
    }
    if (sealed + upcoming + this.slack < this.limit) return
    if (this.kernelCanRekey) {
      this.request(false).catch((err: Error) => this.host.fail(err))
      return
    }
    this.host.fail(
      new KtlsError(
        'ERR_KTLS_RECORD_LIMIT',
        `the sending key has sealed ${sealed} records, near the ${this.limit} its cipher allows, and this kernel cannot update keys (Linux 6.14+)`,
      ),
    )
  }
}
