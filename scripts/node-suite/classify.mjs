#!/usr/bin/env node
// Groups the tests that fail with ktls (a run.mjs --out file) by what their
// source uses, first match wins: node scripts/node-suite/classify.mjs <tree> <out.json>
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const GROUPS = [
  ['node internals', /--expose-internals|internalBinding|_handle\b|require\('internal|SecurePair|JSStreamSocket|js_stream|_tls_wrap|_tlsOptions/],
  ['TLS 1.0/1.1, RSA key exchange, CBC, PSK, DHE, renegotiation', /TLSv1_method|TLSv1_1_method|tls-min-v1\.[01]|'TLSv1(\.1)?'|SECLEVEL|(?<![-\w])AES(128|256)-(GCM-)?SHA(256|384)?\b|DES-|pskCallback|renegotiat|dhparam|DHE-RSA/i],
  ['sessions as OpenSSL keeps them (no new ticket on a resumption, a TLS 1.3 ticket used many times, server session callbacks), OpenSSL engines', /getSession|\bsession\b|ticketKeys|TicketKeys|exportKeyingMaterial|getFinished|getPeerFinished|pfx|passphrase|getEphemeralKeyInfo|getTLSTicket|isSessionReused|OCSP|ocsp|clientCertEngine|privateKeyEngine|sigalgs|ecdhCurve|multi-key/],
  ['OpenSSL messages, trace, keylog', /SSL routines|ERR_OSSL|enableTrace|keylog/],
]
const [tree, out] = process.argv.slice(2)
const { results } = JSON.parse(readFileSync(out, 'utf8'))
const groups = new Map()
for (const [file, r] of Object.entries(results)) {
  if (r.ktls !== false) continue
  const source = readFileSync(join(tree, 'test', 'parallel', file), 'utf8')
  const group = GROUPS.find(([, re]) => re.test(source))?.[0] ?? 'other'
  if (!groups.has(group)) groups.set(group, [])
  groups.get(group).push(`${file}: ${r.why}`)
}
for (const [group, files] of groups) {
  console.log(`## ${group} (${files.length})`)
  for (const f of files) console.log(`- ${f}`)
}
