// Server certificate verification by the client (userspace path).
import test from 'ava'
import { getCerts } from '../helpers/certs.mjs'
import { startNodeServer, startKtlsServer, ktlsConnect, ktlsConnectError, nodeConnect, nodeConnectError, exchange, endAndClose } from '../helpers/tls.mjs'
import { cleanupAll } from '../helpers/cleanup.mjs'

test.after.always(cleanupAll)

const certs = getCerts()

async function withServer(entry, fn) {
  const srv = await startNodeServer({ key: entry.key, cert: entry.cert })
  try {
    return await fn(srv.port, () => srv.nextPeer())
  } finally {
    await srv.close()
  }
}

test('client trusts a server certificate issued by the configured ca', async (t) => {
  await withServer(certs.server, async (port) => {
    const c = await ktlsConnect({ port })
    t.true(c.authorized)
    t.is(c.authorizationError, null)
    await endAndClose(c)
  })
})

test('client verifies the IP address SAN when no servername is given', async (t) => {
  await withServer(certs.server, async (port) => {
    const c = await ktlsConnect({ port, servername: undefined })
    t.true(c.authorized)
    t.is(c.authorizationError, null)
    await endAndClose(c)
  })
})

test('client rejects a self-signed certificate with DEPTH_ZERO_SELF_SIGNED_CERT', async (t) => {
  await withServer(certs.selfSigned, async (port) => {
    const { err, secure } = await ktlsConnectError({ port })
    t.is(err.code, 'DEPTH_ZERO_SELF_SIGNED_CERT')
    t.false(secure)
  })
})

