// Post-handshake records from a tlslite-ng client, and the size of ours (shared bodies: ../helpers/suites/records.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { recordSizeSuite, recordsSuite } from '../helpers/suites/records.mjs'

test.after.always(cleanupAll)

recordsSuite(tlsEnv('unit'))
recordSizeSuite(tlsEnv('unit'))
