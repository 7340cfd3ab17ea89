#!/usr/bin/env node
// npm run bench            all native scenarios, 5 runs each (< 10 min on 2 cores)
// npm run bench -- --smoke every scenario once, tiny (a few seconds; for CI: it
//                          checks that each runs, its figures mean nothing)
// npm run bench -- --kernel the kernel scenarios in User-Mode Linux guests with
//                          kTLS (bulk and memory, offloaded vs node:tls)
// Options: --only bulk,handshake,memory,http  --runs N  --bulk-mib N  --seconds N
//          --connections N  --profile DIR (node --cpu-prof for every peer)  --no-save
//
// Every figure is a ratio against a baseline measured in the same run, with
// min/median/max over the runs. Results go to bench/results/<date>-<kind>.json.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { bulk } from './bulk.mjs'
import { handshake } from './handshake.mjs'
import { memory } from './memory.mjs'
import { httpServing, WORKLOADS } from './http.mjs'
import { files, FILE_WORKLOADS } from './files.mjs'
import { makeCerts } from './lib/certs.mjs'
import { codeInfo, freezePackage, machineInfo } from './lib/machine.mjs'
import { evaluate } from './lib/targets.mjs'
import { bulkSplitTable, bulkTable, filesTable, handshakeTable, httpTable, memoryTable, targetsTable, text } from './lib/tables.mjs'

const ROOT = new URL('..', import.meta.url).pathname
const RESULTS = join(ROOT, 'bench', 'results')
const MiB = 2 ** 20

const { values: opts } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    kernel: { type: 'boolean', default: false },
    guest: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    'bulk-mib': { type: 'string' },
    seconds: { type: 'string' },
    connections: { type: 'string' },
    profile: { type: 'string' },
    'no-save': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})

/** What each mode runs. Natively the host has no kTLS: 'ktls-raw' stands in for the offloaded path. */
function plan() {
  const num = (name, fallback) => (opts[name] === undefined ? fallback : Number(opts[name]))
  const runs = num('runs', opts.smoke ? 1 : 5)
  if (opts.guest) {
    return {
      bulk: { variants: ['net', 'tls', 'ktls-user', 'ktls'], bytes: num('bulk-mib', 256) * MiB, runs, aes: false },
      memory: { variants: ['tls', 'ktls'], connections: num('connections', 5000), runs, idle: 1 },
      // UML's kernel crypto is generic C: 8 MiB responses, so a run completes some.
      http: { variants: ['https', 'ktls'], workloads: ['small', 'bulk'], runs, seconds: num('seconds', 5), bulkBytes: 8 * MiB },
      files: { variants: ['https', 'ktls'], workloads: ['16k-4', '1m-4', '64m-4'], runs, seconds: num('seconds', 5), aes: false },
    }
  }
  if (opts.smoke) {
    return {
      bulk: { variants: ['net', 'tls', 'ktls-user', 'ktls-raw'], bytes: num('bulk-mib', 4) * MiB, runs, aes: 'parallel' },
      handshake: { runs, seconds: num('seconds', 0.2), warmup: 0.05, concurrency: 4 },
      memory: { variants: ['tls', 'ktls-user'], connections: num('connections', 20), runs, idle: 0 },
      http: { variants: HTTP_NATIVE, workloads: Object.keys(WORKLOADS), runs, seconds: num('seconds', 1), bulkBytes: MiB },
      files: { variants: FILES_NATIVE, workloads: ['16k-4', '64m-4'], runs, seconds: num('seconds', 1), sizeCap: MiB, aes: 'parallel' },
    }
  }
  return {
    bulk: { variants: ['net', 'tls', 'ktls-user', 'ktls-raw'], bytes: num('bulk-mib', 1024) * MiB, runs, aes: true },
    handshake: { runs, seconds: num('seconds', 10), warmup: 0.5, concurrency: 50 },
    memory: { variants: ['tls', 'ktls-user'], connections: num('connections', 5000), runs, idle: 1 },
    http: { variants: HTTP_NATIVE, workloads: Object.keys(WORKLOADS), runs, seconds: num('seconds', 5) },
    files: { variants: FILES_NATIVE, workloads: Object.keys(FILE_WORKLOADS), runs, seconds: num('seconds', 5) },
  }
}

