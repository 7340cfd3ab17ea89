// The CLI: `ktls probe`, `ktls serve` (default certificate, per-connection offload lines).
// Inside the kernel harness (kTLS required); the same bodies run natively
// on the userspace path (__test__/native/http-cli.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { cliSuite } from '../helpers/http-suites.mjs'

cliSuite(httpEnv('kernel'))
