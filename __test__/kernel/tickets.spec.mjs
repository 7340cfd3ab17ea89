// Session tickets under shared keys (shared bodies: ../helpers/suites/tickets.mjs).
import test from 'ava'
import { cleanupAll } from '../helpers/cleanup.mjs'
import { tlsEnv } from '../helpers/suites/env.mjs'
import { clientSessionsSuite, opensslSessionsSuite, sessionOrderSuite, ticketsSuite, tlsTicketSuite } from '../helpers/suites/tickets.mjs'

test.after.always(cleanupAll)

ticketsSuite(tlsEnv('kernel'))
clientSessionsSuite(tlsEnv('kernel'))
tlsTicketSuite(tlsEnv('kernel'))
opensslSessionsSuite(tlsEnv('kernel'))
sessionOrderSuite(tlsEnv('kernel'))
