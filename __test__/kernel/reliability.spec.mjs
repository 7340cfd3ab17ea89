// Churn, faults at every stage and hostile clients once the kernel holds the
// keys; bodies shared with __test__/unit/reliability.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { reliabilitySuite } from '../helpers/suites/reliability.mjs'

test.after.always(cleanupAll)

reliabilitySuite(tlsEnv('kernel'))
