// Every error `code` ktls can produce, its cause and its fix: the one
// registry docs/errors.md is generated from (scripts/errors-doc.mjs), and
// which __test__/unit/error-codes.spec.mjs checks the code against.

export interface CodeInfo {
  /** When it happens. */
  when: string
  /** What to do about it. */
  fix: string
}

export const ERROR_CODES: Record<string, CodeInfo> = {
  // ---- kernel TLS ----
  ERR_KTLS_UNAVAILABLE: {
    when: "`ktls: 'require'` and this kernel (or this socket) cannot offload the connection, or `updateKeys()` where no ktls binary loaded; the message says why",
    fix: '`ktls doctor` tells what is missing (`sudo modprobe tls`, a cipher the kernel lacks, a unix socket); or use `ktls: \'auto\'` to fall back to userspace',
  },
  ERR_KTLS_OFFLOAD_FAILED: {
    when: 'the kernel accepted `TCP_ULP "tls"` but a direction could not be installed, or reading it back disagreed: the socket is closed, never used in cleartext',
    fix: 'a kernel bug or an unusual kernel configuration: report it with `ktls doctor --json`',
  },
  ERR_KTLS_KEY_UPDATE_UNSUPPORTED: {
    when: 'the peer sent a TLS 1.3 KeyUpdate and this kernel cannot rekey (before Linux 6.14), or `updateKeys()` there (nothing was sent; the connection goes on)',
    fix: 'Linux 6.14+, or `requireKeyUpdate: true` to keep TLS 1.3 connections in userspace on such kernels',
  },
  ERR_KTLS_RECORD_LIMIT: {
    when: 'offloaded, the sending key reached `recordLimit` and the kernel cannot rekey (before 6.14, or TLS 1.2): the connection ended with close_notify first',
    fix: 'Linux 6.14+ (TLS 1.3 rekeys by itself), or reconnect; `requireKeyUpdate: true` keeps such connections in userspace',
  },
  ERR_KTLS_BAD_RECORD: {
    when: 'after the handshake the peer sent a record that failed to authenticate, was too large, or broke the record protocol; the peer was sent the alert RFC 8446 names (docs/records.md)',
    fix: 'a broken or hostile peer, or corruption on the path: nothing to fix on this side',
  },
  ERR_KTLS_HANDSHAKE: {
    when: 'the handshake failed (garbage instead of TLS, a protocol violation, nothing in common); the message has rustls\'s reason',
    fix: 'check the peer speaks TLS 1.2/1.3 with a suite and group in common (`ciphers`, `ecdhCurve`, `minVersion`)',
  },
  ERR_KTLS_NO_FD: {
    when: 'the socket given to `KtlsSocket`/`upgrade`/`connect({ socket })` was closed before it could be taken over',
    fix: 'hand over a connected (or connecting) socket; any other `Duplex` is carried over its stream API instead',
  },
  ERR_KTLS_SENDFILE_RANGE: {
    when: '`sendFile()`: `offset` + `length` lies past the end of the file',
    fix: 'check the range against the file\'s size',
  },
  ERR_KTLS_SENDFILE_TRUNCATED: {
    when: '`sendFile()`: the file shrank while it was being sent; the byte stream is broken, so the socket was destroyed',
    fix: 'do not truncate files while they are served',
  },
  ERR_KTLS_STATIC: {
    when: '`serveStatic()`: an unexpected error reading a file (answered 500)',
    fix: 'the error\'s `cause` has the filesystem error',
  },
  ERR_KTLS_STATIC_BAD_PATH: {
    when: '`serveStatic()`: a malformed or NUL-carrying request path (answered 400)',
    fix: 'a broken or hostile client: nothing to fix',
  },
  ERR_KTLS_STATIC_TRAVERSAL: {
    when: '`serveStatic()`: a path that leaves the root (`..`, encoded or not, or a symlink out; answered 403)',
    fix: 'a broken or hostile client: nothing to fix',
  },
  ERR_KTLS_STATIC_DOTFILE: {
    when: '`serveStatic()`: a dotfile, refused by default (answered 403 or 404)',
    fix: '`dotfiles: \'allow\'` to serve them',
  },
  ERR_METHOD_NOT_ALLOWED: {
    when: '`serveStatic()`: a method other than GET or HEAD (answered 405 with `Allow`)',
    fix: 'route other methods elsewhere before the handler',
  },
  ERR_KTLS_SELF_TEST_MISMATCH: {
    when: '`ktls doctor`: the self-test\'s echo differed from what it sent',
    fix: 'a kernel TLS bug: report it with `ktls doctor --json`',
  },
  ERR_KTLS_IO: {
    when: 'a socket error with no errno name, or libuv refused to resume reading after a control record',
    fix: 'the message has the details',
  },
  ERR_KTLS_REACTOR: {
    when: 'the readiness reactor (epoll) failed: out of descriptors or memory',
    fix: 'raise `ulimit -n`; the message has the errno',
  },
  ERR_KTLS_INTERNAL: {
    when: 'an error the binding could not classify',
    fix: 'a bug: report it with the message',
  },
  // ---- node:tls's own codes, where the same thing happens ----
  ERR_TLS_HANDSHAKE_TIMEOUT: { when: 'no finished handshake within `handshakeTimeout`', fix: 'raise `handshakeTimeout`, or look at the peer' },
  ERR_TLS_INVALID_STATE: {
    when: '`exportKeyingMaterial()` or `updateKeys()` before the handshake finished, or `updateKeys()` on TLS 1.2',
    fix: 'wait for `secureConnect`/`secure`',
  },
  ERR_TLS_RENEGOTIATION_DISABLED: { when: '`renegotiate()`: rustls never renegotiates', fix: 'TLS 1.3 has no renegotiation; use `updateKeys()` to rekey' },
  ERR_SSL_HTTP_REQUEST: {
    when: 'a server was sent plain HTTP instead of a ClientHello (`tlsClientError`), as node:tls reports it',
    fix: 'the client should use https://, or the plain HTTP port',
  },
  ERR_SSL_WRONG_VERSION_NUMBER: {
    when: 'the peer answered with something that is not TLS (an HTTP server on a TLS port, a banner), as node:tls reports it',
    fix: 'check the port and that the peer speaks TLS there',
  },
  ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM: {
    when: 'a server with no key and certificate of its own (and none from `SNICallback`) got a ClientHello (`tlsClientError`; the client reads a handshake_failure alert), as node:tls reports it',
    fix: 'give the server `key` and `cert` (or `pfx`)',
  },
  ERR_SSL_PASSED_A_NULL_PARAMETER: {
    when: 'an `SNICallback` chose a context with no key and certificate (`tlsClientError`; the client reads a handshake_failure alert), as node:tls reports it on Node 20 (later lines: `ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM`)',
    fix: 'create the context with `key` and `cert`',
  },
  ERR_SSL_WRONG_SSL_VERSION: {
    when: '`renegotiate()` on a TLS 1.3 connection, which has no renegotiation (the callback\'s error), as node:tls reports it',
    fix: 'use `updateKeys()` to rekey a TLS 1.3 connection',
  },
  ERR_OSSL_X509_KEY_VALUES_MISMATCH: {
    when: '`createSecureContext()` (or a server) given a `key` that is not the private key of its `cert`, as node:tls reports it',
    fix: 'pair each certificate with its own key',
  },
  ERR_TLS_SNI_FROM_SERVER: { when: '`setServername()` on a server-side socket', fix: 'only clients send a server name' },
  ERR_TLS_REQUIRED_SERVER_NAME: { when: '`addContext()` without a hostname', fix: 'pass the name (or `*.example.com`)' },
  ERR_TLS_INVALID_PROTOCOL_METHOD: { when: 'an unknown `secureProtocol`', fix: "`'TLSv1_2_method'`, `'TLSv1_3_method'` or `'TLS_method'`" },
  ERR_TLS_PROTOCOL_VERSION_CONFLICT: { when: '`secureProtocol` given with `minVersion`/`maxVersion`', fix: 'use one or the other' },
  ERR_TLS_INVALID_PROTOCOL_VERSION: { when: '`minVersion`/`maxVersion` other than TLSv1.2 or TLSv1.3', fix: 'TLS 1.0 and 1.1 are not supported' },
  ERR_TLS_CERT_ALTNAME_INVALID: { when: 'the certificate does not name the host (`tls.checkServerIdentity`)', fix: 'connect by a name the certificate has, or pass `servername`' },
  ERR_SSL_NO_CIPHER_MATCH: { when: '`ciphers` names no suite rustls has (thrown synchronously)', fix: 'name TLS 1.3 or ECDHE-AES-GCM/ChaCha20 suites' },
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: {
    when: 'a server with `requestCert` and `rejectUnauthorized`: the client sent no certificate (`tlsClientError`)',
    fix: 'give the client `cert` and `key`',
  },
  ERR_SSL_NO_SHARED_SIGNATURE_ALGORITHMS: {
    when: 'a server\'s `sigalgs` and the client\'s offer have no signature scheme in common (`tlsClientError`; the client sees `ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE`)',
    fix: 'widen `sigalgs` on either side, or give the server a certificate whose key can sign with one the client offers',
  },
  ERR_CRYPTO_OPERATION_FAILED: {
    when: '`ecdhCurve` names a group rustls does not have, or a `pfx` holds no key for its certificates',
    fix: "`'X25519:P-256:P-384'` or `'auto'`; a PFX exported with its key",
  },
  ERR_CRYPTO_CUSTOM_ENGINE_NOT_SUPPORTED: {
    when: '`clientCertEngine`, or `privateKeyEngine` with `privateKeyIdentifier`: OpenSSL engines, which rustls has no counterpart for',
    fix: 'give the key itself (`key`, `pfx`); keys held by hardware are not supported',
  },
  ERR_CRYPTO_UNSUPPORTED_OPERATION: {
    when: 'a `pfx` encrypted with what Node\'s OpenSSL no longer reads either (RC2, OpenSSL\'s "legacy")',
    fix: 're-export it: `openssl pkcs12 -export` (AES) or with `-keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES`',
  },
  ERR_SSL_NO_APPLICATION_PROTOCOL: {
    when: 'server: the client offered ALPN protocols and none is the server\'s (`ALPNProtocols`), or its `ALPNCallback` returned undefined; the client gets a no_application_protocol alert',
    fix: 'offer a protocol both sides speak, or leave ALPN out on one side',
  },
  ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS: { when: 'a server given both `ALPNCallback` and `ALPNProtocols`', fix: 'give one: the callback chooses among what the client offers' },
  ERR_TLS_ALPN_CALLBACK_INVALID_RESULT: { when: 'an `ALPNCallback` returned a protocol the client did not offer (`tlsClientError`)', fix: 'return one of `protocols`, or undefined to refuse them all' },
  ERR_MULTIPLE_CALLBACK: { when: 'an `SNICallback` called its callback twice', fix: 'call it once' },
  ERR_SOCKET_CONNECTION_IN_PROGRESS: { when: '`connect()` on a KtlsSocket that already has a connection', fix: 'use a new socket' },
  ERR_SOCKET_CLOSED: { when: 'a call on a socket whose connection is gone', fix: 'check `socket.destroyed` first' },
  ERR_STREAM_DESTROYED: { when: 'a write or `sendFile()` after the socket was destroyed', fix: 'check `socket.destroyed` first' },
  ERR_STREAM_WRITE_AFTER_END: { when: '`sendFile()` after `end()`', fix: 'send before ending' },
  ERR_INVALID_ARG_TYPE: { when: 'an option or argument of the wrong type (a TypeError, as Node\'s)', fix: 'the message names it' },
  ERR_INVALID_ARG_VALUE: { when: 'an option with a value ktls cannot use (bad PEM, unknown mode)', fix: 'the message names it' },
  ERR_OUT_OF_RANGE: { when: 'a number outside its range (a RangeError, as Node\'s)', fix: 'the message gives the range' },
  UND_ERR_CONNECT_TIMEOUT: { when: '`undiciConnector()`: no connection within `timeout`', fix: 'undici\'s own code, so its retries apply' },
  // ---- errno names, as libuv reports them ----
  ECONNRESET: { when: 'the peer reset the connection, or left during the handshake', fix: 'the peer went away' },
  EPIPE: { when: 'a write after the peer closed its side', fix: 'the peer went away' },
  ECANCELED: { when: 'a write still queued when the socket was destroyed, as libuv reports it', fix: 'wait for writes before destroying, or `end()`' },
}

