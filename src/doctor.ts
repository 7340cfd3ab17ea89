// `ktls doctor`: why kernel TLS does or does not work here, with advice.
//
// Gathering facts (files, modinfo, a live loopback pair) is kept apart from
// judging them (`diagnose`, pure), so the judgement is tested with made-up
// facts for hosts the tests never run on (WSL, a container without the module).
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
// From index: where no binary loads, these are the node:tls fallback's.
import { type Capabilities, type KtlsSocket, type KtlsStatus, capabilities, connect, createServer } from './index'
import { bindingLoadError } from './native'
import { SUITES, SUITE_MODULES, capabilityLines } from './probe'
import { generateSelfSigned } from './selfsigned'

/** Where the `tls` module stands: loaded as a module, built in, on disk but not loaded, or nowhere. */
export type ModuleState = 'loaded' | 'builtin' | 'loadable' | 'absent'

export interface ModuleFacts {
  state: ModuleState
  /** The module file (loadable), or what was searched (absent). */
  detail: string
}

export interface EnvironmentFacts {
  /** Evidence of a container (`/.dockerenv`, `container=podman`...); empty outside one. */
  container: string[]
  wsl: boolean
  /** From CapEff: the kernel autoloads `tls` on first use only for CAP_NET_ADMIN. */
  capNetAdmin: boolean
  capSysModule: boolean
  /** ID from /etc/os-release (`ubuntu`, `debian`...), for distribution advice. */
  distro: string | null
}

/** /proc/net/tls_stat as { TlsCurrTxSw: 0, ... }. */
export type TlsStat = Record<string, number>

export interface SelfTest {
  /** Bytes sent by the client came back intact through the server. */
  roundTrip: boolean
  client: KtlsStatus | null
  server: KtlsStatus | null
  /** The failure, when the pair did not connect or echo. */
  error?: { code: string; message: string }
  /** /proc/net/tls_stat before the pair connected, and after its round trip (both still open). */
  counters: { before: TlsStat | null; after: TlsStat | null }
}

export interface Problem {
  /** Stable, for scripts: see docs/doctor.md. */
  code: string
  /** 'error': offload cannot work; 'warning': some connections stay in userspace. */
  severity: 'error' | 'warning'
  message: string
  advice: string
}

export interface DoctorReport {
  /** Offload works end to end: the self-test's pair was offloaded both ways and echoed. */
  ok: boolean
  kernel: string
  /** Why ktls's native binary did not load (this platform has none); null when it loaded. */
  bindingError: string | null
  module: ModuleFacts
  environment: EnvironmentFacts
  capabilities: Capabilities
  selfTest: SelfTest
  /** null: /proc/net/tls_stat does not exist, so the module was never loaded. */
  tlsStat: TlsStat | null
  problems: Problem[]
}

export type Facts = Omit<DoctorReport, 'ok' | 'problems'>

/** Gathers every fact, runs the self-test, and judges. */
export async function doctor(): Promise<DoctorReport> {
  const caps = capabilities()
  const selfTest = await runSelfTest()
  const facts: Facts = {
    kernel: caps.kernel,
    bindingError: bindingLoadError ? bindingLoadError.message : null,
    module: moduleFacts(caps.kernel),
    environment: environmentFacts(),
    capabilities: caps,
    selfTest,
    tlsStat: readTlsStat(),
  }
  return diagnose(facts)
}

/** The judgement: problems with advice, and whether offload works. */
export function diagnose(facts: Facts): DoctorReport {
  const problems = [...moduleProblems(facts), ...selfTestProblems(facts), ...cipherProblems(facts.capabilities)]
  return { ok: offloaded(facts.selfTest), ...facts, problems }
}

function offloaded(test: SelfTest): boolean {
  const both = (s: KtlsStatus | null) => s?.tx === true && s.rx === true
  return test.roundTrip && both(test.client) && both(test.server)
}

const PERSIST = '`echo tls | sudo tee /etc/modules-load.d/tls.conf` loads it at every boot'

