// Packet-capture proof that offloaded application data is encrypted on the wire.
// The body is shared with the userspace suite (__test__/unit/capture.spec.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { captureSuite } from '../helpers/suites/capture.mjs'

test.after.always(cleanupAll)

captureSuite(tlsEnv('kernel'))
