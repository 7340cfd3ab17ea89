// TLS over a generic Duplex and inside another TLS socket, in the kernel: the outer socket of TLS-inside-TLS is offloaded.
// Shared bodies with __test__/unit/streams.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { streamsSuite } from '../helpers/suites/streams.mjs'

test.after.always(cleanupAll)

streamsSuite(tlsEnv('kernel'))
