// KtlsSockets are net.Sockets whose data libuv carries once offloaded: Node's
// HTTP parser, http2 and write path run on them. Shared bodies with
// __test__/unit/node-socket.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { nodeSocketSuite } from '../helpers/suites/node-socket.mjs'

test.after.always(cleanupAll)

nodeSocketSuite(tlsEnv('kernel'))
