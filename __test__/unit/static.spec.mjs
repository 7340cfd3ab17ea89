// ktls.serveStatic(): files over HTTPS to curl and node:https; sendfile(2) where the kernel encrypts.
// Shared bodies with __test__/kernel/static.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { staticSuite } from '../helpers/suites/static.mjs'

test.after.always(cleanupAll)

staticSuite(tlsEnv('unit'))
