// pfx as node:tls reads it (shared bodies: ../helpers/suites/pfx.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { pfxSuite } from '../helpers/suites/pfx.mjs'

test.after.always(cleanupAll)

pfxSuite(tlsEnv('kernel'))