/** Codes built from a name: one entry each stands for the whole family. */
export const ERROR_CODE_FAMILIES: Record<string, CodeInfo & { pattern: RegExp }> = {
  'ERR_SSL_<ALERT>': {
    pattern: /^ERR_SSL_(SSLV3|SSL\/TLS|TLSV1|TLSV13)_[A-Z0-9_]+$/,
    when: 'the peer sent a fatal alert; the code is the one node:tls gives on this Node (OpenSSL\'s name for the alert; Node 22 and later say `SSL/TLS_ALERT` where Node 20 says `SSLV3_ALERT`), e.g. `ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE`, `ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC`',
    fix: 'the peer refused something: its logs say what',
  },
  'ERR_OSSL_<REASON>': {
    pattern: /^ERR_OSSL_[A-Z0-9_]+$/,
    when: 'an encrypted key that Node\'s key parser cannot open with the `passphrase` given (e.g. `ERR_OSSL_BAD_DECRYPT`)',
    fix: 'the right `passphrase`',
  },
  '<verification code>': {
    pattern: /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|INVALID_PURPOSE|CERT_REVOKED|HOSTNAME_MISMATCH)$/,
    when: 'certificate verification, as `authorizationError` and as the error when `rejectUnauthorized` is true: OpenSSL\'s code for the chain it would build from what the peer sent',
    fix: '`ca` with the issuer, a valid certificate, or the right clock',
  },
  '<errno>': {
    pattern: /^E[A-Z0-9]+$/,
    when: 'another socket or file error, by its errno name (`ETIMEDOUT`, `EACCES`, `ENOENT`...)',
    fix: 'the usual meaning of that errno',
  },
}

/** Whether `code` is in the registry, itself or by family. */
export function isRegistered(code: string): boolean {
  return code in ERROR_CODES || Object.values(ERROR_CODE_FAMILIES).some((f) => f.pattern.test(code))
}
