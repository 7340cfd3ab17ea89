// The capability report `ktls probe` prints (and `ktls serve` before serving).
import type { Capabilities } from './index'

export const SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const

/** The kernel module behind each suite's kernel crypto, for the advice. */
export const SUITE_MODULES: Record<(typeof SUITES)[number], string> = {
  TLS_AES_128_GCM_SHA256: 'gcm',
  TLS_AES_256_GCM_SHA384: 'gcm',
  TLS_CHACHA20_POLY1305_SHA256: 'chacha20poly1305',
}

export function probeReport(caps: Capabilities): string {
  return [...capabilityLines(caps), ...advice(caps)].join('\n')
}

/** The report without its advice (`ktls doctor` gives its own). */
export function capabilityLines(caps: Capabilities): string[] {
  const lines = [
    `kernel            ${caps.kernel}`,
    `TCP_ULP "tls"     ${caps.ulp ? 'available' : `not available: ${caps.reason ?? 'unknown reason'}`}`,
  ]
  if (caps.ulp) {
    lines.push('kernel ciphers    (TLS 1.3 names; TLS 1.2 uses the same AEADs)')
    for (const suite of SUITES) lines.push(`  ${suite.padEnd(30)}${caps.ciphers[suite] ? 'offloaded' : 'not offloaded'}`)
    lines.push(`key update        ${caps.rekey ? 'supported (rekey in place)' : 'not supported (Linux 6.14+): a peer KeyUpdate ends an offloaded connection'}`)
    lines.push(`rx no-padding     ${caps.rxExpectNoPad ? 'available' : 'not available'}`)
    lines.push(`tx zero-copy      ${caps.txZeroCopy ? 'available (opt-in: zeroCopy)' : 'not available (Linux 5.19+)'}`)
    lines.push(`record size cap   ${caps.txMaxPayload ? 'available (setMaxSendFragment)' : 'not available (Linux 6.19+): setMaxSendFragment keeps a connection in userspace'}`)
  }
  return lines
}

function advice(caps: Capabilities): string[] {
  if (/no ktls binary/.test(caps.reason ?? '')) {
    return [
      '',
      'Every connection still works: node:tls encrypts in userspace behind the same API.',
      'Kernel TLS needs Linux and a ktls binary for this machine: ktls-linux-x64-gnu is the',
      'one published; elsewhere, build one from a checkout (`npm install` there builds it).',
    ]
  }
  if (!caps.ulp) {
    return [
      '',
      'Without kernel TLS every connection still works: rustls encrypts in userspace.',
      'To offload: `sudo modprobe tls` (Ubuntu ships it in linux-modules-extra-$(uname -r)),',
      'or use a kernel built with CONFIG_TLS=y or =m; then run `ktls probe` again.',
    ]
  }
  const missing = SUITES.filter((s) => !caps.ciphers[s])
  if (missing.length === 0) return []
  const modules = [...new Set(missing.map((s) => SUITE_MODULES[s]))].join(' ')
  return [
    '',
    `Connections that negotiate ${missing.join(', ')} stay in userspace.`,
    `Loading the kernel crypto may help: \`sudo modprobe ${modules}\`.`,
  ]
}
