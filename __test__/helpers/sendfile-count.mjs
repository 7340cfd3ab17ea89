// Counts the binding's sendfile(2) senders made while a test runs: proof a
// file went through sendfile(2), not read+write.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { binding } = require('../../dist/native.js')

/** Counts FileSenders constructed until the test ends. */
export function countSendfile(t) {
  const original = binding.FileSender
  const counter = { made: 0 }
  binding.FileSender = new Proxy(original, {
    construct(target, args) {
      counter.made++
      return Reflect.construct(target, args)
    },
  })
  t.teardown(() => {
    binding.FileSender = original
  })
  return counter
}
