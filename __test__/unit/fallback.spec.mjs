// Where no ktls binary loads (another OS or architecture, a missing optional
// package), ktls is node:tls behind the same names: connections and HTTPS
// work, nothing is offloaded, and every status says why. Simulated with
// napi-rs's loader override pointing at a binary that does not exist.
import test from 'ava'
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const withoutBinary = { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: join(here, 'no-such-binding.node') }

function run(file, args = []) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [file, ...args], { env: withoutBinary, timeout: 60000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

test('without a binary, connect/createServer are node:tls: a round trip works and every status says why nothing is offloaded', async (t) => {
  const report = JSON.parse(await run(join(here, '..', 'helpers', 'fallback-child.mjs')))
  t.false(report.capabilities.ulp)
  t.regex(report.capabilities.reason, /no ktls binary for linux-x64-gnu/)
  t.is(report.echoed, 'ping')
  t.true(report.instanceOfKtlsSocket)
  for (const status of [report.clientStatus, report.serverStatus]) {
    t.false(status.tx)
    t.false(status.rx)
    t.regex(status.reason, /node:tls carries the connection/)
    t.regex(status.cipher, /^TLS_/)
  }
  t.is(report.updateKeys, 'ERR_KTLS_UNAVAILABLE')
  t.deepEqual(report.https, { status: 200, body: 'hello /x' })
})

test('without a binary, `ktls probe` explains, and `ktls probe --json` says ulp: false', async (t) => {
  const cli = join(here, '..', '..', 'dist', 'cli.js')
  t.regex(await run(cli, ['probe']), /no ktls binary/)
  t.false(JSON.parse(await run(cli, ['probe', '--json'])).ulp)
})
