// socket.sendFile(): file ranges in order with writes; sendfile(2) where the kernel writes the records.
// Shared bodies with __test__/kernel/sendfile.spec.mjs.
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { sendfileSuite } from '../helpers/suites/sendfile.mjs'

test.after.always(cleanupAll)

sendfileSuite(tlsEnv('unit'))