function moduleProblems({ capabilities: caps, module, environment: env, bindingError }: Facts): Problem[] {
  if (caps.ulp) return []
  const error = (code: string, message: string, advice: string): Problem[] => [{ code, severity: 'error', message, advice }]
  if (bindingError !== null) {
    return error('NO_BINARY', caps.reason ?? bindingError, 'install without `--omit=optional` on a platform ktls ships a binary for (Linux x64 glibc), or build it in a checkout (`npm run build:native`, needs cargo)')
  }
  if (module.state === 'loaded' || module.state === 'builtin') {
    return error('ULP_REFUSED', `the tls module is ${module.state} but TCP_ULP "tls" fails: ${caps.reason ?? 'no reason'}`, 'run `ktls doctor --json` and report its output')
  }
  if (env.wsl) {
    return error('WSL_KERNEL', 'WSL 2\'s kernel has no tls module', 'build a WSL kernel with CONFIG_TLS=y and name it in .wslconfig (`[wsl2] kernel=...`), or run on a Linux machine')
  }
  if (env.container.length > 0) {
    // The kernel autoloads through the host's modprobe, for CAP_NET_ADMIN in the initial namespace.
    const then = env.capNetAdmin
      ? 'it did not load on first use although this process has CAP_NET_ADMIN, so the host kernel may lack it (CONFIG_TLS)'
      : 'or start the container with `--cap-add NET_ADMIN` so the kernel loads it on first use'
    return error(
      'CONTAINER_NO_MODULE',
      `inside a container (${env.container.join(', ')}) the host's kernel must provide tls, and it is not loaded`,
      `on the host: \`sudo modprobe tls\` (${PERSIST}); ${then}`,
    )
  }
  if (module.state === 'absent') {
    const where = env.distro === 'ubuntu' ? 'install `linux-modules-extra-$(uname -r)` (Ubuntu ships tls.ko there)' : 'install your distribution\'s extra kernel modules package'
    return error('MODULE_ABSENT', `this kernel has no tls module (${module.detail})`, `${where}, or use a kernel built with CONFIG_TLS=m or =y`)
  }
  if (!env.capNetAdmin) {
    return error('NO_AUTOLOAD', `tls is installed (${module.detail}) but not loaded, and without CAP_NET_ADMIN the kernel does not load it on first use`, `\`sudo modprobe tls\` once; ${PERSIST}`)
  }
  return error('MODULE_NOT_LOADED', `tls is installed (${module.detail}) but did not load on first use (blacklisted in /etc/modprobe.d?)`, `\`sudo modprobe tls\`; ${PERSIST}`)
}

function selfTestProblems({ capabilities: caps, selfTest }: Facts): Problem[] {
  if (selfTest.error) {
    return [{ code: 'SELF_TEST_FAILED', severity: 'error', message: `the loopback self-test failed: ${selfTest.error.code}: ${selfTest.error.message}`, advice: 'run `ktls doctor --json` and report its output' }]
  }
  // Without the ULP the module problem already says why the pair stayed in userspace.
  if (!caps.ulp || offloaded(selfTest)) return []
  const why = selfTest.client?.reason ?? selfTest.server?.reason ?? 'no reason given'
  return [{ code: 'SELF_TEST_NOT_OFFLOADED', severity: 'error', message: `the kernel takes TLS but the self-test pair was not offloaded: ${why}`, advice: 'run `ktls doctor --json` and report its output' }]
}

function cipherProblems(caps: Capabilities): Problem[] {
  if (!caps.ulp) return []
  return SUITES.filter((s) => !caps.ciphers[s]).map((suite) => ({
    code: 'CIPHER_NOT_OFFLOADED',
    severity: 'warning' as const,
    message: `connections that negotiate ${suite} stay in userspace`,
    advice: `\`sudo modprobe ${SUITE_MODULES[suite]}\` may give the kernel that cipher`,
  }))
}

// ---- facts ----

