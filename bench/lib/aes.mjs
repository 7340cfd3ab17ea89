// AES-128-GCM cost on one core, from `openssl speed` (the same OpenSSL
// build as the system's; -mr prints bytes per CPU-second on its +F line).
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ARGS = ['speed', '-mr', '-evp', 'aes-128-gcm', '-bytes', '16384', '-seconds', '1']

async function bytesPerSecond(extra) {
  const { stdout, stderr } = await run('openssl', [...ARGS.slice(0, 2), ...extra, ...ARGS.slice(2)])
  const line = `${stdout}\n${stderr}`.split('\n').find((l) => l.startsWith('+F:'))
  if (!line) throw new Error(`openssl speed printed no +F line:\n${stdout}${stderr}`)
  return Number(line.split(':').pop())
}

/** One after the other by default, so the two measurements do not compete for a core. */
export async function aesGcmSpeed({ parallel = false } = {}) {
  const [encryptBytesPerSec, decryptBytesPerSec] = parallel
    ? await Promise.all([bytesPerSecond([]), bytesPerSecond(['-decrypt'])])
    : [await bytesPerSecond([]), await bytesPerSecond(['-decrypt'])]
  return { method: `openssl ${ARGS.join(' ')} (and with -decrypt)`, encryptBytesPerSec, decryptBytesPerSec }
}
