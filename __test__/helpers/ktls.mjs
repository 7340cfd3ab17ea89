// The package under test, loaded the way a CommonJS consumer would load it:
// TypeScript compiles src/ to dist/index.js (CommonJS).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export const ktls = require('../../dist/index.js')
export default ktls
