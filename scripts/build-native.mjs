#!/usr/bin/env node
// Builds the native binding from source with cargo and puts it where
// binding/index.js looks for it. `--if-missing` keeps `npm install` fast
// when a binary is already there (a prebuilt, or an earlier build).
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const target = join(root, 'binding', `ktls.${process.platform}-${process.arch}-gnu.node`)

if (process.argv.includes('--if-missing') && existsSync(target)) {
  process.exit(0)
}
if (process.platform !== 'linux') {
  console.error('ktls: kernel TLS exists only on Linux; nothing to build on', process.platform)
  process.exit(0)
}
const profile = process.env.KTLS_PROFILE === 'debug' ? 'debug' : 'release'
const args = ['build', '-p', 'ktls-node', '--locked', ...(profile === 'release' ? ['--release'] : [])]
console.error(`ktls: building the native binding (cargo ${args.join(' ')})`)
execFileSync('cargo', args, { cwd: root, stdio: 'inherit' })
mkdirSync(dirname(target), { recursive: true })
copyFileSync(join(root, 'target', profile, 'libktls_node.so'), target)
console.error(`ktls: wrote ${target}`)
