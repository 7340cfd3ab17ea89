// Every `code` the sources can produce is in the registry (src/codes.ts),
// and docs/errors.md is what the registry generates.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const { ERROR_CODES, isRegistered } = createRequire(import.meta.url)(join(root, 'dist', 'codes.js'))

function sources(dir, ext) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path, ext)
    return entry.name.endsWith(ext) ? [path] : []
  })
}

/** Every string literal in the sources that looks like a code: ERR_..., UND_ERR_... */
function codesInSources() {
  const files = [...sources(join(root, 'src'), '.ts'), ...sources(join(root, 'crates'), '.rs')]
  const found = new Map()
  for (const file of files) {
    if (file.endsWith('codes.ts')) continue
    for (const [, code] of readFileSync(file, 'utf8').matchAll(/["'`]((?:UND_)?ERR_[A-Z0-9_]+)/g)) {
      if (!found.has(code)) found.set(code, file.slice(root.length + 1))
    }
  }
  return found
}

test('every error code in src/ and crates/ is in the registry (src/codes.ts)', (t) => {
  const found = codesInSources()
  t.true(found.size > 30, `found ${found.size} codes`)
  for (const [code, file] of found) {
    // A code built from a name: its prefix must lead into a family.
    const candidate = code.endsWith('_') ? `${code}SOME_NAME` : code
    t.true(isRegistered(candidate), `${code} (${file}) is not in src/codes.ts`)
  }
})

test('the registry recognises code families, and says when and what to do for every code', (t) => {
  t.true(isRegistered('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'))
  t.true(isRegistered('ECONNRESET'))
  t.true(isRegistered('DEPTH_ZERO_SELF_SIGNED_CERT'))
  t.false(isRegistered('ERR_KTLS_NOT_A_REAL_CODE'))
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    t.truthy(info.when && info.fix, `${code} says when and what to do`)
  }
})

test('docs/errors.md is generated from the registry', (t) => {
  t.notThrows(() => execFileSync(process.execPath, [join(root, 'scripts', 'errors-doc.mjs'), '--check'], { stdio: 'pipe' }))
})
