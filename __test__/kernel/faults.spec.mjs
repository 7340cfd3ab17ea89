// Faults after offload: tampered records (kernel EBADMSG), alerts arriving as
// kTLS control records, and resets. The process must survive all of them.
// The bodies are shared with the userspace suite (__test__/unit/faults.spec.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { faultsSuite } from '../helpers/suites/faults.mjs'

test.after.always(cleanupAll)

faultsSuite(tlsEnv('kernel'))
