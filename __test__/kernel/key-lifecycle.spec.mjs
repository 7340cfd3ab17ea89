// Our own KeyUpdates: updateKeys() and recordLimit (shared bodies: ../helpers/suites/key-lifecycle.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { keyLifecycleSuite } from '../helpers/suites/key-lifecycle.mjs'

test.after.always(cleanupAll)

keyLifecycleSuite(tlsEnv('kernel'))
