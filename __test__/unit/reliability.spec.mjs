// Churn, faults at every stage and hostile clients on the userspace path;
// the offloaded twin is __test__/kernel/reliability.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { reliabilitySuite } from '../helpers/suites/reliability.mjs'

test.after.always(cleanupAll)

reliabilitySuite(tlsEnv('unit'))
