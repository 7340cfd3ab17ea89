// exportKeyingMaterial, getFinished()/getPeerFinished() and 'keylog' against node:tls (shared bodies: ../helpers/suites/exporter.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { exporterSuite, finishedSuite, keylogSuite } from '../helpers/suites/exporter.mjs'

test.after.always(cleanupAll)

exporterSuite(tlsEnv('unit'))
keylogSuite(tlsEnv('unit'))
finishedSuite(tlsEnv('unit'))
