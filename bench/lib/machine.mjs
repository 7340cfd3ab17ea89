// What ran where: machine, kernel, node, and exactly which ktls code
// (commit, uncommitted changes under src/ and crates/, binding hash).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'

const ROOT = new URL('../..', import.meta.url).pathname

function git(args) {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

function fileHash(path) {
  if (!existsSync(path)) return null
  return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)
}

function cpuModel() {
  const fromOs = os.cpus()[0]?.model
  if (fromOs && fromOs !== 'unknown') return fromOs
  const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
  return m ? m[1] : 'unknown'
}

export function machineInfo() {
  return {
    cpuModel: cpuModel(),
    cores: os.cpus().length,
    kernel: os.release(),
    arch: process.arch,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    openssl: process.versions.openssl,
    opensslCli: safe(() => execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim()),
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
    fileLimit: safe(() => Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim())),
  }
}

const BINDING = `ktls.${process.platform}-${process.arch}-gnu.node`

/** The checkout's state and the hashes of the package files under `tree` (default: the checkout). */
export function codeInfo(tree = ROOT) {
  const binding = join(tree, 'binding', BINDING)
  const dirty = git(['status', '--porcelain', '--', 'src', 'crates', 'binding/index.js', 'binding/index.d.ts'])
  return {
    commit: git(['rev-parse', 'HEAD']),
    subject: git(['log', '-1', '--format=%s']),
    uncommitted: dirty ? dirty.split('\n') : [],
    bindingSha256: fileHash(binding),
    bindingBuilt: existsSync(binding) ? statSync(binding).mtime.toISOString() : null,
    distSocketSha256: fileHash(join(tree, 'dist', 'socket.js')),
  }
}

/**
 * Others build and commit in this checkout while a run goes on, and every
 * scenario forks fresh processes that load the package anew. So a run
 * measures a frozen copy: dist/ and the binding, copied once at the start
 * (the peers find it through KTLS_BENCH_DIST). Returns its dist path.
 */
export function freezePackage() {
  const tree = mkdtempSync(join(os.tmpdir(), 'ktls-bench-package-'))
  process.once('exit', () => rmSync(tree, { recursive: true, force: true }))
  cpSync(join(ROOT, 'dist'), join(tree, 'dist'), { recursive: true, preserveTimestamps: true })
  mkdirSync(join(tree, 'binding'))
  for (const f of ['index.js', 'index.d.ts', BINDING]) {
    cpSync(join(ROOT, 'binding', f), join(tree, 'binding', f), { preserveTimestamps: true })
  }
  // Its runtime dependencies (serveStatic's) resolve from the checkout's.
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'))
  return tree
}

function safe(f) {
  try {
    return f()
  } catch {
    return null
  }
}
