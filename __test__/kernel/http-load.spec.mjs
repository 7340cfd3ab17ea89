// 200 concurrent connections x 20 requests against one ktls HTTPS server.
// Inside the kernel harness (kTLS required); the same bodies run natively
// on the userspace path (__test__/native/http-load.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { loadSuite } from '../helpers/http-suites.mjs'

loadSuite(httpEnv('kernel'))
