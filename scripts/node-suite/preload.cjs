// Preloaded into Node's own tls tests (node --require): node:tls's entry
// points become ktls's, so the tests exercise ktls where they call tls.*.
// With KTLS_SUITE_MARK set, the first call to one of them creates that file:
// run.mjs counts the tests that use ktls apart from those that never do.
'use strict'
const fs = require('node:fs')
const tls = require('node:tls')
const ktls = require('../../dist/index.js')

let marked = !process.env.KTLS_SUITE_MARK
function mark() {
  if (marked) return
  marked = true
  fs.writeFileSync(process.env.KTLS_SUITE_MARK, '')
}

/** `entry`, noting its first use; `new`, subclassing and instanceof still work. */
function counted(entry) {
  return new Proxy(entry, {
    apply(target, self, args) {
      mark()
      return Reflect.apply(target, self, args)
    },
    construct(target, args, newTarget) {
      mark()
      return Reflect.construct(target, args, newTarget)
    },
  })
}

tls.connect = counted(ktls.connect)
tls.createServer = counted(ktls.createServer)
tls.Server = counted(ktls.Server)
tls.createSecureContext = counted(ktls.createSecureContext)
tls.TLSSocket = counted(ktls.KtlsSocket)
