// Post-handshake records from a tlslite-ng client (shared bodies: ../helpers/suites/records.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { recordsSuite } from '../helpers/suites/records.mjs'

test.after.always(cleanupAll)

recordsSuite(tlsEnv('unit'))
