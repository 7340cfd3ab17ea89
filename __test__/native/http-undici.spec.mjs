// undici request and fetch through ktls.undiciConnector.
// Userspace path on this host; the same bodies run in the kernel harness
// (__test__/kernel/http-undici.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { undiciSuite } from '../helpers/http-suites.mjs'

undiciSuite(httpEnv('native'))
