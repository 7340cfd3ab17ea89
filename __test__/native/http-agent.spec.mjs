// https.request / https.get through ktls.Agent: pooling, keep-alive, errors; against node:https and ktls.
// Userspace path on this host; the same bodies run in the kernel harness
// (__test__/kernel/http-agent.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { agentSuite } from '../helpers/http-suites.mjs'

agentSuite(httpEnv('native'))
