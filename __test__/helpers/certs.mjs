// Test PKI generated with the `openssl` CLI, once per process, into a temp dir.
//
//   ca          ECDSA P-256 root (CN=ktls-test-ca)
//   server      ECDSA P-256 leaf signed by ca, SAN DNS:localhost, IP:127.0.0.1
//   rsa         RSA-2048 leaf signed by ca, same SANs
//   selfSigned  ECDSA P-256 self-signed leaf (CA:FALSE), SAN DNS:localhost, IP:127.0.0.1
//   expired     ECDSA P-256 leaf signed by ca, valid 2020-01-01 .. 2020-02-01
//   chained     ECDSA P-256 leaf signed by an intermediate CA under ca; `cert` is
//               leaf + intermediate (as a server sends them), `intermediate` alone
//
// Every entry has { key, cert, keyPath, certPath } (PEM strings and file paths);
// `ca` also has `chainPath` (same as certPath). `dir` is the temp dir.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

let cached

function ossl(dir, args) {
  try {
    return execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const stderr = err.stderr ? err.stderr.toString() : ''
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr}`)
  }
}

const LEAF_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth,clientAuth',
  'subjectAltName=DNS:localhost,IP:127.0.0.1',
  'subjectKeyIdentifier=hash',
  'authorityKeyIdentifier=keyid',
].join('\n')

function newKey(dir, name, type) {
  const keyPath = join(dir, `${name}.key`)
  if (type === 'rsa') {
    ossl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keyPath])
  } else {
    ossl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath])
  }
  return keyPath
}

function csr(dir, name, keyPath, cn) {
  const csrPath = join(dir, `${name}.csr`)
  ossl(dir, ['req', '-new', '-key', keyPath, '-subj', `/O=ktls tests/CN=${cn}`, '-out', csrPath])
  return csrPath
}

/** `<name>.pem`: a self-signed certificate for keyPath (O=ktls tests, CN=cn) with `exts` as -addext. */
function selfSign(dir, name, keyPath, { cn, days, exts }) {
  const certPath = join(dir, `${name}.pem`)
  ossl(dir, [
    'req', '-x509', '-new', '-key', keyPath, '-sha256', '-days', String(days),
    '-subj', `/O=ktls tests/CN=${cn}`,
    ...exts.flatMap((ext) => ['-addext', ext]),
    '-out', certPath,
  ])
  return certPath
}

function entry(keyPath, certPath) {
  return {
    keyPath,
    certPath,
    key: readFileSync(keyPath, 'utf8'),
    cert: readFileSync(certPath, 'utf8'),
  }
}

function generate() {
  const dir = mkdtempSync(join(tmpdir(), 'ktls-certs-'))
  process.once('exit', () => {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {}
  })
  const extPath = join(dir, 'leaf.ext')
  writeFileSync(extPath, LEAF_EXT + '\n')

  // CA
  const caKey = newKey(dir, 'ca', 'ec')
  const caCert = selfSign(dir, 'ca', caKey, {
    cn: 'ktls-test-ca',
    days: 3650,
    exts: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
  })

  const signed = (name, type, cn) => {
    const keyPath = newKey(dir, name, type)
    const csrPath = csr(dir, name, keyPath, cn)
    const certPath = join(dir, `${name}.pem`)
    ossl(dir, [
      'x509', '-req', '-in', csrPath, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial',
      '-sha256', '-days', '825', '-extfile', extPath, '-out', certPath,
    ])
    return entry(keyPath, certPath)
  }

  const server = signed('server', 'ec', 'localhost')

  // An intermediate CA under the CA, and a leaf it signed: `cert` is the leaf
  // and the intermediate, as a server sends them.
  const intKey = newKey(dir, 'intermediate', 'ec')
  const intCsr = csr(dir, 'intermediate', intKey, 'ktls-test-intermediate')
  const intCert = join(dir, 'intermediate.pem')
  const intExt = join(dir, 'intermediate.ext')
  writeFileSync(intExt, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
  ossl(dir, ['x509', '-req', '-in', intCsr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-sha256', '-days', '825', '-extfile', intExt, '-out', intCert])
  const chainedKey = newKey(dir, 'chained', 'ec')
  const chainedCsr = csr(dir, 'chained', chainedKey, 'localhost')
  const chainedLeaf = join(dir, 'chained-leaf.pem')
  ossl(dir, ['x509', '-req', '-in', chainedCsr, '-CA', intCert, '-CAkey', intKey, '-CAcreateserial', '-sha256', '-days', '825', '-extfile', extPath, '-out', chainedLeaf])
  const chainedPath = join(dir, 'chained.pem')
  writeFileSync(chainedPath, readFileSync(chainedLeaf, 'utf8') + readFileSync(intCert, 'utf8'))
  const chained = entry(chainedKey, chainedPath)
  chained.intermediate = readFileSync(intCert, 'utf8')
  const rsa = signed('rsa', 'rsa', 'localhost')

  // Self-signed leaf (not a CA): verification must report DEPTH_ZERO_SELF_SIGNED_CERT.
  const ssKey = newKey(dir, 'selfsigned', 'ec')
  const ssCert = selfSign(dir, 'selfsigned', ssKey, {
    cn: 'localhost',
    days: 825,
    exts: [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
  })
  const selfSigned = entry(ssKey, ssCert)

  // Expired leaf: `openssl ca` is the only 3.0 CLI path that takes explicit dates.
  const exKey = newKey(dir, 'expired', 'ec')
  const exCsr = csr(dir, 'expired', exKey, 'localhost')
  const exCert = join(dir, 'expired.pem')
  writeFileSync(join(dir, 'index.txt'), '')
  writeFileSync(join(dir, 'serial'), '1000\n')
  const caCnf = join(dir, 'ca.cnf')
  writeFileSync(
    caCnf,
    [
      '[ ca ]',
      'default_ca = CA_default',
      '[ CA_default ]',
      `database = ${join(dir, 'index.txt')}`,
      `new_certs_dir = ${dir}`,
      `serial = ${join(dir, 'serial')}`,
      'default_md = sha256',
      'policy = policy_any',
      'unique_subject = no',
      'x509_extensions = leaf_ext',
      '[ policy_any ]',
      'commonName = supplied',
      'organizationName = optional',
      '[ leaf_ext ]',
      LEAF_EXT,
      '',
    ].join('\n'),
  )
  ossl(dir, [
    'ca', '-batch', '-config', caCnf, '-cert', caCert, '-keyfile', caKey, '-in', exCsr,
    '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-notext', '-out', exCert,
  ])
  const expired = entry(exKey, exCert)

  const ca = entry(caKey, caCert)
  ca.chainPath = caCert
  return { dir, ca, server, rsa, selfSigned, expired, chained }
}

/** Returns the (per-process cached) test PKI. */
export function getCerts() {
  if (!cached) cached = generate()
  return cached
}

export default getCerts
