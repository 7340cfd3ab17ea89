// curl against the ktls HTTPS server: GET, 8 MiB POST, 1000 keep-alive requests, chunked, each cipher.
// Inside the kernel harness (kTLS required); the same bodies run natively
// on the userspace path (__test__/native/http-curl.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { curlSuite } from '../helpers/http-suites.mjs'

curlSuite(httpEnv('kernel'))
