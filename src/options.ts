// Synchronous option checks, with Node's error codes, so a bad option
// throws at the call site instead of failing a connection later. As in
// node:tls, null means "not given".
import { argumentError } from './errors'

const MODES = ['auto', 'require', 'off']
const VERSIONS = ['TLSv1.2', 'TLSv1.3']

interface Checked {
  ktls?: unknown
  ALPNProtocols?: unknown
  minVersion?: unknown
  maxVersion?: unknown
  handshakeTimeout?: unknown
  SNICallback?: unknown
}

export function validateOptions(options: Checked): void {
  if (options.ktls != null && !MODES.includes(options.ktls as string)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.ktls must be 'auto', 'require' or 'off'; received ${String(options.ktls)}`)
  }
  const alpn = options.ALPNProtocols
  if (alpn != null && !Array.isArray(alpn)) {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.ALPNProtocols must be an array of strings or Buffers')
  }
  for (const name of ['minVersion', 'maxVersion'] as const) {
    const version = options[name]
    if (version != null && !VERSIONS.includes(version as string)) {
      throw argumentError('ERR_TLS_INVALID_PROTOCOL_VERSION', `${String(version)} is not a supported TLS protocol version (TLSv1.2, TLSv1.3)`)
    }
  }
  if (options.SNICallback != null && typeof options.SNICallback !== 'function') {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'The "options.SNICallback" property must be of type function')
  }
  const timeout = options.handshakeTimeout
  if (timeout != null) {
    if (typeof timeout !== 'number' || Number.isNaN(timeout)) {
      throw argumentError('ERR_INVALID_ARG_TYPE', 'options.handshakeTimeout must be a number')
    }
    if (timeout < 0) throw argumentError('ERR_OUT_OF_RANGE', 'options.handshakeTimeout must be >= 0')
  }
}
