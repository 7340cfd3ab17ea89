// The environment a shared TLS test body runs in: the kernel harness (kTLS
// offload required, __test__/kernel/*.spec.mjs) or this host's userspace path
// (__test__/unit/*.spec.mjs). Bodies in ./*.mjs take one of these, the way the
// HTTP suites take httpEnv (../http.mjs).
//
//   const env = tlsEnv('kernel' | 'unit')
//   env.test(title, fn)          kernel: kernelTest (serial, fails without kTLS); unit: test
//   env.serial(title, fn)        kernel: kernelTest; unit: test.serial
//   env.title(s)                 kernel: `offloaded ${s}`; unit: s
//   env.path                     'offloaded' | 'userspace' (for titles)
//   env.ms(n, kernelMs)          a time budget: n here, kernelMs (default n x6) inside the UML guest
//   env.assertPath(t, sock, suite?)
//                                kernel: both directions offloaded (getsockopt read-back, suite);
//                                unit: userspace with a reason (on a host without kTLS)
//   const stat = env.stat()      a /proc/net/tls_stat snapshot; every check is a no-op in unit:
//     stat.count(t, n)           exactly n sockets got kTLS since the snapshot
//     stat.released(t)           and they are released again
//     stat.decryptErrors()       TlsDecryptError since the snapshot (kernel), else undefined
import test from 'ava'
import {
  kernelTest,
  hostEvidenceOfKernelTls,
  statSnapshot,
  tlsStatDelta,
  assertOffloaded,
  assertOffloadCount,
  assertOffloadReleased,
} from '../kernel.mjs'
import { assertUserspaceOnThisHost } from '../tls.mjs'

export function tlsEnv(kind) {
  if (kind !== 'kernel' && kind !== 'unit') throw new Error(`tlsEnv: unknown kind ${kind}`)
  const kernel = kind === 'kernel'
  const userspaceHost = !kernel && !hostEvidenceOfKernelTls()
  return {
    kernel,
    userspaceHost,
    path: kernel ? 'offloaded' : 'userspace',
    test: kernel ? kernelTest : test,
    serial: kernel ? kernelTest : test.serial,
    title: (s) => (kernel ? `offloaded ${s}` : s),
    ms: (n, kernelMs = n * 6) => (kernel ? kernelMs : n),
    assertPath(t, sock, suite) {
      if (kernel) assertOffloaded(t, sock, suite)
      else assertUserspaceOnThisHost(t, sock, userspaceHost)
    },
    stat() {
      if (!kernel) return { count() {}, async released() {}, decryptErrors: () => undefined }
      const before = statSnapshot()
      return {
        before,
        count: (t, n) => assertOffloadCount(t, before, n),
        released: (t) => assertOffloadReleased(t, before),
        decryptErrors: () => tlsStatDelta(before, statSnapshot()).TlsDecryptError ?? 0,
      }
    },
  }
}
