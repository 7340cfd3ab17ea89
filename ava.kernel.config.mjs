// Kernel suite: run by scripts/harness/run-kernel-suite.sh inside User-Mode
// Linux guests (one CPU, slow crypto) with KTLS_REQUIRE=1 and
// KTLS_HARNESS_KERNEL=<uname -r>. One file and one test at a time so
// /proc/net/tls_stat deltas are attributable to the test that reads them.
export default {
  files: ['__test__/kernel/**/*.spec.mjs'],
  serial: true,
  concurrency: 1,
  // Inactivity limit: the slowest test (200x20 HTTP load on 7.2) needs well under a minute;
  // a hang should cost minutes, not the CI budget.
  timeout: '3m',
  workerThreads: false,
}
