// Chains whose leaf webpki cannot read (X.509 v1: OpenSSL, so node:tls,
// accepts them): judged here as OpenSSL would, with Node's X509Certificate.
// The handshake already proved the peer holds the leaf's key.
import * as tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'

type Pem = string | Buffer

/** Node's `authorizationError` code for the chain `sent` (leaf first), or null when trusted by `ca` (else Node's roots). */
export function judgeLegacyChain(sent: Buffer[], ca: Pem | Pem[] | null | undefined | false, now = new Date()): string | null {
  let certs: X509Certificate[]
  let anchors: X509Certificate[]
  try {
    certs = sent.map((der) => new X509Certificate(der))
    anchors = splitPems(ca ? (Array.isArray(ca) ? ca : [ca]) : defaultAnchors()).map((pem) => new X509Certificate(pem))
  } catch {
    return 'CERT_REJECTED'
  }
  const chain = [certs[0]]
  for (;;) {
    const cert = chain[chain.length - 1]
    const dated = validity(cert, now)
    if (dated) return dated
    if (anchors.some((a) => a.raw.equals(cert.raw))) return null
    const anchor = anchors.find((a) => issued(cert, a))
    if (anchor) return validity(anchor, now)
    if (cert.subject === cert.issuer && cert.verify(cert.publicKey)) {
      return chain.length === 1 ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN'
    }
    const next = certs.find((c) => !chain.includes(c) && issued(cert, c))
    if (!next) return chain.length === 1 ? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
    chain.push(next)
  }
}

function issued(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey)
}

function validity(cert: X509Certificate, now: Date): string | null {
  if (now < new Date(cert.validFrom)) return 'CERT_NOT_YET_VALID'
  if (now > new Date(cert.validTo)) return 'CERT_HAS_EXPIRED'
  return null
}

/** As node:tls without `ca`: its roots, plus NODE_EXTRA_CA_CERTS. */
function defaultAnchors(): Pem[] {
  const extra = process.env.NODE_EXTRA_CA_CERTS
  return extra ? [...tls.rootCertificates, readFileSync(extra)] : [...tls.rootCertificates]
}

/** Every certificate of a list of PEM texts (a text may hold several). */
function splitPems(pems: readonly Pem[]): string[] {
  return pems.flatMap((pem) => String(pem).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [])
}
