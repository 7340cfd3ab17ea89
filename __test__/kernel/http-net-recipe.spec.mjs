// A plain net.Server handing chosen connections to ktls (first byte, port, ktls.upgrade).
// Inside the kernel harness (kTLS required); the same bodies run natively
// on the userspace path (__test__/native/http-net-recipe.spec.mjs).
import { httpEnv } from '../helpers/http.mjs'
import { netRecipeSuite } from '../helpers/http-suites.mjs'

netRecipeSuite(httpEnv('kernel'))
