// `ktls doctor` on this host (no kTLS: it must say why, advise, and exit 1), and
// its judgement (`diagnose`, pure) on made-up hosts the tests never run on.
// The offloaded side is __test__/kernel/doctor.spec.mjs.
import test from 'ava'
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { hostEvidenceOfKernelTls } from '../helpers/kernel.mjs'

const require = createRequire(import.meta.url)
const { diagnose } = require('../../dist/doctor.js')
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))
const onUserspaceHost = hostEvidenceOfKernelTls() ? test.skip : test
const MODULE_CODES = ['NO_BINARY', 'MODULE_ABSENT', 'NO_AUTOLOAD', 'MODULE_NOT_LOADED', 'CONTAINER_NO_MODULE', 'WSL_KERNEL', 'ULP_REFUSED']

// napi-rs's loader override, pointed at nothing: ktls runs as its node:tls fallback.
const WITHOUT_BINARY = { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: fileURLToPath(new URL('no-such-binding.node', import.meta.url)) }

function doctor(...args) {
  return doctorIn(process.env, ...args)
}

function doctorIn(env, ...args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'doctor', ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? err.code : 0, stdout, stderr })
    })
  })
}

onUserspaceHost('doctor --json without kTLS: exit 1, the module problem with advice, a self-test in userspace', async (t) => {
  const { status, stdout } = await doctor('--json')
  t.is(status, 1)
  const report = JSON.parse(stdout)
  t.false(report.ok)
  t.false(report.capabilities.ulp)
  t.not(report.module.state, 'loaded')
  const errors = report.problems.filter((p) => p.severity === 'error')
  t.is(errors.length, 1, JSON.stringify(report.problems))
  t.true(MODULE_CODES.includes(errors[0].code), errors[0].code)
  for (const p of report.problems) t.regex(p.advice, /\S/, p.code)
  t.true(report.selfTest.roundTrip, JSON.stringify(report.selfTest.error))
  for (const side of [report.selfTest.client, report.selfTest.server]) {
    t.false(side.tx)
    t.false(side.rx)
    t.is(typeof side.reason, 'string')
  }
  t.is(report.tlsStat, null, '/proc/net/tls_stat is absent when tls never loaded')
})

onUserspaceHost('doctor without --json: a human report with one advice line per problem, exit 1', async (t) => {
  const [{ status, stdout }, json] = await Promise.all([doctor(), doctor('--json')])
  t.is(status, 1)
  t.throws(() => JSON.parse(stdout))
  const problems = JSON.parse(json.stdout).problems
  t.is(stdout.split('\n').filter((l) => /^\s+advice: /.test(l)).length, problems.length)
  t.regex(stdout, /^result: /m)
})

test('doctor --json without the ktls binary: NO_BINARY first, the self-test on the node:tls fallback, exit 1', async (t) => {
  const { status, stdout } = await doctorIn(WITHOUT_BINARY, '--json')
  t.is(status, 1)
  const report = JSON.parse(stdout)
  t.false(report.ok)
  t.is(typeof report.bindingError, 'string')
  t.deepEqual(report.problems.map((p) => p.code), ['NO_BINARY'])
  t.true(report.selfTest.roundTrip, JSON.stringify(report.selfTest.error))
  t.false(report.selfTest.client.tx)
  t.false(report.selfTest.server.rx)
})

// ---- diagnose() on made-up facts ----

const SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']
const on = { tx: true, rx: true, cipher: 'TLS_AES_128_GCM_SHA256' }
const off = { tx: false, rx: false, cipher: 'TLS_AES_128_GCM_SHA256', reason: 'why not' }

function facts({ ulp = true, module = 'loaded', env = {}, client = ulp ? on : off, server = client, error, ciphers = SUITES, bindingError = null } = {}) {
  return {
    kernel: '6.12.0',
    bindingError,
    module: { state: module, detail: 'test' },
    environment: { container: [], wsl: false, capNetAdmin: true, capSysModule: true, distro: 'debian', ...env },
    capabilities: {
      kernel: '6.12.0',
      ulp,
      ...(ulp ? {} : { reason: 'no tls' }),
      ciphers: Object.fromEntries(SUITES.map((s) => [s, ulp && ciphers.includes(s)])),
      rekey: false,
      rxExpectNoPad: ulp,
      txZeroCopy: ulp,
      txMaxPayload: false,
    },
    selfTest: { roundTrip: !error, client: error ? null : client, server: error ? null : server, ...(error ? { error } : {}), counters: { before: null, after: null } },
    tlsStat: ulp ? {} : null,
  }
}

const codes = (report) => report.problems.map((p) => p.code)

test('diagnose: offloaded both ways is ok, with no problems', (t) => {
  const report = diagnose(facts())
  t.true(report.ok)
  t.deepEqual(codes(report), [])
})

for (const [title, input, code] of [
  ['no module in this kernel', { ulp: false, module: 'absent' }, 'MODULE_ABSENT'],
  ['a module on disk and no CAP_NET_ADMIN to autoload it', { ulp: false, module: 'loadable', env: { capNetAdmin: false } }, 'NO_AUTOLOAD'],
  ['a module on disk that did not autoload', { ulp: false, module: 'loadable' }, 'MODULE_NOT_LOADED'],
  ['a container whose host has not loaded tls', { ulp: false, module: 'absent', env: { container: ['/.dockerenv'], capNetAdmin: false } }, 'CONTAINER_NO_MODULE'],
  ['WSL', { ulp: false, module: 'absent', env: { wsl: true } }, 'WSL_KERNEL'],
  ['no ktls binary for this platform', { ulp: false, module: 'absent', bindingError: 'Cannot find module' }, 'NO_BINARY'],
  ['a loaded module that refuses the ULP', { ulp: false, module: 'loaded' }, 'ULP_REFUSED'],
  ['a ULP that works but a pair that was not offloaded', { client: off }, 'SELF_TEST_NOT_OFFLOADED'],
  ['a self-test that failed', { error: { code: 'ETIMEDOUT', message: 'x' } }, 'SELF_TEST_FAILED'],
]) {
  test(`diagnose: ${title} is ${code}, not ok`, (t) => {
    const report = diagnose(facts(input))
    t.false(report.ok)
    t.deepEqual(codes(report), [code])
    t.is(report.problems[0].severity, 'error')
  })
}

test('diagnose: one side not offloaded is not ok', (t) => {
  const report = diagnose(facts({ client: on, server: { ...on, rx: false, reason: 'why not' } }))
  t.false(report.ok)
  t.deepEqual(codes(report), ['SELF_TEST_NOT_OFFLOADED'])
})

test('diagnose: a cipher the kernel lacks is a warning and offload still ok', (t) => {
  const report = diagnose(facts({ ciphers: SUITES.slice(0, 2) }))
  t.true(report.ok)
  t.deepEqual(codes(report), ['CIPHER_NOT_OFFLOADED'])
  t.is(report.problems[0].severity, 'warning')
})

test('diagnose: the container advice offers --cap-add only when CAP_NET_ADMIN is missing', (t) => {
  const advice = (capNetAdmin) => diagnose(facts({ ulp: false, module: 'absent', env: { container: ['container=podman'], capNetAdmin } })).problems[0].advice
  t.regex(advice(false), /--cap-add NET_ADMIN/)
  t.notRegex(advice(true), /--cap-add/)
})
