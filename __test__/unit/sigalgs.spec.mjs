// sigalgs against node:tls (shared bodies: ../helpers/suites/sigalgs.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { sharedSigalgsSuite, sigalgsSuite } from '../helpers/suites/sigalgs.mjs'

test.after.always(cleanupAll)

sigalgsSuite(tlsEnv('unit'))
sharedSigalgsSuite(tlsEnv('unit'))