test('client rejects a certificate for another host with ERR_TLS_CERT_ALTNAME_INVALID', async (t) => {
  await withServer(certs.server, async (port) => {
    const { err, secure } = await ktlsConnectError({ port, servername: 'wrong-host.test' })
    t.is(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID')
    t.false(secure)
  })
})

test('client rejects a certificate from an unknown issuer with UNABLE_TO_VERIFY_LEAF_SIGNATURE', async (t) => {
  await withServer(certs.server, async (port) => {
    const { err, secure } = await ktlsConnectError({ port, ca: undefined })
    t.is(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
    t.false(secure)
  })
})

test('client rejects an expired certificate with CERT_HAS_EXPIRED', async (t) => {
  await withServer(certs.expired, async (port) => {
    const { err, secure } = await ktlsConnectError({ port })
    t.is(err.code, 'CERT_HAS_EXPIRED')
    t.false(secure)
  })
})

test('rejectUnauthorized false connects to a self-signed server with authorized false', async (t) => {
  await withServer(certs.selfSigned, async (port, peer) => {
    const c = await ktlsConnect({ port, rejectUnauthorized: false })
    t.false(c.authorized)
    t.is(c.authorizationError, 'DEPTH_ZERO_SELF_SIGNED_CERT')
    const r = await exchange(c, await peer(), 64 * 1024)
    t.is(r.bGot.sha256, r.aSent.sha256)
    t.is(r.aGot.sha256, r.bSent.sha256)
    await endAndClose(c)
  })
})

test('rejectUnauthorized false connects despite a host mismatch with authorized false', async (t) => {
  await withServer(certs.server, async (port) => {
    const c = await ktlsConnect({ port, servername: 'wrong-host.test', rejectUnauthorized: false })
    t.false(c.authorized)
    t.is(c.authorizationError, 'ERR_TLS_CERT_ALTNAME_INVALID')
    await endAndClose(c)
  })
})

test('checkServerIdentity returning an error fails the connection with that error', async (t) => {
  await withServer(certs.server, async (port) => {
    const calls = []
    const { err, secure } = await ktlsConnectError({
      port,
      checkServerIdentity(host, cert) {
        calls.push({ host, cn: cert.subject.CN })
        return Object.assign(new Error('identity refused by test'), { code: 'ERR_TEST_IDENTITY' })
      },
    })
    t.is(err.code, 'ERR_TEST_IDENTITY')
    t.false(secure)
    t.deepEqual(calls, [{ host: 'localhost', cn: 'localhost' }])
  })
})

test('checkServerIdentity returning undefined replaces the default hostname check', async (t) => {
  await withServer(certs.server, async (port) => {
    const c = await ktlsConnect({ port, servername: 'wrong-host.test', checkServerIdentity: () => undefined })
    t.true(c.authorized)
    t.is(c.authorizationError, null)
    await endAndClose(c)
  })
})

// Chains with an intermediate: the code for an untrusted chain is OpenSSL's,
// from the chain built out of what the server sent; node:tls is the reference.
const CHAIN_CASES = [
  { title: 'leaf + intermediate, root trusted', cert: () => certs.chained.cert, ca: () => certs.ca.cert, code: null },
  { title: 'leaf + intermediate, nothing trusted', cert: () => certs.chained.cert, ca: () => certs.server.cert, code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' },
  { title: 'leaf + intermediate + root, root not trusted', cert: () => certs.chained.cert + certs.ca.cert, ca: () => certs.server.cert, code: 'SELF_SIGNED_CERT_IN_CHAIN' },
  { title: 'leaf alone, its issuer unknown', cert: () => certs.chained.cert.split(/(?<=-----END CERTIFICATE-----\n)/)[0], ca: () => certs.ca.cert, code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
]

for (const { title, cert, ca, code } of CHAIN_CASES) {
  test(`authorizationError for ${title}: ${code ?? 'authorized'}, as node:tls`, async (t) => {
    const srv = await startNodeServer({ key: certs.chained.key, cert: cert() })
    try {
      const ours = await ktlsConnect({ port: srv.port, ca: ca(), rejectUnauthorized: false })
      const reference = await nodeConnect({ port: srv.port, ca: ca(), rejectUnauthorized: false })
      t.is(reference.authorizationError?.code ?? reference.authorizationError ?? null, code)
      t.is(ours.authorizationError, code)
      t.is(ours.authorized, code === null)
      ours.destroy()
      reference.destroy()
    } finally {
      await srv.close()
    }
  })
}

const leafOf = (pem) => pem.split(/(?<=-----END CERTIFICATE-----\n)/)[0]

/** getPeerCertificate(true) as a list of subjects along issuerCertificate, and how it ends. */
function issuerWalk(cert) {
  const names = []
  for (let c = cert, i = 0; c && i < 5; c = c.issuerCertificate, i++) {
    names.push(c.subject.CN)
    if (c.issuerCertificate === c) return [...names, '(self)']
  }
  return names
}

test('a server given its leaf alone sends the issuers it finds in ca, and getPeerCertificate(true) links up to the root, as node:tls', async (t) => {
  const serverOptions = { key: certs.chained.key, cert: leafOf(certs.chained.cert), ca: certs.chained.intermediate }
  const ours = await startKtlsServer(serverOptions, (s) => s.end('x'))
  const reference = await startNodeServer(serverOptions)
  try {
    const walks = []
    for (const port of [ours.port, reference.port]) {
      for (const connect of [ktlsConnect, nodeConnect]) {
        const c = await connect({ port, ca: certs.ca.cert })
        t.true(c.authorized, 'the intermediate came from the server: only the root is trusted')
        walks.push(issuerWalk(c.getPeerCertificate(true)))
        c.destroy()
      }
    }
    t.deepEqual(walks[0], ['localhost', 'ktls-test-intermediate', 'ktls-test-ca', '(self)'])
    for (const walk of walks) t.deepEqual(walk, walks[0])
  } finally {
    await ours.close()
    await reference.close()
  }
})

test('an intermediate given as ca is no trust anchor without allowPartialTrustChain (UNABLE_TO_GET_ISSUER_CERT), as node:tls', async (t) => {
  const srv = await startNodeServer({ key: certs.chained.key, cert: certs.chained.cert })
  try {
    const { err } = await ktlsConnectError({ port: srv.port, ca: certs.chained.intermediate })
    t.is(err.code, 'UNABLE_TO_GET_ISSUER_CERT')
    const nodeErr = await nodeConnectError({ port: srv.port, ca: certs.chained.intermediate, servername: 'localhost', rejectUnauthorized: true })
    t.is(nodeErr?.code, 'UNABLE_TO_GET_ISSUER_CERT')
    for (const connect of [ktlsConnect, nodeConnect]) {
      const c = await connect({ port: srv.port, ca: certs.chained.intermediate, allowPartialTrustChain: true })
      t.true(c.authorized, connect.name)
      c.destroy()
    }
    // The root as ca is a whole chain: trusted either way.
    const c = await ktlsConnect({ port: srv.port, ca: certs.ca.cert })
    t.true(c.authorized)
    c.destroy()
  } finally {
    await srv.close()
  }
})
