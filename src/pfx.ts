// node:tls's `pfx`: a PKCS#12 file's key and certificates, read here with
// node:crypto's primitives (Node has no PKCS#12 API; its OpenSSL reads them
// for node:tls). What OpenSSL writes: the PKCS#12 KDF with SHA-1 and 3DES
// (older OpenSSL, RFC 7292) and PBES2 with PBKDF2 and AES (OpenSSL 3's
// default); RC2 (OpenSSL's "legacy") is refused, as Node 20's OpenSSL refuses it.
import { createDecipheriv, createHash, createHmac, pbkdf2Sync, timingSafeEqual, X509Certificate, createPrivateKey } from 'node:crypto'
import { KtlsError } from './errors'

export interface PfxContents {
  /** The private key, PKCS#8 PEM. */
  key: string
  /** The certificate matching the key, PEM. */
  cert: string
  /** The other certificates, PEM: the chain, and (as Node does) trusted CAs. */
  others: string[]
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509: '1.2.840.113549.1.9.22.1',
  sha1And3DES: '1.2.840.113549.1.12.1.3',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
} as const

const HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '1.2.840.113549.2.7': 'sha1', // hmacWithSHA1
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
}

const CIPHERS: Record<string, string> = {
  '2.16.840.1.101.3.4.1.2': 'aes-128-cbc',
  '2.16.840.1.101.3.4.1.22': 'aes-192-cbc',
  '2.16.840.1.101.3.4.1.42': 'aes-256-cbc',
  '1.2.840.113549.3.7': 'des-ede3-cbc',
}

/** node:tls's errors for the same inputs, with ktls's codes where Node has none. */
const unsupported = () => new KtlsError('ERR_CRYPTO_UNSUPPORTED_OPERATION', 'Unsupported PKCS12 PFX data')
const noKey = () => new KtlsError('ERR_CRYPTO_OPERATION_FAILED', 'Unable to load private key from PFX data')
const macFailure = () => new KtlsError('ERR_OSSL_PKCS12_MAC_VERIFY_FAILURE', 'mac verify failure')
const malformed = () => new KtlsError('ERR_OSSL_ASN1_NOT_ENOUGH_DATA', 'not enough data')

/** Reads a PFX: its key, the certificate for it, and the others. */
export function readPfx(pfx: Buffer, passphrase = ''): PfxContents {
  let pfxSeq: Der[]
  try {
    pfxSeq = children(parse(pfx))
  } catch {
    throw malformed()
  }
  const [, authSafe, macData] = pfxSeq
  if (!authSafe) throw malformed()
  const authSafeData = contentOctets(authSafe)
  if (macData) verifyMac(macData, authSafeData, passphrase)
  const keys: Buffer[] = []
  const certs: Buffer[] = []
  for (const info of children(parse(authSafeData))) {
    const [type, content] = children(info)
    const oid = readOid(type)
    let safeContents: Buffer
    if (oid === OID.data) safeContents = octets(explicit(content))
    else if (oid === OID.encryptedData) safeContents = decryptEncryptedData(explicit(content), passphrase)
    else throw unsupported()
    for (const bag of children(parse(safeContents))) {
      const [bagId, bagValue] = children(bag)
      const value = explicit(bagValue)
      switch (readOid(bagId)) {
        case OID.keyBag:
          keys.push(value.bytes)
          break
        case OID.shroudedKeyBag:
          keys.push(decryptShroudedKey(value, passphrase))
          break
        case OID.certBag: {
          const [certId, certValue] = children(value)
          if (readOid(certId) === OID.x509) certs.push(octets(explicit(certValue)))
          break
        }
      }
    }
  }
  if (keys.length === 0) throw noKey()
  const key = createPrivateKey({ key: keys[0], format: 'der', type: 'pkcs8' })
  const pems = certs.map((der) => new X509Certificate(der))
  const leaf = pems.find((c) => c.checkPrivateKey(key))
  if (!leaf) throw noKey()
  return {
    key: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    cert: leaf.toString(),
    others: pems.filter((c) => c !== leaf).map((c) => c.toString()),
  }
}

// ---- encryption ----

function decryptShroudedKey(info: Der, passphrase: string): Buffer {
  const [algorithm, data] = children(info)
  return decrypt(algorithm, octets(data), passphrase)
}

function decryptEncryptedData(encryptedData: Der, passphrase: string): Buffer {
  const [, contentInfo] = children(encryptedData)
  const [, algorithm, content] = children(contentInfo)
  // encryptedContent is [0] IMPLICIT OCTET STRING: primitive, or constructed in pieces.
  const data = content.constructed ? Buffer.concat(children(content).map(octets)) : content.bytes
  return decrypt(algorithm, data, passphrase)
}

function decrypt(algorithm: Der, data: Buffer, passphrase: string): Buffer {
  const [oidNode, params] = children(algorithm)
  const oid = readOid(oidNode)
  if (oid === OID.sha1And3DES) {
    const [salt, iterations] = children(params)
    const password = bmpPassword(passphrase)
    const key = pkcs12Kdf('sha1', password, octets(salt), 1, readInt(iterations), 24)
    const iv = pkcs12Kdf('sha1', password, octets(salt), 2, readInt(iterations), 8)
    return decipher('des-ede3-cbc', key, iv, data)
  }
  if (oid === OID.pbes2) {
    const [kdf, scheme] = children(params)
    const [kdfOid, kdfParams] = children(kdf)
    if (readOid(kdfOid) !== OID.pbkdf2) throw unsupported()
    const [salt, iterations, ...rest] = children(kdfParams)
    const prf = rest.find((r) => r.tag === 0x30)
    const hash = prf ? HASHES[readOid(children(prf)[0])] : 'sha1'
    const [schemeOid, iv] = children(scheme)
    const cipher = CIPHERS[readOid(schemeOid)]
    if (!hash || !cipher) throw unsupported()
    const keyLength = cipher === 'des-ede3-cbc' ? 24 : Number(cipher.split('-')[1]) / 8
    const key = pbkdf2Sync(Buffer.from(passphrase, 'utf8'), octets(salt), readInt(iterations), keyLength, hash)
    return decipher(cipher, key, octets(iv), data)
  }
  throw unsupported()
}

