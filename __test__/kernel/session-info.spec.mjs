// Resumption, key exchange and version choices against node:tls (shared bodies: ../helpers/suites/session-info.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { sessionInfoSuite } from '../helpers/suites/session-info.mjs'

test.after.always(cleanupAll)

sessionInfoSuite(tlsEnv('kernel'))
