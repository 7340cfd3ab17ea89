// TLS over a generic Duplex and inside another TLS socket, on this host.
// The same bodies run in the kernel suites (__test__/kernel/streams.spec.mjs),
// where the outer socket of TLS-inside-TLS is offloaded.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { streamsSuite } from '../helpers/suites/streams.mjs'

test.after.always(cleanupAll)

streamsSuite(tlsEnv('unit'))
