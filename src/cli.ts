#!/usr/bin/env node
// `ktls serve` (also `npm start`), `ktls probe` and `ktls doctor`.
import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { capabilities } from './index'
import { doctor, doctorText } from './doctor'
import { probeReport } from './probe'
import { STATUS_PATH, serve } from './serve'

const USAGE = `usage: ktls serve [dir] [--port 8443] [--host localhost] [--cert cert.pem --key key.pem]
                  [--max-age ms] [--zero-copy]
       ktls probe [--json]
       ktls doctor [--json]

serve  The files under dir (default: ./public if there is one, else the current
       directory) over HTTPS on ktls sockets; where the kernel encrypts, file
       bodies go out with sendfile(2). One log line per connection saying
       whether the kernel encrypts (tx) and decrypts (rx) its records, and why
       not. GET ${STATUS_PATH} answers with the connection's status as JSON.
       Without --cert/--key it uses a self-signed certificate made at first start.
       --zero-copy: TLS_TX_ZEROCOPY_RO (Linux 5.19+); files must not change while sent.
probe  What this kernel can offload, and what to do when it cannot.
doctor Why offload does or does not work here: the tls module (and why it is
       not loaded), the capability probe, a loopback self-test through ktls,
       /proc/net/tls_stat, one line of advice per problem. Exit status 0 when
       the self-test was offloaded both ways, 1 otherwise.`

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      json: { type: 'boolean' },
      'max-age': { type: 'string' },
      'zero-copy': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const command = positionals[0] ?? 'serve'
  if (values.help || command === 'help') return usage(0)
  if (command === 'probe') return probe(values.json === true)
  if (command === 'doctor') return diagnose(values.json === true)
  if (command === 'serve' && positionals.length <= 2) return startServing(values, positionals[1])
  return usage(2)
}

function usage(status: number): number {
  ;(status === 0 ? console.log : console.error)(USAGE)
  return status
}

function probe(json: boolean): number {
  console.log(json ? JSON.stringify(capabilities(), null, 2) : probeReport(capabilities()))
  return 0
}

async function diagnose(json: boolean): Promise<number> {
  const report = await doctor()
  console.log(json ? JSON.stringify(report, null, 2) : doctorText(report))
  return report.ok ? 0 : 1
}

interface ServeFlags {
  port?: string
  host?: string
  cert?: string
  key?: string
  'max-age'?: string
  'zero-copy'?: boolean
}

async function startServing(values: ServeFlags, dir: string | undefined): Promise<number> {
  if ((values.cert === undefined) !== (values.key === undefined)) {
    console.error('ktls serve: --cert and --key go together')
    return 2
  }
  const port = values.port === undefined ? 8443 : Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`ktls serve: --port must be a port number, not ${values.port}`)
    return 2
  }
  const maxAge = values['max-age'] === undefined ? 0 : Number(values['max-age'])
  if (!Number.isInteger(maxAge) || maxAge < 0) {
    console.error(`ktls serve: --max-age must be milliseconds, not ${values['max-age']}`)
    return 2
  }
  const root = dir === undefined ? defaultRoot() : resolve(dir)
  if (!isDirectory(root)) {
    console.error(`ktls serve: ${root} is not a directory`)
    return 2
  }
  console.log(probeReport(capabilities()))
  console.log('')
  const serving = await serve({
    port,
    host: values.host,
    cert: values.cert === undefined ? undefined : readFileSync(values.cert),
    key: values.key === undefined ? undefined : readFileSync(values.key),
    root,
    files: { maxAge, zeroCopy: values['zero-copy'] === true },
  })
  console.log(`serving ${serving.url}`)
  console.log(`files ${root}`)
  if (serving.certPath) console.log(`certificate ${serving.certPath} (self-signed; try: curl --cacert ${serving.certPath} ${serving.url})`)
  const stop = () => {
    void serving.close().then(() => process.exit(0))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  return -1 // keep running
}

/** ./public when there is one (the first run's page), else the current directory. */
function defaultRoot(): string {
  const pub = resolve('public')
  return isDirectory(pub) ? pub : process.cwd()
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

main(process.argv.slice(2)).then(
  (status) => {
    if (status >= 0) process.exitCode = status
  },
  (err: Error & { code?: string }) => {
    console.error(`ktls: ${err.code ? `${err.code}: ` : ''}${err.message}`)
    process.exitCode = 1
  },
)
