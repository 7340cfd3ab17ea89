// Synchronous option checks, with Node's error codes, so a bad option
// throws at the call site instead of failing a connection later. As in
// node:tls, null means "not given".
import { argumentError, invalidArgType } from './errors'

const MODES = ['auto', 'require', 'off']
const VERSIONS = ['TLSv1.2', 'TLSv1.3']

interface Checked {
  ktls?: unknown
  ALPNProtocols?: unknown
  minVersion?: unknown
  maxVersion?: unknown
  handshakeTimeout?: unknown
  SNICallback?: unknown
  ALPNCallback?: unknown
  recordLimit?: unknown
  key?: unknown
  cert?: unknown
  ca?: unknown
}

/** A server's: ALPNCallback chooses, so ALPNProtocols cannot (node:tls's rule). */
export function validateServerOptions(options: Checked): void {
  validateOptions(options)
  if (options.ALPNCallback && options.ALPNProtocols) {
    throw argumentError('ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS', 'The ALPNCallback and ALPNProtocols TLS options are mutually exclusive')
  }
}

export function validateOptions(options: Checked): void {
  if (options.ktls != null && !MODES.includes(options.ktls as string)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.ktls must be 'auto', 'require' or 'off'; received ${String(options.ktls)}`)
  }
  const alpn = options.ALPNProtocols
  if (alpn != null && !Array.isArray(alpn)) {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.ALPNProtocols must be an array of strings or Buffers')
  }
  checkVersions(options)
  // In node:tls's order.
  checkPemOption('ca', options.ca, false)
  checkPemOption('cert', options.cert, false)
  checkPemOption('key', options.key, true)
  if (options.SNICallback != null && typeof options.SNICallback !== 'function') {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'The "options.SNICallback" property must be of type function')
  }
  if (options.ALPNCallback != null && typeof options.ALPNCallback !== 'function') {
    throw invalidArgType('options.ALPNCallback', 'of type function', options.ALPNCallback)
  }
  const limit = options.recordLimit
  if (limit != null) {
    if (typeof limit !== 'number' || !Number.isInteger(limit)) {
      throw argumentError('ERR_INVALID_ARG_TYPE', 'options.recordLimit must be an integer')
    }
    if (limit < 1) throw argumentError('ERR_OUT_OF_RANGE', 'options.recordLimit must be >= 1')
  }
  const timeout = options.handshakeTimeout
  if (timeout != null) {
    if (typeof timeout !== 'number') throw invalidArgType('options.handshakeTimeout', 'of type number', timeout)
    if (Number.isNaN(timeout) || timeout < 0) throw argumentError('ERR_OUT_OF_RANGE', 'options.handshakeTimeout must be >= 0')
  }
}

interface ContextChecked {
  minVersion?: unknown
  maxVersion?: unknown
  ciphers?: unknown
  passphrase?: unknown
  sigalgs?: unknown
  ecdhCurve?: unknown
  sessionTimeout?: unknown
}

function checkVersions(options: { minVersion?: unknown; maxVersion?: unknown }): void {
  for (const name of ['minVersion', 'maxVersion'] as const) {
    const version = options[name]
    if (version != null && !VERSIONS.includes(version as string)) {
      throw argumentError('ERR_TLS_INVALID_PROTOCOL_VERSION', `${String(version)} is not a supported TLS protocol version (TLSv1.2, TLSv1.3)`)
    }
  }
}

/** createSecureContext()'s own checks, in node:tls's words. */
export function validateContextOptions(options: ContextChecked): void {
  checkVersions(options)
  for (const name of ['ciphers', 'passphrase', 'sigalgs', 'ecdhCurve'] as const) {
    const value = options[name]
    if (value != null && typeof value !== 'string') throw invalidArgType(`options.${name}`, 'of type string', value)
  }
  if (options.sigalgs === '') throw argumentError('ERR_INVALID_ARG_VALUE', "The property 'options.sigalgs' is invalid. Received ''")
  const timeout = options.sessionTimeout
  if (timeout != null) {
    if (typeof timeout !== 'number') throw invalidArgType('options.sessionTimeout', 'of type number', timeout)
    if (!Number.isInteger(timeout) || timeout < 0 || timeout > 2 ** 31 - 1) {
      throw argumentError('ERR_OUT_OF_RANGE', `The value of "options.sessionTimeout" is out of range. It must be >= 0 && <= 2147483647. Received ${String(timeout)}`)
    }
  }
}

const isPemValue = (v: unknown): boolean => typeof v === 'string' || ArrayBuffer.isView(v) || v instanceof ArrayBuffer

/**
 * `key`, `cert` and `ca`: falsy (not given), a PEM (string, Buffer,
 * TypedArray, DataView), or an array of them; in a `key` array an entry
 * may also be `{ pem, passphrase }`. Node's error otherwise, word for word.
 */
function checkPemOption(name: string, value: unknown, objectsInArrays: boolean): void {
  if (!value) return
  const entries = Array.isArray(value) ? value : [value]
  for (const entry of entries) {
    const ok = isPemValue(entry) || (objectsInArrays && Array.isArray(value) && isPemObject(entry))
    if (!ok) {
      throw invalidArgType(`options.${name}`, 'of type string or an instance of Buffer, TypedArray, or DataView', entry)
    }
  }
}

function isPemObject(entry: unknown): boolean {
  return typeof entry === 'object' && entry !== null && isPemValue((entry as { pem?: unknown }).pem)
}

