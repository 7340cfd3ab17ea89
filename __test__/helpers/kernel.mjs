// Kernel TLS facts: /proc/net/tls_stat, what the kernel accepts, and the KTLS_REQUIRE gate.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { release } from 'node:os'
import { fileURLToPath } from 'node:url'
import { ktls } from './ktls.mjs'

/** True when the harness demands kTLS (inside the UML guests). */
export const ktlsRequired = process.env.KTLS_REQUIRE === '1'

/**
 * Parses /proc/net/tls_stat ("TlsCurrTxSw    1" lines) into
 * { TlsCurrTxSw: 1, ... }. Returns null when the file does not exist
 * (tls module not loaded / not built).
 */
export function readTlsStat() {
  let text
  try {
    text = readFileSync('/proc/net/tls_stat', 'utf8')
  } catch {
    return null
  }
  const out = {}
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s+(\d+)\s*$/.exec(line.trim())
    if (m) out[m[1]] = Number(m[2])
  }
  return out
}

/** Difference b - a for every counter of two readTlsStat() snapshots. */
export function tlsStatDelta(a, b) {
  const out = {}
  for (const k of Object.keys(b)) out[k] = b[k] - (a[k] ?? 0)
  return out
}

/**
 * What the kernel's kTLS accepts, found by __test__/probes/kernel_options.py
 * without ktls: { rekey, txZeroCopy, txMaxPayload, rxExpectNoPad }. Tests gate
 * on the probe (ktls.capabilities()), never on a version number: distribution
 * kernels backport; this is the probe's independent check.
 */
export function kernelOptions() {
  const script = fileURLToPath(new URL('../probes/kernel_options.py', import.meta.url))
  return JSON.parse(execFileSync('python3', [script], { encoding: 'utf8', timeout: 30_000 }))
}

/**
 * Independent (not via the package) evidence that this kernel has the tls ULP:
 * the module is loaded (/proc/net/tls_stat, tcp_available_ulp) or installed.
 */
export function hostEvidenceOfKernelTls() {
  if (existsSync('/proc/net/tls_stat')) return true
  try {
    if (/\btls\b/.test(readFileSync('/proc/sys/net/ipv4/tcp_available_ulp', 'utf8'))) return true
  } catch {}
  const rel = release()
  for (const p of [`/lib/modules/${rel}/kernel/net/tls`, `/usr/lib/modules/${rel}/kernel/net/tls`]) {
    if (existsSync(p)) return true
  }
  try {
    const builtin = readFileSync(`/lib/modules/${rel}/modules.builtin`, 'utf8')
    if (/net\/tls\/tls\.ko/.test(builtin)) return true
  } catch {}
  return false
}

/**
 * Gate for kernel tests. Returns true when kTLS can be used. When
 * KTLS_REQUIRE=1 and capabilities().ulp is false, the test FAILS (never skips).
 * Otherwise (developer machine without kTLS) it records a passing assertion and
 * returns false so the caller can `return`.
 */
export function requireKtls(t) {
  const caps = ktls.capabilities()
  if (caps.ulp === true) return true
  if (ktlsRequired) {
    t.fail(`KTLS_REQUIRE=1 but capabilities().ulp is ${caps.ulp} (reason: ${caps.reason}, kernel ${caps.kernel})`)
    return false
  }
  t.log(`kTLS not available here (${caps.reason}); set KTLS_REQUIRE=1 to make this a failure`)
  t.pass()
  return false
}

let ulpCache
function ulpAvailable() {
  if (ulpCache === undefined) {
    try {
      ulpCache = ktls.capabilities().ulp === true
    } catch {
      ulpCache = false
    }
  }
  return ulpCache
}

/**
 * Registers a serial kernel test. Without kTLS and without KTLS_REQUIRE=1 it is
 * registered as skipped; with KTLS_REQUIRE=1 it always runs (and requireKtls
 * makes it fail when the kernel cannot offload).
 */
export function kernelTest(title, fn) {
  if (ktlsRequired || ulpAvailable()) {
    test.serial(title, async (t) => {
      if (!requireKtls(t)) return
      await fn(t)
    })
  } else {
    test.skip(title, fn)
  }
}

/** readTlsStat(), or {} when the tls module has not been loaded yet. */
export function statSnapshot() {
  return readTlsStat() ?? {}
}

/** Asserts both directions of `sock` are offloaded (getsockopt read-back). */
export function assertOffloaded(t, sock, suite) {
  t.is(sock.ktls?.tx, true, `tx not offloaded (reason: ${sock.ktls?.reason})`)
  t.is(sock.ktls?.rx, true, `rx not offloaded (reason: ${sock.ktls?.reason})`)
  if (suite) t.is(sock.ktls.cipher, suite)
}

/**
 * Asserts that, since `before`, exactly `n` sockets got software kTLS in each
 * direction: TlsCurrTxSw/TlsCurrRxSw (currently installed) and the
 * TlsTxSw/TlsRxSw totals all moved by n.
 */
export function assertOffloadCount(t, before, n, label = '') {
  const d = tlsStatDelta(before, statSnapshot())
  const pre = label ? `${label}: ` : ''
  t.is(d.TlsCurrTxSw ?? 0, n, `${pre}TlsCurrTxSw delta`)
  t.is(d.TlsCurrRxSw ?? 0, n, `${pre}TlsCurrRxSw delta`)
  t.is(d.TlsTxSw ?? 0, n, `${pre}TlsTxSw delta`)
  t.is(d.TlsRxSw ?? 0, n, `${pre}TlsRxSw delta`)
  return d
}

/** Polls /proc/net/tls_stat until predicate(delta since `before`) holds; resolves the delta. */
export async function waitForStat(before, predicate, { timeout = 5000 } = {}) {
  const deadline = Date.now() + timeout
  let d = tlsStatDelta(before, statSnapshot())
  while (!predicate(d) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25))
    d = tlsStatDelta(before, statSnapshot())
  }
  return d
}

/** Asserts the currently-installed kTLS socket counters are back to `before`. */
export async function assertOffloadReleased(t, before, label = '') {
  const d = await waitForStat(before, (x) => (x.TlsCurrTxSw ?? 0) === 0 && (x.TlsCurrRxSw ?? 0) === 0)
  const pre = label ? `${label}: ` : ''
  t.is(d.TlsCurrTxSw ?? 0, 0, `${pre}TlsCurrTxSw not released after close`)
  t.is(d.TlsCurrRxSw ?? 0, 0, `${pre}TlsCurrRxSw not released after close`)
}
