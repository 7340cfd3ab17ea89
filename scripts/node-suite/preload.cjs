// Preloaded into Node's own tls tests (node --require): node:tls's entry
// points become ktls's, so the tests exercise ktls where they call tls.*.
'use strict'
const tls = require('node:tls')
const ktls = require('../../dist/index.js')

tls.connect = ktls.connect
tls.createServer = ktls.createServer
tls.Server = ktls.Server
tls.createSecureContext = ktls.createSecureContext
tls.TLSSocket = ktls.KtlsSocket
