// Mutual TLS: client certificates are asked for and judged during the
// handshake, then both directions are offloaded. Shared bodies with
// __test__/unit/mtls.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { mtlsSuite } from '../helpers/suites/mtls.mjs'

test.after.always(cleanupAll)

mtlsSuite(tlsEnv('kernel'))
