// `ktls doctor` where kTLS works (inside the harness): the self-test pair is
// offloaded both ways, the counters show it, exit status 0.
// The userspace side is __test__/unit/doctor.spec.mjs.
import test from 'ava'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ktls } from '../helpers/ktls.mjs'
import { kernelTest, tlsStatDelta } from '../helpers/kernel.mjs'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

function doctor(...args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'doctor', ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? err.code : 0, stdout, stderr })
    })
  })
}

kernelTest('doctor --json: self-test offloaded both ways, counters rose, no errors, exit 0', async (t) => {
  const { status, stdout, stderr } = await doctor('--json')
  t.is(status, 0, stderr)
  const report = JSON.parse(stdout)
  t.true(report.ok)
  t.deepEqual(report.capabilities, ktls.capabilities())
  t.true(['loaded', 'builtin'].includes(report.module.state), report.module.state)
  t.deepEqual(report.problems.filter((p) => p.severity === 'error'), [])
  const { client, server, counters, roundTrip } = report.selfTest
  t.true(roundTrip)
  for (const side of [client, server]) {
    t.true(side.tx, side.reason)
    t.true(side.rx, side.reason)
  }
  // Both ends of the pair, still open when `after` was read.
  const d = tlsStatDelta(counters.before, counters.after)
  for (const name of ['TlsCurrTxSw', 'TlsCurrRxSw', 'TlsTxSw', 'TlsRxSw']) t.is(d[name], 2, name)
  t.not(report.tlsStat, null)
})

kernelTest('doctor: the human report says offload works, with no problems section, exit 0', async (t) => {
  const { status, stdout, stderr } = await doctor()
  t.is(status, 0, stderr)
  t.notRegex(stdout, /^problems$/m)
  t.regex(stdout, /^\s+client\s+tx kernel, rx kernel$/m)
  t.regex(stdout, /^\s+server\s+tx kernel, rx kernel$/m)
})