// Natively the host has no kTLS: 'ktls-raw' stands in for the offloaded path.
const HTTP_NATIVE = ['http', 'https', 'ktls-user', 'ktls-raw']
const FILES_NATIVE = ['http', 'https', 'ktls-raw']

const SCENARIOS = { bulk, handshake, memory, http: httpServing, files }
const TABLES = { bulk: bulkTable, handshake: handshakeTable, memory: memoryTable, http: httpTable, files: filesTable }

async function runScenarios() {
  const selected = opts.only?.split(',')
  const scenarios = Object.entries(plan()).filter(([name]) => !selected || selected.includes(name))
  checkFileLimit(scenarios)
  const certs = makeCerts()
  const execArgv = opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${opts.profile}`] : []
  const results = {}
  const one = async ([name, config]) => {
    const started = Date.now()
    log(`== ${name}: ${JSON.stringify({ ...config, bytes: config.bytes && `${config.bytes / MiB} MiB` })}`)
    results[name] = await SCENARIOS[name]({ ...config, certs, execArgv, log })
    results[name].seconds = (Date.now() - started) / 1000
    console.log(`\n${text(TABLES[name](results[name]))}\n`)
    if (name === 'bulk') console.log(`CPU-s per GiB by kind:\n${text(bulkSplitTable(results[name]))}\n`)
  }
  // A smoke run only checks that everything runs: scenarios go side by side.
  if (opts.smoke) await Promise.all(scenarios.map(one))
  else for (const scenario of scenarios) await one(scenario)
  return results
}

function checkFileLimit(scenarios) {
  const mem = scenarios.find(([name]) => name === 'memory')?.[1]
  const limit = machineInfo().fileLimit
  if (mem && limit && limit < mem.connections + 200) {
    throw new Error(`ulimit -n is ${limit}; the memory scenario needs ${mem.connections + 200} descriptors per process (raise it: ulimit -n 65536)`)
  }
}

/** Measures a frozen copy of the package (or KTLS_BENCH_DIST's); returns its code info. */
function packageUnderTest() {
  if (process.env.KTLS_BENCH_DIST) return { ...codeInfo(join(process.env.KTLS_BENCH_DIST, '..')), dist: process.env.KTLS_BENCH_DIST }
  const tree = freezePackage()
  process.env.KTLS_BENCH_DIST = join(tree, 'dist') // inherited by every forked peer
  return { ...codeInfo(tree), frozen: true }
}

async function native() {
  const started = Date.now()
  const machine = machineInfo()
  const code = packageUnderTest()
  const scenarios = await runScenarios()
  if (opts.smoke) {
    log('smoke: every scenario ran (figures from a smoke run mean nothing)')
    return
  }
  const result = {
    schema: 1,
    kind: 'native',
    date: new Date(started).toISOString(),
    command: commandLine(),
    durationSeconds: (Date.now() - started) / 1000,
    machine: { ...machine, loadavgAfter: os.loadavg().map((x) => +x.toFixed(2)) },
    code,
    ...codeDrift(code),
    scenarios,
    targets: evaluate(scenarios, 'native'),
  }
  printTargets(result.targets)
  save(result, 'native')
}

/** Inside a guest: run, then leave the result where the host's run.mjs reads it. */
async function guest() {
  const started = Date.now()
  const machine = machineInfo()
  packageUnderTest()
  const scenarios = await runScenarios()
  const result = { machine, kernelRelease: os.release(), durationSeconds: (Date.now() - started) / 1000, scenarios }
  const dir = process.env.KTLS_BENCH_OUT
  if (dir) writeFileSync(join(dir, `${os.release()}.json`), JSON.stringify(result))
}

/** On the host: boot the harness's guests, each running `run.mjs --guest`. */
async function kernel() {
  const started = Date.now()
  const code = packageUnderTest() // the guest runs this frozen copy (KTLS_BENCH_DIST passes through)
  const out = mkdtempSync(join(os.tmpdir(), 'ktls-bench-guest-'))
  const passOn = process.argv.slice(2).filter((a) => a !== '--kernel')
  const inner = ['ulimit -n 65536', `exec node bench/run.mjs --guest ${passOn.map(shellQuote).join(' ')}`].join(' && ')
  const env = {
    ...process.env,
    KTLS_KERNELS: process.env.KTLS_KERNELS ?? '7.2',
    KTLS_HARNESS_TIMEOUT: process.env.KTLS_HARNESS_TIMEOUT ?? '5400',
    KTLS_BENCH_OUT: out,
  }
  const status = await new Promise((resolve) => {
    const child = spawn('bash', ['scripts/harness/run-kernel-suite.sh', 'bash', '-c', inner], { cwd: ROOT, env, stdio: 'inherit' })
    child.on('exit', (code) => resolve(code))
  })
  const files = readdirSync(out).filter((f) => f.endsWith('.json'))
  for (const file of files) {
    const g = JSON.parse(readFileSync(join(out, file), 'utf8'))
    const result = {
      schema: 1,
      kind: 'kernel',
      date: new Date(started).toISOString(),
      command: commandLine(),
      durationSeconds: g.durationSeconds,
      machine: { ...machineInfo(), guest: { ...g.machine, kernel: g.kernelRelease, harness: 'User-Mode Linux, 1 CPU, mem=2G' } },
      code,
      ...codeDrift(code),
      scenarios: g.scenarios,
      targets: evaluate(g.scenarios, 'kernel'),
    }
    log(`guest ${g.kernelRelease}:`)
    printTargets(result.targets)
    save(result, `kernel-${g.kernelRelease}`)
  }
  rmSync(out, { recursive: true, force: true })
  if (status !== 0 || files.length === 0) throw new Error(`kernel harness failed (exit ${status}, ${files.length} result files)`)
}

/**
 * The run measured the package as frozen at its start; if the checkout moved
 * on meanwhile, the result says so (the figures are still of one version).
 */
function codeDrift(atStart) {
  if (atStart.dist) return {} // KTLS_BENCH_DIST: the caller manages that tree
  const atEnd = codeInfo()
  const same = (a, b) =>
    a.commit === b.commit && a.bindingSha256 === b.bindingSha256 && a.distSocketSha256 === b.distSocketSha256 &&
    a.uncommitted.join() === b.uncommitted.join()
  if (same(atStart, atEnd)) return {}
  log(`note: the checkout moved on during this run; the run measured the copy frozen at its start (commit ${atStart.commit?.slice(0, 10)} -> ${atEnd.commit?.slice(0, 10)}, binding ${atStart.bindingSha256} -> ${atEnd.bindingSha256}, dist/socket.js ${atStart.distSocketSha256} -> ${atEnd.distSocketSha256})`)
  return { checkoutAtEnd: atEnd }
}

function printTargets(targets) {
  if (targets.length) console.log(`\nTargets (verdict on the median of per-run ratios):\n${text(targetsTable(targets))}\n`)
}

function save(result, kind) {
  if (opts['no-save']) return
  mkdirSync(RESULTS, { recursive: true })
  const file = join(RESULTS, `${result.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}-${kind}.json`)
  writeFileSync(file, JSON.stringify(result, null, 1) + '\n')
  log(`wrote ${file.slice(ROOT.length)}`)
}

const commandLine = () => ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ')
const shellQuote = (s) => `'${s.replace(/'/g, `'\\''`)}'`
function log(msg) {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`)
}

async function main() {
  if (opts.help) {
    console.log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).slice(0, 11).join('\n'))
    return
  }
  if (opts.kernel) return kernel()
  if (opts.guest) return guest()
  return native()
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
