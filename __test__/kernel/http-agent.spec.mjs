// https.request / https.get through ktls.Agent: pooling, keep-alive, errors; against node:https and ktls.
// Inside the kernel harness (kTLS required); the same bodies run natively
// on the userspace path (__test__/native/http-agent.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { agentSuite } from '../helpers/http-suites.mjs'

agentSuite(httpEnv('kernel'))
