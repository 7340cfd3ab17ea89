// SNI on the server (addContext, SNICallback): the context is chosen once
// the ClientHello is read, and the connection is offloaded afterwards.
// Shared bodies with __test__/unit/sni.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { alpnCallbackSuite, sniSuite } from '../helpers/suites/sni.mjs'

test.after.always(cleanupAll)

sniSuite(tlsEnv('kernel'))
alpnCallbackSuite(tlsEnv('kernel'))
