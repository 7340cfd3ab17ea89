// Two cluster workers sharing one ktls HTTPS port.
// Userspace path on this host; the same bodies run in the kernel harness
// (__test__/kernel/http-cluster.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { clusterSuite } from '../helpers/http-suites.mjs'

clusterSuite(httpEnv('native'))
