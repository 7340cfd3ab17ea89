// Runs a tlslite-ng probe (../probes/*.py) with the interpreter `npm test`
// provisions (scripts/provision.sh puts tlslite-ng in .cache/py). A missing
// interpreter fails the test: these checks never silently skip.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const python = join(root, '.cache', 'py', 'bin', 'python')

/** Plays `scenario` of probes/records.py against 127.0.0.1:port; resolves its JSON report. */
export function recordProbe(port, scenario, { timeout = 60000 } = {}) {
  if (!existsSync(python)) {
    return Promise.reject(new Error(`${python} is missing: run \`npm run provision\` (installs tlslite-ng)`))
  }
  const script = join(root, '__test__', 'probes', 'records.py')
  return new Promise((resolve, reject) => {
    execFile(python, [script, String(port), scenario], { timeout }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`records.py ${scenario} failed: ${err.message}\n${stderr}`))
      try {
        resolve(JSON.parse(stdout))
      } catch {
        reject(new Error(`records.py ${scenario} printed no report: ${stdout}\n${stderr}`))
      }
    })
  })
}
