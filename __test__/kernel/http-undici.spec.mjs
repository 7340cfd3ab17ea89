// undici request and fetch through ktls.undiciConnector.
// Inside the kernel harness (kTLS required); the same bodies run natively
// on the userspace path (__test__/native/http-undici.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { undiciSuite } from '../helpers/http-suites.mjs'

undiciSuite(httpEnv('kernel'))
