// A plain net.Server handing chosen connections to ktls (first byte, port, ktls.upgrade).
// Userspace path on this host; the same bodies run in the kernel harness
// (__test__/kernel/http-net-recipe.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { netRecipeSuite } from '../helpers/http-suites.mjs'

netRecipeSuite(httpEnv('native'))
