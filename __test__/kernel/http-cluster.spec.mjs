// Two cluster workers sharing one ktls HTTPS port.
// Inside the kernel harness (kTLS required); the same bodies run natively
// on the userspace path (__test__/native/http-cluster.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { clusterSuite } from '../helpers/http-suites.mjs'

clusterSuite(httpEnv('kernel'))
