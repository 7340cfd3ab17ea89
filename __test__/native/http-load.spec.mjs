// 200 concurrent connections x 20 requests against one ktls HTTPS server.
// Userspace path on this host; the same bodies run in the kernel harness
// (__test__/kernel/http-load.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { loadSuite } from '../helpers/http-suites.mjs'

loadSuite(httpEnv('native'))
