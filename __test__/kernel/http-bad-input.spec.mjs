// Plaintext, stalled, aborted and vanishing clients: one log line each, no fd leak, good clients served.
// Inside the kernel harness (kTLS required); the same bodies run natively
// on the userspace path (__test__/native/http-bad-input.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { badInputSuite } from '../helpers/http-suites.mjs'

badInputSuite(httpEnv('kernel'))
