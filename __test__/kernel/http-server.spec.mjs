// node:http on ktls sockets: https.Server's events, Express, close(), timeouts, upgrade, setSecureContext.
// Inside the kernel harness (kTLS required); the same bodies run natively
// on the userspace path (__test__/native/http-server.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { serverSuite } from '../helpers/http-suites.mjs'

serverSuite(httpEnv('kernel'))
