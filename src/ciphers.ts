// node:tls's `ciphers` is an OpenSSL cipher string: OpenSSL names for TLS 1.2
// (ECDHE-RSA-AES128-GCM-SHA256), keywords (HIGH, ECDHE+AESGCM, !aNULL) and
// IANA names for TLS 1.3. rustls takes IANA names: this turns the one into
// the other, for the suites rustls has, in the order OpenSSL would use.
import { KtlsError } from './errors'

interface Suite {
  iana: string
  openssl: string
  tls13: boolean
  /** The keywords that select it, as OpenSSL's aliases do. */
  tags: string[]
}

const suite = (iana: string, openssl: string, tags: string): Suite => ({
  iana,
  openssl,
  tls13: iana.startsWith('TLS_AES') || iana === 'TLS_CHACHA20_POLY1305_SHA256',
  tags: ['ALL', 'DEFAULT', 'HIGH', ...tags.split(' ')],
})

// TLS 1.3 in ktls's default preference (DEFAULT_CIPHERS): AES-128-GCM first.
const SUITES: Suite[] = [
  suite('TLS_AES_128_GCM_SHA256', 'TLS_AES_128_GCM_SHA256', 'AES AES128 AESGCM SHA256'),
  suite('TLS_AES_256_GCM_SHA384', 'TLS_AES_256_GCM_SHA384', 'AES AES256 AESGCM SHA384'),
  suite('TLS_CHACHA20_POLY1305_SHA256', 'TLS_CHACHA20_POLY1305_SHA256', 'CHACHA20 SHA256'),
  // TLS 1.2 in OpenSSL's order for keywords (strongest first), so that
  // 'HIGH' or 'ECDHE+AESGCM' prefer what node:tls prefers.
  tls12('ECDSA', 'AES_256_GCM_SHA384', 'AES256-GCM-SHA384', 'AES AES256 AESGCM SHA384'),
  tls12('RSA', 'AES_256_GCM_SHA384', 'AES256-GCM-SHA384', 'AES AES256 AESGCM SHA384'),
  tls12('ECDSA', 'CHACHA20_POLY1305_SHA256', 'CHACHA20-POLY1305', 'CHACHA20 SHA256'),
  tls12('RSA', 'CHACHA20_POLY1305_SHA256', 'CHACHA20-POLY1305', 'CHACHA20 SHA256'),
  tls12('ECDSA', 'AES_128_GCM_SHA256', 'AES128-GCM-SHA256', 'AES AES128 AESGCM SHA256'),
  tls12('RSA', 'AES_128_GCM_SHA256', 'AES128-GCM-SHA256', 'AES AES128 AESGCM SHA256'),
]

/** A TLS 1.2 ECDHE suite: IANA and OpenSSL names, and the keywords that select it. */
function tls12(auth: 'ECDSA' | 'RSA', iana: string, openssl: string, tags: string): Suite {
  return suite(`TLS_ECDHE_${auth}_WITH_${iana}`, `ECDHE-${auth}-${openssl}`, `${tags} TLSv1.2 ECDHE EECDH kECDHE kEECDH ${auth} a${auth}`)
}

/** The suites one token selects: a name, a keyword, or keywords joined by '+'. */
function select(token: string): Suite[] {
  const named = SUITES.filter((s) => s.iana === token || s.openssl === token)
  if (named.length > 0) return named
  const words = token.split('+')
  return SUITES.filter((s) => words.every((w) => s.tags.includes(w)))
}

/**
 * IANA names, colon-separated, for a node:tls `ciphers` string. TLS 1.3
 * suites not named keep their default order, as in node:tls (they are set
 * apart from the TLS 1.2 list there too).
 */
export function toIanaCiphers(ciphers: string): string {
  const chosen: Suite[] = []
  const banned = new Set<Suite>()
  for (const raw of ciphers.split(/[:, ]+/)) {
    // @SECLEVEL=n, @STRENGTH (alone or after a keyword: 'ALL@SECLEVEL=0') have
    // no say over these suites: all of them are above every security level.
    const token = raw.trim().replace(/@.*$/, '')
    if (token === '') continue
    const op = '!-+'.includes(token[0]) ? token[0] : ''
    const matched = select(op ? token.slice(1) : token)
    for (const s of matched) {
      const at = chosen.indexOf(s)
      if (op === '!' || op === '-') {
        if (at >= 0) chosen.splice(at, 1)
        if (op === '!') banned.add(s)
      } else if (op === '+') {
        if (at >= 0) chosen.push(...chosen.splice(at, 1))
      } else if (at < 0 && !banned.has(s)) {
        chosen.push(s)
      }
    }
  }
  const tls13 = chosen.filter((s) => s.tls13)
  const tls12 = chosen.filter((s) => !s.tls13)
  const namesTls13 = ciphers.split(/[:, ]+/).some((t) => /^TLS_(AES|CHACHA20)_/.test(t.trim()))
  const result = [...(namesTls13 ? tls13 : SUITES.filter((s) => s.tls13 && !banned.has(s))), ...tls12]
  if (tls12.length === 0 && tls13.length === 0) {
    throw new KtlsError('ERR_SSL_NO_CIPHER_MATCH', `No cipher match: no supported suite in ${JSON.stringify(ciphers)}`)
  }
  return result.map((s) => s.iana).join(':')
}

/** OpenSSL's name for a suite named by IANA (getCipher().name), as node:tls reports it. */
export function opensslName(iana: string): string {
  return SUITES.find((s) => s.iana === iana)?.openssl ?? iana
}
