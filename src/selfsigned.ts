// A self-signed ECDSA P-256 certificate for `ktls serve`, built in plain Node.
//
// Why not `openssl req -x509` or the `selfsigned` package: Node 20 can make
// the key and the signature (crypto.generateKeyPairSync, crypto.sign) and
// export the SubjectPublicKeyInfo; only the DER frame of the certificate is
// missing, and that is a few dozen lines. So `npx ktls serve` needs neither an
// openssl binary on the host nor a dependency (selfsigned pulls node-forge and
// makes RSA keys).
//
// The profile suits both verifiers a user will point at it: rustls-webpki
// refuses an end-entity certificate marked CA (so basicConstraints is CA:FALSE)
// and OpenSSL refuses a self-signed trust anchor whose keyUsage lacks
// keyCertSign (so there is no keyUsage extension at all).
import { generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'

export interface SelfSignedOptions {
  /** DNS names and IP addresses for subjectAltName; the first is also the CN. */
  names?: string[]
  days?: number
}

export interface KeyAndCert {
  key: string
  cert: string
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
}

export function generateSelfSigned(options: SelfSignedOptions = {}): KeyAndCert {
  const names = options.names ?? ['localhost', '127.0.0.1', '::1']
  const days = options.days ?? 365
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const notBefore = new Date(Date.now() - 60 * 60 * 1000) // an hour of clock skew
  const notAfter = new Date(notBefore.getTime() + days * 24 * 60 * 60 * 1000)
  const name = distinguishedName(names[0])
  const signatureAlgorithm = seq(oid(OID.ecdsaWithSha256))
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serialNumber()),
    signatureAlgorithm,
    name,
    seq(time(notBefore), time(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions(names))),
  )
  const der = seq(tbs, signatureAlgorithm, bitString(sign('sha256', tbs, privateKey)))
  const cert = pem('CERTIFICATE', der)
  if (!new X509Certificate(cert).verify(publicKey)) throw new Error('generated certificate does not verify')
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert }
}

function extensions(names: string[]): Buffer[] {
  const altNames = names.map((n) => (isIP(n) ? context(7, ipBytes(n)) : context(2, Buffer.from(n, 'ascii'))))
  return [
    extension(OID.basicConstraints, true, seq()), // CA:FALSE
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
    extension(OID.subjectAltName, false, seq(...altNames)),
  ]
}

function distinguishedName(cn: string): Buffer {
  const attribute = (type: string, value: string) => set(seq(oid(type), utf8(value)))
  return seq(attribute(OID.organization, 'ktls'), attribute(OID.commonName, cn))
}

/** 16 random bytes, positive and without a leading zero byte. */
function serialNumber(): Buffer {
  const serial = randomBytes(16)
  serial[0] = (serial[0] & 0x7f) | 0x40
  return serial
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number))
  const [head, tail = ''] = ip.split('::')
  const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : [])
  const h = groups(head)
  const t = groups(tail)
  const all = ip.includes('::') ? [...h, ...new Array(8 - h.length - t.length).fill(0), ...t] : h
  const out = Buffer.alloc(16)
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2))
  return out
}

// ---- DER (X.690), only what a certificate needs ----

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length
  if (n < 0x80) return Buffer.concat([Buffer.from([tag, n]), content])
  const len: number[] = []
  for (let rest = n; rest > 0; rest >>= 8) len.unshift(rest & 0xff)
  return Buffer.concat([Buffer.from([tag, 0x80 | len.length, ...len]), content])
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items))
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items))
const explicit = (n: number, inner: Buffer) => tlv(0xa0 | n, inner)
const context = (n: number, bytes: Buffer) => tlv(0x80 | n, bytes)
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'))
const octets = (b: Buffer) => tlv(0x04, b)
const bitString = (b: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]))
const boolean = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]))

function integer(bytes: Buffer): Buffer {
  return tlv(0x02, bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes)
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number)
  const out = [40 * a + b]
  for (const arc of rest) {
    const base128 = [arc & 0x7f]
    for (let v = arc >>> 7; v > 0; v >>>= 7) base128.unshift(0x80 | (v & 0x7f))
    out.push(...base128)
  }
  return tlv(0x06, Buffer.from(out))
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso))
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), boolean(true), octets(value)) : seq(oid(id), octets(value))
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
