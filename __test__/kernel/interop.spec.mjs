// Offloaded interop matrix: 64 MiB each way, per TLS 1.3 suite, against
// openssl s_server / s_client and node:tls, with kernel-side proof of offload.
// The bodies are shared with the userspace suite (__test__/unit/interop-*.spec.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { opensslInteropSuite, nodeInteropSuite } from '../helpers/suites/interop.mjs'

test.after.always(cleanupAll)

const env = tlsEnv('kernel')
opensslInteropSuite(env, { mib: 64 })
nodeInteropSuite(env, { mib: 64 })
