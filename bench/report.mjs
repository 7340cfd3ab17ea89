// Regenerates the result sections of docs/benchmarks.md and the charts from
// results JSON: by default the newest native and newest kernel result in
// bench/results/. The prose around the generated blocks is kept.
//   node bench/report.mjs [NATIVE.json] [KERNEL.json]
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { renderBulkChart } from './chart.mjs'
import { bulkSplitTable, bulkTable, filesTable, handshakeTable, httpTable, markdown, memoryTable, targetsTable } from './lib/tables.mjs'

const ROOT = new URL('..', import.meta.url).pathname
const RESULTS = join(ROOT, 'bench', 'results')
const DOC = join(ROOT, 'docs', 'benchmarks.md')

/** The newest result of `kind` that measured `scenario` (a run of one scenario does not stand for the rest). */
function newest(kind, scenario = 'bulk') {
  const files = readdirSync(RESULTS)
    .filter((f) => f.endsWith('.json') && f.includes(`-${kind}`))
    .sort()
    .filter((f) => JSON.parse(readFileSync(join(RESULTS, f), 'utf8')).scenarios?.[scenario])
  return files.length ? join(RESULTS, files[files.length - 1]) : undefined
}

function section(file, chart) {
  const r = JSON.parse(readFileSync(file, 'utf8'))
  const m = r.machine
  const where =
    r.kind === 'kernel'
      ? `guest Linux ${m.guest.kernel} (User-Mode Linux, 1 CPU, mem=2G) on ${m.cpuModel}, ${m.cores} cores, host Linux ${m.kernel}`
      : `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}`
  const dirty = r.code.uncommitted.length ? ` plus uncommitted changes (${r.code.uncommitted.length} files)` : ''
  const loads = Object.values(r.scenarios).flatMap((sc) =>
    Object.values(sc.variants ?? sc.configs ?? {}).flatMap((v) => (v.runs ?? []).map((x) => x.loadavg1)),
  ).filter(Number.isFinite)
  const load = loads.length ? ` 1-minute load average during the runs ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} (2 cores; other work shares the machine).` : ''
  const out = [
    `Machine: ${where}; node ${m.node} (OpenSSL ${m.openssl}).${load}`,
    `Command: \`${r.command}\`, ${r.date}, ${Math.round(r.durationSeconds)} s. ` +
      `Code: ${r.code.commit?.slice(0, 10)} "${r.code.subject}"${dirty}, binding sha256 ${r.code.bindingSha256}. ` +
      `Raw data: [\`bench/results/${basename(file)}\`](../bench/results/${basename(file)}).`,
    '',
    'Cells: median [min-max] over the runs; ratios are taken run by run against the baseline of the same run.',
  ]
  if (r.codeChangedDuringRun) {
    const e = r.codeChangedDuringRun
    out.splice(2, 0, `**The checkout changed during this run** (at the end: ${e.commit?.slice(0, 10)}, binding ${e.bindingSha256}, dist/socket.js ${e.distSocketSha256}); some runs measured the newer code.`)
  }
  if (r.code.frozen) out.splice(2, 0, 'The run measured a copy of `dist/` and the binding frozen at its start; the hashes above are of that copy.')
  const s = r.scenarios
  if (s.bulk) {
    out.push('', `**Bulk** (${s.bulk.config.bytes / 2 ** 20} MiB each way, 64 KiB writes, ${s.bulk.config.runs} runs, separate sender and receiver processes):`, '', markdown(bulkTable(s.bulk)))
    if (s.bulk.variants.net?.senderUserPerGiB) {
      out.push('', 'Where that CPU goes, CPU-s per GiB: user time is the code under test (JS, V8, binding, rustls), system time the kernel\'s. On loopback the receiving side\'s TCP work runs in softirq context and is charged to whichever process the scheduler finds, so the sender/receiver split of system time moves from run to run; the sum does not:', '', markdown(bulkSplitTable(s.bulk)))
    }
    if (chart) out.push('', `![bulk throughput and CPU per GiB](${chart})`)
  }
  if (s.handshake) {
    const c = s.handshake.config
    out.push('', `**Handshakes** (TLS 1.3, new connection each, ${c.concurrency} concurrent clients in one process, ${c.seconds} s after ${c.warmup} s warm-up, ${c.runs} runs):`, '', markdown(handshakeTable(s.handshake)))
  }
  if (s.memory) {
    const c = s.memory.config
    const clients = c.clientProcesses > 1 ? `${c.clientProcesses} node:tls client processes` : 'a node:tls client process'
    out.push('', `**Memory** (${c.connections} idle established TLS 1.3 connections from ${clients}; server process after a full GC, ${c.runs} runs):`, '', markdown(memoryTable(s.memory)))
  }
  if (s.http) {
    const h = s.http
    out.push('', `**HTTP serving** (Node's HTTP server, or http2, fed by each transport; wrk or h2load on the other core, ${h.seconds} s after a 1 s warm-up, ${h.runs} rounds; server CPU from process.cpuUsage()):`, '', markdown(httpTable(h)))
  }
  if (s.files) {
    const f = s.files
    const aes = f.aes ? ` The projection adds AES-128-GCM's ${f.aes.encryptCpuPerGiB.median.toFixed(3)} CPU-s per GiB (\`${f.aes.method}\`, same run) to the offloaded data path's CPU.` : ''
    const window = f.window ? `${f.window} s ` : ''
    out.push('', `**Serving files** (one file per row, wrk on the other core, ${window}after a 1 s warm-up, ${f.runs} rounds; node:http/node:https pipe \`fs.createReadStream()\` into the response, ktls serves with \`serveStatic\`, bodies by \`sendfile(2)\`).${aes}`, '', markdown(filesTable(f)))
  }
  if (r.targets.length) out.push('', '**Targets** (verdict on the median of the per-run ratios):', '', markdown(targetsTable(r.targets)))
  return out.join('\n')
}