function decipher(cipher: string, key: Buffer, iv: Buffer, data: Buffer): Buffer {
  try {
    const d = createDecipheriv(cipher, key, iv)
    return Buffer.concat([d.update(data), d.final()])
  } catch {
    throw noKey()
  }
}

function verifyMac(macData: Der, authSafe: Buffer, passphrase: string): void {
  const [digestInfo, macSalt, iterations] = children(macData)
  const [algorithm, digest] = children(digestInfo)
  const hash = HASHES[readOid(children(algorithm)[0])]
  if (!hash) throw unsupported()
  const length = createHash(hash).digest().length
  const key = pkcs12Kdf(hash, bmpPassword(passphrase), octets(macSalt), 3, iterations ? readInt(iterations) : 1, length)
  const mac = createHmac(hash, key).update(authSafe).digest()
  const expected = octets(digest)
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw macFailure()
}

/** The PKCS#12 password: UTF-16BE with a two-byte terminator (RFC 7292 B.1). */
function bmpPassword(passphrase: string): Buffer {
  const out = Buffer.alloc((passphrase.length + 1) * 2)
  for (let i = 0; i < passphrase.length; i++) out.writeUInt16BE(passphrase.charCodeAt(i), i * 2)
  return out
}

/** RFC 7292 appendix B.2: derives `n` bytes for purpose `id` (1 key, 2 IV, 3 MAC). */
function pkcs12Kdf(hash: string, password: Buffer, salt: Buffer, id: number, iterations: number, n: number): Buffer {
  const u = createHash(hash).digest().length
  const v = hash === 'sha384' || hash === 'sha512' ? 128 : 64
  const fill = (src: Buffer) => {
    const len = v * Math.ceil(src.length / v)
    const out = Buffer.alloc(len)
    for (let i = 0; i < len; i++) out[i] = src[i % src.length]
    return out
  }
  const I = Buffer.concat([salt.length ? fill(salt) : Buffer.alloc(0), password.length ? fill(password) : Buffer.alloc(0)])
  const D = Buffer.alloc(v, id)
  const out: Buffer[] = []
  for (let produced = 0; produced < n; produced += u) {
    let A = createHash(hash).update(D).update(I).digest()
    for (let i = 1; i < iterations; i++) A = createHash(hash).update(A).digest()
    out.push(A)
    const B = fill(A)
    // I_j = (I_j + B + 1) mod 2^(8v), for every v-byte block of I.
    for (let j = 0; j < I.length; j += v) {
      let carry = 1
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k] + B[k] + carry
        I[j + k] = sum & 0xff
        carry = sum >> 8
      }
    }
  }
  return Buffer.concat(out).subarray(0, n)
}

// ---- a minimal DER reader ----

interface Der {
  tag: number
  constructed: boolean
  /** The contents. */
  bytes: Buffer
}

function parse(buf: Buffer): Der {
  const [der, end] = read(buf, 0)
  if (end !== buf.length) throw malformed()
  return der
}

function read(buf: Buffer, at: number): [Der, number] {
  if (at + 2 > buf.length) throw malformed()
  const tag = buf[at]
  let length = buf[at + 1]
  let offset = at + 2
  if (length & 0x80) {
    const bytes = length & 0x7f
    if (bytes === 0 || bytes > 4 || offset + bytes > buf.length) throw malformed()
    length = 0
    for (let i = 0; i < bytes; i++) length = length * 256 + buf[offset + i]
    offset += bytes
  }
  if (offset + length > buf.length) throw malformed()
  return [{ tag, constructed: (tag & 0x20) !== 0, bytes: buf.subarray(offset, offset + length) }, offset + length]
}

function children(der: Der | undefined): Der[] {
  if (!der || !der.constructed) throw malformed()
  const out: Der[] = []
  for (let at = 0; at < der.bytes.length; ) {
    const [child, next] = read(der.bytes, at)
    out.push(child)
    at = next
  }
  return out
}

/** The value inside an [n] EXPLICIT wrapper. */
function explicit(der: Der | undefined): Der {
  const [inner] = children(der)
  if (!inner) throw malformed()
  return inner
}

function octets(der: Der | undefined): Buffer {
  if (!der) throw malformed()
  // A constructed OCTET STRING (BER, as some writers use) is its pieces joined.
  return der.constructed ? Buffer.concat(children(der).map(octets)) : der.bytes
}

/** A ContentInfo of type data: its OCTET STRING's bytes. */
function contentOctets(info: Der): Buffer {
  const [type, content] = children(info)
  if (readOid(type) !== OID.data) throw unsupported()
  return octets(explicit(content))
}

function readInt(der: Der | undefined): number {
  if (!der || der.tag !== 0x02) throw malformed()
  let value = 0
  for (const byte of der.bytes) value = value * 256 + byte
  return value
}

function readOid(der: Der | undefined): string {
  if (!der || der.tag !== 0x06 || der.bytes.length === 0) throw malformed()
  const b = der.bytes
  const parts = [Math.floor(b[0] / 40), b[0] % 40]
  let value = 0
  for (let i = 1; i < b.length; i++) {
    value = value * 128 + (b[i] & 0x7f)
    if (!(b[i] & 0x80)) {
      parts.push(value)
      value = 0
    }
  }
  return parts.join('.')
}
