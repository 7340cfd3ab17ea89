#!/usr/bin/env node
// `ktls serve` (also `npm start`) and `ktls probe`.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { capabilities } from './index'
import { probeReport } from './probe'
import { serve } from './serve'

const USAGE = `usage: ktls serve [--port 8443] [--host localhost] [--cert cert.pem --key key.pem]
       ktls probe [--json]

serve  HTTPS on ktls sockets, one log line per connection saying whether the
       kernel encrypts (tx) and decrypts (rx) its records, and why not.
       Without --cert/--key it uses a self-signed certificate made at first start.
probe  What this kernel can offload, and what to do when it cannot.`

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
      help: { type: 'boolean', short: 'h' },
    },
  })
  const command = positionals[0] ?? 'serve'
  if (values.help || command === 'help') return usage(0)
  if (command === 'probe') return probe(values.json === true)
  if (command === 'serve') return startServing(values)
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

async function startServing(values: { port?: string; host?: string; cert?: string; key?: string }): Promise<number> {
  if ((values.cert === undefined) !== (values.key === undefined)) {
    console.error('ktls serve: --cert and --key go together')
    return 2
  }
  const port = values.port === undefined ? 8443 : Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`ktls serve: --port must be a port number, not ${values.port}`)
    return 2
  }
  console.log(probeReport(capabilities()))
  console.log('')
  const serving = await serve({
    port,
    host: values.host,
    cert: values.cert === undefined ? undefined : readFileSync(values.cert),
    key: values.key === undefined ? undefined : readFileSync(values.key),
  })
  console.log(`serving ${serving.url}`)
  if (serving.certPath) console.log(`certificate ${serving.certPath} (self-signed; try: curl --cacert ${serving.certPath} ${serving.url})`)
  const stop = () => {
    void serving.close().then(() => process.exit(0))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  return -1 // keep running
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
