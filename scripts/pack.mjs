#!/usr/bin/env node
// Packs what `npm publish` would ship: one package per platform binary
// (`npm/<platform>/`, napi-rs's layout) and the `ktls` package (JavaScript
// and typings, no sources, no install script) whose `optionalDependencies`
// name them, so that npm installs only the binary matching os/cpu/libc.
// The repository's own package.json does not list them (they are not in the
// registry, and `npm ci` would refuse a lock without them): they are added
// to a staged copy, as napi-rs's `pre-publish` adds them before publishing.
// usage: node scripts/pack.mjs [outDir]   (default .cache/pack); prints the tarballs.
import { execFileSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = resolve(process.argv[2] ?? join(root, '.cache', 'pack'))
mkdirSync(out, { recursive: true })

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const tarballs = []
const pack = (dir) => {
  const [info] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: dir, encoding: 'utf8' }))
  tarballs.push(join(out, info.filename))
}

const optional = {}
for (const platform of readdirSync(join(root, 'npm'))) {
  const dir = join(root, 'npm', platform)
  const binaryManifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  if (binaryManifest.version !== manifest.version) {
    throw new Error(`npm/${platform} is at ${binaryManifest.version}, ktls at ${manifest.version}: run \`napi version\``)
  }
  optional[binaryManifest.name] = manifest.version
  const binary = join(root, 'binding', binaryManifest.main)
  // Only this machine's binary can be built here (docs/install.md says why).
  if (!existsSync(binary)) {
    console.error(`[pack] ${binaryManifest.name}: no ${binaryManifest.main} built on this machine, not packed`)
    continue
  }
  copyFileSync(binary, join(dir, binaryManifest.main))
  pack(dir)
}

execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' })
const stage = join(out, 'stage')
rmSync(stage, { recursive: true, force: true })
mkdirSync(join(stage, 'binding'), { recursive: true })
cpSync(join(root, 'dist'), join(stage, 'dist'), { recursive: true })
for (const file of ['binding/index.js', 'binding/index.d.ts', 'README.md', 'LICENSE']) {
  if (existsSync(join(root, file))) copyFileSync(join(root, file), join(stage, file))
}
const { scripts, devDependencies, napi, ...published } = manifest
writeFileSync(join(stage, 'package.json'), `${JSON.stringify({ ...published, optionalDependencies: optional }, null, 2)}\n`)
pack(stage)
for (const t of tarballs) console.log(t)
