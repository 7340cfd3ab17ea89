// Userspace-path interop with the openssl CLI, 8 MiB each way per TLS 1.3 suite.
// The bodies are shared with the kernel harness (__test__/kernel/interop.spec.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { opensslInteropSuite } from '../helpers/suites/interop.mjs'

test.after.always(cleanupAll)

opensslInteropSuite(tlsEnv('unit'), { mib: 8 })
