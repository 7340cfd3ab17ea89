#!/usr/bin/env node
// Writes docs/errors.md from the registry in src/codes.ts (compiled:
// dist/codes.js). `--check` exits 1 when the file is out of date instead.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { ERROR_CODES, ERROR_CODE_FAMILIES } = createRequire(import.meta.url)(join(root, 'dist', 'codes.js'))
const row = (code, { when, fix }) => `| \`${code}\` | ${when} | ${fix} |`
const text = `# Error codes

Every error ktls produces has a stable \`code\` (messages may change). Node's codes are
used where Node has one. Generated from \`src/codes.ts\` by \`scripts/errors-doc.mjs\`;
a test fails when code can produce a \`code\` the registry lacks.

| code | when | what to do |
|---|---|---|
${Object.entries(ERROR_CODES).map(([code, info]) => row(code, info)).join('\n')}

## Families

| code | when | what to do |
|---|---|---|
${Object.entries(ERROR_CODE_FAMILIES).map(([code, info]) => row(code, info)).join('\n')}

On a server, handshake failures go to the server's \`tlsClientError\` event, as in node:tls.
`
const file = join(root, 'docs', 'errors.md')
if (process.argv.includes('--check')) {
  if (readFileSync(file, 'utf8') !== text) {
    console.error('docs/errors.md is out of date: run `node scripts/errors-doc.mjs`')
    process.exit(1)
  }
} else {
  writeFileSync(file, text)
}
