// The CLI: `ktls probe`, `ktls serve` (default certificate, per-connection offload lines).
// Userspace path on this host; the same bodies run in the kernel harness
// (__test__/kernel/http-cli.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { cliSuite } from '../helpers/http-suites.mjs'

cliSuite(httpEnv('native'))