/** Every committed result's target ratios side by side: a borderline target shows as one. */
function history() {
  const runs = readdirSync(RESULTS).filter((f) => f.endsWith('.json')).sort().map((f) => ({ f, r: JSON.parse(readFileSync(join(RESULTS, f), 'utf8')) }))
  const ids = [...new Map(runs.flatMap(({ r }) => r.targets.map((t) => [t.id, t]))).values()]
  const header = ['target', 'limit', ...runs.map(({ f, r }) => `${f.slice(0, 16).replace('T', ' ')} ${r.kind}, ${r.code.commit?.slice(0, 7)}`)]
  const rows = ids.map((t) => [
    t.text,
    t.limit,
    ...runs.map(({ r }) => {
      const x = r.targets.find((y) => y.id === t.id)
      return x ? `${x.ratio.median.toFixed(2)} ${x.verdict}` : '-'
    }),
  ])
  return markdown({ header, rows })
}

function replaceBlock(doc, name, body) {
  const begin = `<!-- generated:${name}:begin (node bench/report.mjs) -->`
  const end = `<!-- generated:${name}:end -->`
  const i = doc.indexOf(begin)
  const j = doc.indexOf(end)
  if (i < 0 || j < 0) throw new Error(`docs/benchmarks.md has no ${name} block`)
  return doc.slice(0, i + begin.length) + '\n' + body + '\n' + doc.slice(j)
}

const [nativeFile = newest('native'), kernelFile = newest('kernel')] = process.argv.slice(2)
let doc = readFileSync(DOC, 'utf8')
if (nativeFile) {
  writeFileSync(join(ROOT, 'docs', 'bench-bulk.svg'), renderBulkChart(JSON.parse(readFileSync(nativeFile, 'utf8'))))
  doc = replaceBlock(doc, 'native', section(nativeFile, 'bench-bulk.svg'))
}
if (kernelFile) {
  writeFileSync(join(ROOT, 'docs', 'bench-kernel.svg'), renderBulkChart(JSON.parse(readFileSync(kernelFile, 'utf8'))))
  doc = replaceBlock(doc, 'kernel', section(kernelFile, 'bench-kernel.svg'))
}
// Serving files has its own block: its runs are made on their own (--only files).
const filesFile = newest('native', 'files')
if (filesFile && doc.includes('<!-- generated:files:begin')) doc = replaceBlock(doc, 'files', section(filesFile))
doc = replaceBlock(doc, 'history', history())
writeFileSync(DOC, doc)
console.error(`updated docs/benchmarks.md from ${[nativeFile, kernelFile].filter(Boolean).map((f) => basename(f)).join(', ')}`)
