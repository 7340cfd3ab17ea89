// node:http on ktls sockets: https.Server's events, Express, close(), timeouts, upgrade, setSecureContext.
// Userspace path on this host; the same bodies run in the kernel harness
// (__test__/kernel/http-server.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { serverSuite } from '../helpers/http-suites.mjs'

serverSuite(httpEnv('native'))
