// Certificates for the run, made with the openssl CLI in a temp dir:
// an ECDSA P-256 chain and an RSA-2048 chain, each a CA and a leaf for
// localhost / 127.0.0.1. Removed when the process exits.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const LEAF_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:localhost,IP:127.0.0.1',
].join('\n')

const KEY_ARGS = {
  ecdsa: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
}

function openssl(dir, args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

function chain(dir, type) {
  openssl(dir, ['genpkey', ...KEY_ARGS[type], '-out', `${type}-ca.key`])
  openssl(dir, [
    'req', '-x509', '-new', '-key', `${type}-ca.key`, '-sha256', '-days', '30',
    '-subj', `/CN=ktls bench ${type} CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign',
    '-out', `${type}-ca.pem`,
  ])
  openssl(dir, ['genpkey', ...KEY_ARGS[type], '-out', `${type}.key`])
  openssl(dir, ['req', '-new', '-key', `${type}.key`, '-subj', '/CN=localhost', '-out', `${type}.csr`])
  openssl(dir, [
    'x509', '-req', '-in', `${type}.csr`, '-CA', `${type}-ca.pem`, '-CAkey', `${type}-ca.key`,
    '-CAcreateserial', '-sha256', '-days', '30', '-extfile', 'leaf.ext', '-out', `${type}.pem`,
  ])
  const read = (name) => readFileSync(join(dir, name), 'utf8')
  return { key: read(`${type}.key`), cert: read(`${type}.pem`), ca: read(`${type}-ca.pem`) }
}

/** { ecdsa: { key, cert, ca }, rsa: { key, cert, ca } } as PEM strings. */
export function makeCerts() {
  const dir = mkdtempSync(join(tmpdir(), 'ktls-bench-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'leaf.ext'), LEAF_EXT + '\n')
  return { ecdsa: chain(dir, 'ecdsa'), rsa: chain(dir, 'rsa') }
}
