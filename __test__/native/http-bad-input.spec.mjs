// Plaintext, stalled, aborted and vanishing clients: one log line each, no fd leak, good clients served.
// Userspace path on this host; the same bodies run in the kernel harness
// (__test__/kernel/http-bad-input.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { badInputSuite } from '../helpers/http-suites.mjs'

badInputSuite(httpEnv('native'))
