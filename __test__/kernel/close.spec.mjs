// Orderly shutdown with offloaded sockets: half-close both ways, close_notify.
// The bodies are shared with the userspace suite (__test__/unit/lifecycle.spec.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { halfCloseSuite, closeNotifySuite } from '../helpers/suites/lifecycle.mjs'

test.after.always(cleanupAll)

const env = tlsEnv('kernel')
halfCloseSuite(env)
closeNotifySuite(env)
