// SNI on the server (addContext, SNICallback) on this host's userspace path.
// The same bodies run offloaded in __test__/kernel/sni.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { alpnCallbackSuite, sniSuite } from '../helpers/suites/sni.mjs'

test.after.always(cleanupAll)

sniSuite(tlsEnv('unit'))
alpnCallbackSuite(tlsEnv('unit'))