export function readTlsStat(): TlsStat | null {
  const text = readText('/proc/net/tls_stat')
  if (text === null) return null
  const out: TlsStat = {}
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s+(\d+)$/.exec(line.trim())
    if (m) out[m[1]] = Number(m[2])
  }
  return out
}

function moduleFacts(kernel: string): ModuleFacts {
  if (/^tls\s/m.test(readText('/proc/modules') ?? '')) return { state: 'loaded', detail: '/proc/modules' }
  // A built-in tls has /sys/module/tls without initstate (or nothing there at all).
  if (existsSync('/sys/module/tls') && !existsSync('/sys/module/tls/initstate')) return { state: 'builtin', detail: '/sys/module/tls' }
  const modules = `/lib/modules/${kernel}`
  if (/(^|\/)tls\.ko/m.test(readText(`${modules}/modules.builtin`) ?? '')) return { state: 'builtin', detail: `${modules}/modules.builtin` }
  const file = modinfoPath() ?? moduleFile(modules)
  if (file === '(builtin)') return { state: 'builtin', detail: 'modinfo' }
  if (file) return { state: 'loadable', detail: file }
  const why = existsSync(modules) ? `no tls.ko under ${modules}` : `no ${modules}`
  return { state: 'absent', detail: why }
}

/** `modinfo -n tls`: the module's file, "(builtin)", or null (no modinfo, or no module). */
function modinfoPath(): string | null {
  try {
    return execFileSync('modinfo', ['-n', 'tls'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim() || null
  } catch {
    return null
  }
}

function moduleFile(modules: string): string | null {
  for (const ext of ['', '.xz', '.zst', '.gz']) {
    const path = `${modules}/kernel/net/tls/tls.ko${ext}`
    if (existsSync(path)) return path
  }
  return null
}

function environmentFacts(): EnvironmentFacts {
  const caps = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(readText('/proc/self/status') ?? '')?.[1] ?? '0'}`)
  const has = (bit: number) => (caps & (1n << BigInt(bit))) !== 0n
  return {
    container: containerEvidence(),
    wsl: /microsoft/i.test(readText('/proc/version') ?? '') || process.env.WSL_DISTRO_NAME !== undefined,
    capNetAdmin: has(12), // CAP_NET_ADMIN
    capSysModule: has(16), // CAP_SYS_MODULE
    distro: /^ID="?([^"\n]+)"?$/m.exec(readText('/etc/os-release') ?? '')?.[1] ?? null,
  }
}

function containerEvidence(): string[] {
  const evidence = ['/.dockerenv', '/run/.containerenv'].filter((p) => existsSync(p))
  if (process.env.container) evidence.push(`container=${process.env.container}`)
  const cgroup = /\b(docker|kubepods|containerd|libpod|lxc)\b/.exec(readText('/proc/1/cgroup') ?? '')
  if (cgroup) evidence.push(`/proc/1/cgroup: ${cgroup[1]}`)
  return evidence
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

// ---- self-test ----

const SELF_TEST_BYTES = 64 * 1024
const SELF_TEST_TIMEOUT_MS = 30_000

/** A ktls server and client on 127.0.0.1: handshake, an echoed round trip, then each side's status. */
export async function runSelfTest(): Promise<SelfTest> {
  const result: SelfTest = { roundTrip: false, client: null, server: null, counters: { before: readTlsStat(), after: null } }
  const { key, cert } = generateSelfSigned({ names: ['localhost', '127.0.0.1'], days: 1 })
  const sockets: KtlsSocket[] = []
  const server = createServer({ key, cert }, (socket) => {
    sockets.push(socket)
    result.server = { ...socket.ktls }
    socket.on('error', () => {}) // the client's outcome tells the story
    socket.pipe(socket)
  })
  let timer: NodeJS.Timeout | undefined
  try {
    const port = await listen(server)
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`no echo within ${SELF_TEST_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })), SELF_TEST_TIMEOUT_MS)
    })
    const client = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: cert })
    sockets.push(client)
    await Promise.race([echo(client), timeout])
    result.roundTrip = true
    result.client = { ...client.ktls }
    result.counters.after = readTlsStat()
  } catch (err) {
    const e = err as Error & { code?: string }
    result.error = { code: e.code ?? 'ERROR', message: e.message }
  } finally {
    clearTimeout(timer)
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  }
  return result
}

