// The kernel harness's own contract, where it needs no guest.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const repo = fileURLToPath(new URL('../..', import.meta.url))

test('KTLS_NODE_LINE with a custom command is refused (exit 2) before any guest boots', (t) => {
  const run = spawnSync('bash', ['scripts/harness/run-kernel-suite.sh', 'true'], {
    cwd: repo,
    env: { ...process.env, KTLS_NODE_LINE: '24', KTLS_KERNELS: '6.1' },
    encoding: 'utf8',
    timeout: 30_000,
  })
  t.is(run.status, 2)
  t.notRegex(run.stdout, /User-Mode Linux|booting/)
})
