// pfx, as node:tls reads it: PKCS#12 files as OpenSSL 3 writes them (PBES2,
// AES) and as older OpenSSL did (SHA-1, 3DES), their errors as node:tls
// reports them for the same files. Shared by __test__/unit/pfx.spec.mjs and
// __test__/kernel/pfx.spec.mjs.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { getCerts } from '../certs.mjs'
import { ktls } from '../ktls.mjs'
import { ktlsConnect, startKtlsServer, startNodeServer } from '../tls.mjs'

/** The test PKI's server key and chain (leaf, intermediate) as PFX files, by `openssl pkcs12`. */
function pfxFiles() {
  const certs = getCerts()
  const dir = mkdtempSync(join(tmpdir(), 'ktls-pfx-'))
  const make = (name, extra) => {
    const out = join(dir, name)
    execFileSync('openssl', ['pkcs12', '-export', '-inkey', certs.chained.keyPath, '-in', certs.chained.certPath, '-passout', 'pass:secret', '-out', out, ...extra])
    return readFileSync(out)
  }
  return {
    modern: make('modern.pfx', []),
    old: make('old.pfx', ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']),
  }
}

export function pfxSuite(env) {
  const certs = getCerts()
  const files = pfxFiles()

  for (const [kind, pfx] of Object.entries(files)) {
    env.test(env.title(`a server from a ${kind} PFX (key, leaf and intermediate) serves a node:tls client that trusts only the root`), async (t) => {
      const srv = await startKtlsServer({ key: undefined, cert: undefined, pfx, passphrase: 'secret' })
      const client = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', ca: certs.ca.cert })
      await new Promise((resolve, reject) => client.once('secureConnect', resolve).once('error', reject))
      t.true(client.authorized, 'the intermediate came from the PFX')
      const socket = await srv.nextSocket()
      env.assertPath(t, socket)
      client.destroy()
    })
  }

  env.test(env.title('a client certificate from a PFX ({ buf, passphrase }) is accepted by a node:tls server with requestCert'), async (t) => {
    let peer
    const srv = await startNodeServer({ requestCert: true, rejectUnauthorized: true, ca: certs.ca.cert }, (s) => (peer = s))
    const c = await ktlsConnect({ port: srv.port, pfx: [{ buf: files.modern, passphrase: 'secret' }] })
    while (!peer) await new Promise((r) => setTimeout(r, 5))
    t.true(peer.authorized)
    c.destroy()
  })

  env.test(env.title("a PFX's errors are node:tls's: a wrong passphrase, a PFX without a key"), (t) => {
    const wrong = t.throws(() => ktls.createSecureContext({ pfx: files.modern, passphrase: 'wrong' }))
    t.is(wrong.message, 'mac verify failure')
    t.is(wrong.code, 'ERR_OSSL_PKCS12_MAC_VERIFY_FAILURE')
    const certOnly = execFileSync('openssl', ['pkcs12', '-export', '-nokeys', '-in', certs.server.certPath, '-passout', 'pass:x'])
    const noKey = t.throws(() => ktls.createSecureContext({ pfx: certOnly, passphrase: 'x' }))
    t.is(noKey.code, 'ERR_CRYPTO_OPERATION_FAILED')
    t.is(noKey.message, 'Unable to load private key from PFX data')
    // node:tls says the same for the same files.
    t.throws(() => tls.createSecureContext({ pfx: files.modern, passphrase: 'wrong' }), { message: 'mac verify failure' })
    t.throws(() => tls.createSecureContext({ pfx: certOnly, passphrase: 'x' }), { code: 'ERR_CRYPTO_OPERATION_FAILED' })
  })
}