function listen(server: ReturnType<typeof createServer>): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  })
}

/** Sends random bytes once secure and resolves when the same bytes came back. */
function echo(client: KtlsSocket): Promise<void> {
  const sent = randomBytes(SELF_TEST_BYTES)
  return new Promise((resolve, reject) => {
    const got: Buffer[] = []
    let length = 0
    client.once('error', reject)
    client.once('secureConnect', () => client.write(sent))
    client.on('data', (chunk: Buffer) => {
      got.push(chunk)
      length += chunk.length
      if (length < sent.length) return
      if (Buffer.concat(got).equals(sent)) resolve()
      else reject(Object.assign(new Error('the echo differs from what was sent'), { code: 'ERR_KTLS_SELF_TEST_MISMATCH' }))
    })
    client.once('end', () => reject(Object.assign(new Error(`the server closed after ${length} of ${sent.length} bytes`), { code: 'ECONNRESET' })))
  })
}

// ---- output ----

/** The human report. */
export function doctorText(report: DoctorReport): string {
  const { module, environment: env, selfTest } = report
  const lines = [
    ...capabilityLines(report.capabilities),
    `tls module        ${module.state} (${module.detail})`,
    `environment       ${environmentLine(env)}`,
    ...selfTestLines(selfTest),
    ...statLines(report.tlsStat, selfTest.counters),
  ]
  if (report.problems.length > 0) {
    lines.push('', 'problems')
    for (const p of report.problems) lines.push(`  ${p.severity}: ${p.message}`, `    advice: ${p.advice}`)
  }
  lines.push('', report.ok ? 'result: offload works end to end (exit 0)' : 'result: offload does not work here (exit 1); connections still work, in userspace')
  return lines.join('\n')
}

function environmentLine(env: DoctorReport['environment']): string {
  const parts = [env.container.length > 0 ? `container (${env.container.join(', ')})` : 'no container seen']
  if (env.wsl) parts.push('WSL')
  parts.push(`CAP_NET_ADMIN ${env.capNetAdmin ? 'yes' : 'no'}`, `CAP_SYS_MODULE ${env.capSysModule ? 'yes' : 'no'}`)
  if (env.distro) parts.push(env.distro)
  return parts.join(', ')
}

function selfTestLines(test: SelfTest): string[] {
  if (test.error) return [`self-test         failed: ${test.error.code}: ${test.error.message}`]
  const side = (name: string, s: KtlsStatus | null) => {
    if (!s) return `  ${name.padEnd(16)}no status`
    const where = (on: boolean) => (on ? 'kernel' : 'userspace')
    return `  ${name.padEnd(16)}tx ${where(s.tx)}, rx ${where(s.rx)}${s.tx && s.rx ? '' : `: ${s.reason ?? 'no reason given'}`}`
  }
  return [`self-test         loopback round trip ${test.roundTrip ? 'ok' : 'failed'} (${test.client?.cipher ?? 'no cipher'})`, side('client', test.client), side('server', test.server)]
}

const SHOWN_COUNTERS = ['TlsCurrTxSw', 'TlsCurrRxSw', 'TlsTxSw', 'TlsRxSw', 'TlsDecryptError']

function statLines(stat: TlsStat | null, counters: SelfTest['counters']): string[] {
  if (stat === null) return ['tls_stat          /proc/net/tls_stat absent: the tls module was never loaded']
  const lines = ['tls_stat          before and after the self-test (/proc/net/tls_stat)']
  for (const name of SHOWN_COUNTERS) {
    if (!(name in stat)) continue
    lines.push(`  ${name.padEnd(16)}${String(counters.before?.[name] ?? '-').padStart(8)} -> ${String(counters.after?.[name] ?? '-')}`)
  }
  return lines
}
