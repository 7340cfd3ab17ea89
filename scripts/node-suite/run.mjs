#!/usr/bin/env node
// Node's own test/parallel/test-tls-*.js against ktls: each test runs once on
// stock Node and once with ./preload.cjs (tls.connect, createServer, Server,
// createSecureContext and TLSSocket swapped for ktls's). Counts the tests
// that pass on stock Node and how many of those pass with ktls, in all and
// among those that call one of the swapped entry points (the others pass
// whatever ktls does).
//
//   node scripts/node-suite/run.mjs <node source tree> [--jobs N] [--out file.json]
//
// The tree is Node's source (Debian's `nodejs` source package carries the
// tests: apt-get source nodejs, or its orig tarball); its test/common and
// test/fixtures are used as they are.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { jobs: { type: 'string', default: '2' }, out: { type: 'string' }, timeout: { type: 'string', default: '30' } },
})
const tree = positionals[0]
if (!tree) {
  console.error('usage: run.mjs <node source tree> [--jobs N] [--out file.json]')
  process.exit(2)
}
const PRELOAD = new URL('./preload.cjs', import.meta.url).pathname
const dir = join(tree, 'test', 'parallel')
const files = readdirSync(dir).filter((f) => /^test-tls-.*\.js$/.test(f)).sort()

/** The `// Flags:` line of a Node test (tools/test.py passes them to node). */
function flagsOf(file) {
  const m = /^\/\/ Flags: (.*)$/m.exec(readFileSync(join(dir, file), 'utf8'))
  return m ? m[1].trim().split(/\s+/) : []
}

const marks = mkdtempSync(join(tmpdir(), 'ktls-node-suite-'))
process.on('exit', () => rmSync(marks, { recursive: true, force: true }))

function runOne(file, preload) {
  const args = [...flagsOf(file), ...(preload ? ['--require', PRELOAD] : []), join(dir, file)]
  const mark = join(marks, file)
  const env = { ...process.env, KTLS_SUITE_MARK: mark }
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: tree, env, timeout: Number(values.timeout) * 1000, maxBuffer: 16 << 20 }, (err, _out, stderr) => {
      const usedKtls = preload && existsSync(mark)
      resolve({ pass: !err, usedKtls, code: err?.code ?? 0, signal: err?.signal ?? null, why: err ? firstError(String(stderr), err) : '' })
    })
  })
}

/** The line that says what went wrong: the thrown error's, else how it ended. */
function firstError(stderr, err) {
  const line = stderr.split('\n').find((l) => /^(\w*Error|AssertionError|KtlsError)\b|^\s+code: /.test(l))
  if (line) return line.trim().slice(0, 200)
  return err.killed || err.signal ? `killed (${err.signal ?? 'timeout'})` : `exit ${err.code}`
}

const results = {}
let next = 0
async function worker() {
  while (next < files.length) {
    const file = files[next++]
    const stock = await runOne(file, false)
    const ktls = stock.pass ? await runOne(file, true) : null
    results[file] = { stock: stock.pass, ktls: ktls?.pass ?? null, usedKtls: ktls?.usedKtls ?? null, why: ktls && !ktls.pass ? ktls.why : undefined }
    console.error(`${file}: stock ${stock.pass ? 'pass' : 'fail'}${ktls ? `, ktls ${ktls.pass ? 'pass' : 'FAIL'}` : ''}`)
  }
}
await Promise.all(Array.from({ length: Number(values.jobs) }, worker))
const stockPass = Object.values(results).filter((r) => r.stock).length
const ktlsPass = Object.values(results).filter((r) => r.ktls).length
const using = Object.values(results).filter((r) => r.stock && r.usedKtls)
const summary = {
  node: process.version,
  tests: files.length,
  passOnStockNode: stockPass,
  passWithKtls: ktlsPass,
  // Among the tests passing on stock Node, those that call ktls's entry points.
  usingKtls: using.length,
  usingKtlsPassWithKtls: using.filter((r) => r.ktls).length,
}
console.log(JSON.stringify(summary))
if (values.out) writeFileSync(values.out, JSON.stringify({ ...summary, results }, null, 2) + '\n')
