// KtlsSockets are net.Sockets, on the userspace path (this host has no kTLS).
// The same bodies run offloaded in __test__/kernel/node-socket.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { nodeSocketSuite } from '../helpers/suites/node-socket.mjs'

test.after.always(cleanupAll)

nodeSocketSuite(tlsEnv('unit'))
