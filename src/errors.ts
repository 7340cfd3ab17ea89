// Errors with stable `code`s. Node's own codes where Node has one
// (ECONNRESET, DEPTH_ZERO_SELF_SIGNED_CERT, ERR_TLS_CERT_ALTNAME_INVALID, ...),
// otherwise ERR_KTLS_*. Codes are permanent; messages may change.

import { inspect } from 'node:util'

// As Node's own errors: `name` is 'Error' and the stack reads `Error [CODE]: ...`.
export class KtlsError extends Error {
  readonly code: string
  /** Extra detail where it helps (e.g. why offload was impossible). */
  reason?: string

  constructor(code: string, message: string, reason?: string) {
    super(message)
    this.code = asThisNodeNamesIt(code)
    // Node's own way: the stack's header is formatted on first access, with
    // the name then in place; the prototype's 'Error' shows after.
    this.name = `Error [${code}]`
    void this.stack
    Reflect.deleteProperty(this, 'name')
    if (reason !== undefined) this.reason = reason
  }
}

/** Node's messages for the verification codes it reports in `authorizationError`. */
const verifyMessages: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  CERT_REVOKED: 'certificate revoked',
  INVALID_PURPOSE: 'unsupported certificate purpose',
  CERT_REJECTED: 'certificate rejected',
}

export function verifyError(code: string): KtlsError {
  return new KtlsError(code, verifyMessages[code] ?? code)
}

/** Errors thrown by the native binding carry the core's code already. */
// OpenSSL 3.2 renamed its "sslv3 alert" reasons "ssl/tls alert", and
// node:tls's codes follow the OpenSSL it was built with (Node 22 and 24).
const alertsRenamed = (() => {
  const [major, minor] = (process.versions.openssl ?? '').split('.').map(Number)
  return major > 3 || (major === 3 && minor >= 2)
})()

/** A received alert's code as this Node's node:tls spells it. */
function asThisNodeNamesIt(code: string): string {
  return alertsRenamed ? code.replace(/^(ERR_SSL_)SSLV3_ALERT_/, '$1SSL/TLS_ALERT_') : code
}

export function fromNative(err: unknown): Error {
  if (err instanceof KtlsError) return err
  const e = err as { code?: unknown; message?: unknown }
  const code = typeof e?.code === 'string' ? e.code : 'ERR_KTLS_INTERNAL'
  const message = typeof e?.message === 'string' ? e.message : String(err)
  // The core's message names the cause (e.g. rustls's reason); keep it apart too.
  return new KtlsError(code, message, message)
}

// Node throws its argument errors as TypeError or RangeError (with `code`).
const argumentErrorClass: Record<string, ErrorConstructor> = {
  ERR_INVALID_ARG_TYPE: TypeError,
  ERR_INVALID_ARG_VALUE: TypeError,
  ERR_TLS_INVALID_PROTOCOL_VERSION: TypeError,
  ERR_TLS_INVALID_PROTOCOL_METHOD: TypeError,
  ERR_TLS_PROTOCOL_VERSION_CONFLICT: TypeError,
  ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS: TypeError,
  ERR_OUT_OF_RANGE: RangeError,
}

/** Node's " Received ..." suffix for a value of the wrong type. */
function received(value: unknown): string {
  if (value == null) return ` Received ${value}`
  if (typeof value === 'function') return ` Received function ${value.name}`
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name
    return name ? ` Received an instance of ${name}` : ` Received ${inspect(value, { depth: -1 })}`
  }
  let shown = inspect(value, { colors: false })
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  return ` Received type ${typeof value} (${shown})`
}

/** ERR_INVALID_ARG_TYPE with Node's message: `The "name" argument must be of type string. Received ...`. */
export function invalidArgType(name: string, expected: string, value: unknown): Error & { code: string } {
  const what = name.includes('.') ? `"${name}" property` : `"${name}" argument`
  return argumentError('ERR_INVALID_ARG_TYPE', `The ${what} must be ${expected}.${received(value)}`)
}

/** A bad argument, as Node reports one: TypeError or RangeError, with `code`. */
export function argumentError(code: keyof typeof argumentErrorClass & string, message: string): Error & { code: string } {
  const Class = argumentErrorClass[code] ?? Error
  return Object.assign(new Class(message), { code })
}
