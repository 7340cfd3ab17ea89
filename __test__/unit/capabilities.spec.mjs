import test from 'ava'
import { release } from 'node:os'
import { ktls } from '../helpers/ktls.mjs'
import { hostEvidenceOfKernelTls } from '../helpers/kernel.mjs'
import { TLS13_SUITES } from '../helpers/peers.mjs'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const userspaceHost = !hostEvidenceOfKernelTls()
const onUserspaceHost = userspaceHost ? test : test.skip

test('capabilities() reports the running kernel release', (t) => {
  t.is(ktls.capabilities().kernel, release())
})

test('capabilities() has the documented shape', (t) => {
  const caps = ktls.capabilities()
  t.is(typeof caps.ulp, 'boolean')
  t.is(typeof caps.rekey, 'boolean')
  t.is(typeof caps.rxExpectNoPad, 'boolean')
  t.is(typeof caps.txZeroCopy, 'boolean')
  t.is(typeof caps.ciphers, 'object')
  t.deepEqual(Object.keys(caps.ciphers).sort(), [...TLS13_SUITES].sort())
  for (const suite of TLS13_SUITES) t.is(typeof caps.ciphers[suite], 'boolean', suite)
  if (caps.ulp) t.is(caps.reason, undefined)
})

test('capabilities() is stable across calls', (t) => {
  t.deepEqual(ktls.capabilities(), ktls.capabilities())
})

onUserspaceHost('capabilities() reports ulp false with a reason on a kernel without the tls ULP', (t) => {
  const caps = ktls.capabilities()
  t.false(caps.ulp)
  t.is(typeof caps.reason, 'string')
  t.true(caps.reason.length > 0)
})

onUserspaceHost('capabilities() offers no offloadable cipher and no rekey without the tls ULP', (t) => {
  const caps = ktls.capabilities()
  for (const suite of TLS13_SUITES) t.false(caps.ciphers[suite], suite)
  t.false(caps.rekey)
})
