// Mutual TLS on this host's userspace path. The same bodies run offloaded
// in __test__/kernel/mtls.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { mtlsSuite } from '../helpers/suites/mtls.mjs'

test.after.always(cleanupAll)

mtlsSuite(tlsEnv('unit'))
