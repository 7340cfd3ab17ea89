// curl against the ktls HTTPS server: GET, 8 MiB POST, 1000 keep-alive requests, chunked, each cipher.
// Userspace path on this host; the same bodies run in the kernel harness
// (__test__/kernel/http-curl.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { curlSuite } from '../helpers/http-suites.mjs'

curlSuite(httpEnv('native'))
