// Certificate chains as OpenSSL (so node:tls) builds them, with Node's
// X509Certificate: the chain a server sends completed from its `ca`, the
// peer's chain as getPeerCertificate(true) links it, and the verdict on a
// chain whose leaf webpki cannot read (X.509 v1, which OpenSSL accepts; the
// handshake already proved the peer holds the leaf's key).
import * as tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'

type Pem = string | Buffer

/** Parsed peer certificates, by their DER: parsing one costs OpenSSL 3 about 0.1 ms, and a client meets the same server's certificate again and again. */
const parsedCertificates = new Map<string, X509Certificate>()
const PARSED_CERTIFICATES_KEPT = 256

/** `der` as an X509Certificate (immutable, so shared between connections). */
export function certificateOf(der: Buffer): X509Certificate {
  const key = der.toString('base64')
  let cert = parsedCertificates.get(key)
  if (!cert) {
    cert = new X509Certificate(der)
    if (parsedCertificates.size >= PARSED_CERTIFICATES_KEPT) parsedCertificates.delete(parsedCertificates.keys().next().value!)
    parsedCertificates.set(key, cert)
  }
  return cert
}

/** Node's `authorizationError` code for the chain `sent` (leaf first), or null when trusted by `ca` (else Node's roots). */
export function judgeLegacyChain(sent: Buffer[], ca: Pem | Pem[] | null | undefined | false, now = new Date()): string | null {
  let certs: X509Certificate[]
  let anchors: X509Certificate[]
  try {
    certs = sent.map(certificateOf)
    anchors = trustAnchors(ca)
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
    if (selfSigned(cert)) {
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
function splitPems(pems: readonly (Pem | ArrayBufferView)[]): string[] {
  const text = (pem: Pem | ArrayBufferView) =>
    ArrayBuffer.isView(pem) ? Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).toString() : String(pem)
  return pems.flatMap((pem) => text(pem).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [])
}

/** The certificates `ca` names (each PEM may hold several), else Node's default anchors. */
export function trustAnchors(ca: Pem | Pem[] | null | undefined | false): X509Certificate[] {
  return splitPems(ca ? (Array.isArray(ca) ? ca : [ca]) : defaultAnchors()).map((pem) => new X509Certificate(pem))
}

/**
 * `cert` (PEM, leaf first) followed by the issuers found in `ca`, up to a
 * self-signed one, as OpenSSL's automatic chain building sends them.
 */
export function completeChain(cert: Pem, ca: Pem | Pem[] | null | undefined | false): Buffer {
  const own = Buffer.from(cert)
  if (!ca) return own
  let chain: X509Certificate[]
  let pool: X509Certificate[]
  try {
    chain = splitPems([cert]).map((pem) => new X509Certificate(pem))
    pool = trustAnchors(ca)
  } catch {
    return own // left for the binding to report
  }
  // A chain given in `cert` is sent as given, as OpenSSL does with extra chain certificates.
  if (chain.length !== 1) return own
  const added: X509Certificate[] = []
  for (let last = chain[chain.length - 1]; last && !selfSigned(last); ) {
    const issuer = pool.find((c) => !chain.includes(c) && !added.includes(c) && issued(last, c))
    if (!issuer) break
    added.push(issuer)
    last = issuer
  }
  if (added.length === 0) return own
  return Buffer.concat([own, Buffer.from('\n'), ...added.map((c) => Buffer.from(c.toString()))])
}

/** A context's `ca`, parsed once: the anchors, and whether one is not self-signed (null: unreadable). */
const anchorsOfCa = new WeakMap<object, { anchors: X509Certificate[]; partial: boolean } | null>()

function parsedAnchors(ca: Pem | Pem[] | null | undefined | false, owner: object) {
  let parsed = anchorsOfCa.get(owner)
  if (parsed === undefined) {
    try {
      const anchors = trustAnchors(ca)
      parsed = { anchors, partial: anchors.some((a) => !selfSigned(a)) }
    } catch {
      parsed = null // webpki judged these already
    }
    anchorsOfCa.set(owner, parsed)
  }
  return parsed
}

/**
 * The trust anchors of `ca` (else Node's roots), parsed once per `owner` (a
 * context's options) rather than on every handshake.
 */
export function anchorsOf(ca: Pem | Pem[] | null | undefined | false, owner: object): X509Certificate[] {
  return parsedAnchors(ca, owner)?.anchors ?? []
}

/**
 * OpenSSL's verdict on a chain webpki accepted, where `ca` was given: webpki
 * trusts any certificate of `ca` as an anchor, OpenSSL (trusted issuers
 * first) only a self-signed one, unless told to accept partial chains. So a
 * chain that reaches a certificate of `ca` that is not self-signed, and no
 * issuer of it, is UNABLE_TO_GET_ISSUER_CERT, as node:tls reports it.
 * `owner` keys the parsed `ca` (a context's options): a handshake does not
 * parse it again, and where every anchor is self-signed (the usual case)
 * the two agree without walking the chain.
 */
export function partialChainCode(sent: Buffer[], ca: Pem | Pem[] | null | undefined | false, owner: object): string | null {
  if (!ca || sent.length === 0) return null
  const parsed = parsedAnchors(ca, owner)
  if (!parsed?.partial) return null
  const { anchors } = parsed
  let certs: X509Certificate[]
  try {
    certs = sent.map(certificateOf)
  } catch {
    return null
  }
  const inChain = (chain: X509Certificate[], cert: X509Certificate) => chain.some((c) => c.raw.equals(cert.raw))
  const chain = [certs[0]]
  for (;;) {
    const last = chain[chain.length - 1]
    if (selfSigned(last)) return null
    const issuer = [...anchors, ...certs.slice(1)].find((c) => !inChain(chain, c) && issued(last, c))
    if (!issuer) return inChain(anchors, last) ? 'UNABLE_TO_GET_ISSUER_CERT' : null
    chain.push(issuer)
  }
}

/**
 * The peer's chain in issuance order (what it sent, then issuers from the
 * trust anchors), and whether it ends in a self-signed certificate: as
 * node:tls links getPeerCertificate(true)'s issuerCertificate.
 */
export function peerChain(sent: Buffer[], anchors: () => X509Certificate[]): { chain: X509Certificate[]; rooted: boolean } {
  const certs = sent.map(certificateOf)
  const chain = [certs[0]]
  let pool: X509Certificate[] | undefined
  for (;;) {
    const last = chain[chain.length - 1]
    if (selfSigned(last)) return { chain, rooted: true }
    let issuer = certs.find((c) => !chain.includes(c) && issued(last, c))
    if (!issuer) {
      pool ??= anchors()
      issuer = pool.find((c) => !chain.some((x) => x.raw.equals(c.raw)) && issued(last, c))
    }
    if (!issuer) return { chain, rooted: false }
    chain.push(issuer)
  }
}

function selfSigned(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer && cert.verify(cert.publicKey)
}
