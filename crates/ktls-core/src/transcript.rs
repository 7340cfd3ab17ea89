//! What node:tls reads from OpenSSL's handshake state and rustls keeps to
//! itself: each side's Finished (`getFinished()`/`getPeerFinished()`) and
//! the signature algorithms both sides allow (`getSharedSigalgs()`). The
//! handshake's records are kept as they pass; once it is over, the hellos
//! and a TLS 1.2 CertificateRequest are read as they are, and the encrypted
//! messages opened with the keys the logged secrets give: TLS 1.3's
//! handshake traffic secrets (RFC 8446 §7.3), TLS 1.2's key block (RFC 5246
//! §6.3). Nothing here outlives the handshake.

use aws_lc_rs::aead::{Aad, Algorithm, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305};
use rustls::crypto::tls13::OkmBlock;
use rustls::{CipherSuite, Tls12CipherSuite, Tls13CipherSuite};

use crate::exporter::expand_label;

const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const CLIENT_HELLO: u8 = 1;
const CERTIFICATE_REQUEST: u8 = 13;
const FINISHED: u8 = 20;
const SIGNATURE_ALGORITHMS: u16 = 13;
const TAG_LEN: usize = 16;
const NONCE_LEN: usize = 12;
/// More than any handshake flight we accept: past it, stop keeping records
/// (the Finished messages are then unknown, never wrong).
const MAX_KEPT: usize = 512 * 1024;

/// The handshake's records in each direction, as they passed.
#[derive(Default)]
pub(crate) struct Transcript {
    sent: Vec<u8>,
    received: Vec<u8>,
    /// How much of the input buffer's front is already in `received`.
    received_upto: usize,
    overflowed: bool,
}

impl Transcript {
    /// Before a step: input that arrived since the last one.
    pub(crate) fn note_input(&mut self, incoming: &[u8]) {
        let new = incoming.get(self.received_upto..).unwrap_or_default();
        Self::keep(&mut self.received, new, &mut self.overflowed);
    }

    /// After a step: what it queued (from `start` on), and what input is left.
    pub(crate) fn note_step(&mut self, outgoing: &[u8], start: usize, incoming_left: usize) {
        let new = outgoing.get(start..).unwrap_or_default();
        Self::keep(&mut self.sent, new, &mut self.overflowed);
        self.received_upto = incoming_left;
    }

    fn keep(into: &mut Vec<u8>, bytes: &[u8], overflowed: &mut bool) {
        if into.len() + bytes.len() > MAX_KEPT {
            *overflowed = true;
        }
        if !*overflowed {
            into.extend_from_slice(bytes);
        }
    }
}

/// What the handshake logged that opens its Finished messages.
#[derive(Default)]
pub(crate) struct FinishedKeys {
    pub(crate) client_handshake: Option<OkmBlock>,
    pub(crate) server_handshake: Option<OkmBlock>,
}

/// TLS 1.2's secrets, borrowed from what the exporter will keep.
pub(crate) struct Tls12Secrets<'a> {
    pub(crate) master: &'a [u8],
    pub(crate) client_random: &'a [u8; 32],
    pub(crate) server_random: &'a [u8; 32],
}

/// What the handshake's records tell, as node:tls reports it.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// Our Finished's verify_data, and the peer's.
    pub(crate) finished: Option<Vec<u8>>,
    pub(crate) peer_finished: Option<Vec<u8>>,
    /// Signature schemes both sides allow, in the chooser's order.
    pub(crate) shared_sigalgs: Vec<u16>,
}

/// Reads the handshake's records. `ours`: the schemes this side allows.
pub(crate) fn learn(
    transcript: Transcript,
    keys: FinishedKeys,
    tls12: Option<Tls12Secrets<'_>>,
    suite: rustls::SupportedCipherSuite,
    we_are_client: bool,
    ours: &[u16],
) -> Learned {
    if transcript.overflowed {
        return Learned::default();
    }
    let (client_records, server_records) = if we_are_client {
        (&transcript.sent, &transcript.received)
    } else {
        (&transcript.received, &transcript.sent)
    };
    let client_hello = messages(&plaintext(client_records))
        .filter(|(kind, _)| *kind == CLIENT_HELLO)
        .last()
        .and_then(|(_, body)| hello_sigalgs(body));
    let (client, server, server_messages, tls13) = match suite {
        rustls::SupportedCipherSuite::Tls13(suite) => {
            let client = keys
                .client_handshake
                .and_then(|secret| tls13_messages(suite, &secret, client_records));
            let server = keys
                .server_handshake
                .and_then(|secret| tls13_messages(suite, &secret, server_records));
            let finished = |all: &Option<Vec<u8>>| all.as_deref().and_then(finished_in);
            (
                finished(&client),
                finished(&server),
                server.unwrap_or_default(),
                true,
            )
        }
        rustls::SupportedCipherSuite::Tls12(suite) => {
            let (client, server) = match tls12 {
                Some(secrets) => (
                    tls12_finished(suite, &secrets, client_records, true),
                    tls12_finished(suite, &secrets, server_records, false),
                ),
                None => (None, None),
            };
            (client, server, plaintext(server_records), false)
        }
    };
    let certificate_request = messages(&server_messages)
        .find(|(kind, _)| *kind == CERTIFICATE_REQUEST)
        .and_then(|(_, body)| certificate_request_sigalgs(body, tls13));
    // OpenSSL's rule with server preference (node:tls's default): the
    // server's list in its order, kept where the client's allows.
    let shared_sigalgs = match (we_are_client, certificate_request, client_hello) {
        (false, _, Some(offered)) => shared(ours, &offered, tls13),
        (true, Some(requested), _) => shared(&requested, ours, tls13),
        _ => Vec::new(),
    };
    let (finished, peer_finished) = if we_are_client {
        (client, server)
    } else {
        (server, client)
    };
    Learned {
        finished,
        peer_finished,
        shared_sigalgs,
    }
}

/// `preferred` kept where `allowed` has it, less what OpenSSL would never
/// share: SHA-1 (below its default security level), DSA in TLS 1.3.
fn shared(preferred: &[u16], allowed: &[u16], tls13: bool) -> Vec<u16> {
    let sha1 = |code: u16| code >> 8 == 0x02;
    let dsa = |code: u16| code & 0xff == 0x02;
    preferred
        .iter()
        .copied()
        .filter(|code| allowed.contains(code) && !sha1(*code) && !(tls13 && dsa(*code)))
        .collect()
}

/// The payloads of the handshake records sent in the clear, in order.
fn plaintext(records_sent: &[u8]) -> Vec<u8> {
    records(records_sent)
        .take_while(|(header, _)| header[0] != CHANGE_CIPHER_SPEC && header[0] != APPLICATION_DATA)
        .filter(|(header, _)| header[0] == HANDSHAKE)
        .flat_map(|(_, payload)| payload.iter().copied())
        .collect()
}

/// Whole handshake messages: (type, body).
fn messages(mut bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let mut r = Reader(bytes);
        let kind = r.u8()?;
        let len = r.u24()?;
        let body = r.take(len)?;
        bytes = r.0;
        Some((kind, body))
    })
}

/// A cursor over wire bytes; `None` when they run short.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

fn code_list(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect()
}

/// The signature_algorithms extension among `extensions`.
fn sigalgs_extension(extensions: &[u8]) -> Option<Vec<u16>> {
    let mut r = Reader(extensions);
    while !r.0.is_empty() {
        let kind = r.u16()?;
        let data = r.vec16()?;
        if kind == SIGNATURE_ALGORITHMS {
            return Some(code_list(Reader(data).vec16()?));
        }
    }
    None
}

/// A ClientHello's signature_algorithms.
fn hello_sigalgs(body: &[u8]) -> Option<Vec<u16>> {
    let mut r = Reader(body);
    r.take(2 + 32)?; // legacy_version, random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    sigalgs_extension(r.vec16()?)
}

/// A CertificateRequest's signature algorithms (RFC 8446 §4.3.2, RFC 5246 §7.4.4).
fn certificate_request_sigalgs(body: &[u8], tls13: bool) -> Option<Vec<u16>> {
    let mut r = Reader(body);
    if tls13 {
        r.vec8()?; // context
        sigalgs_extension(r.vec16()?)
    } else {
        r.vec8()?; // certificate types
        Some(code_list(r.vec16()?))
    }
}

/// The AEAD of the suites rustls (and the kernel) offer.
fn aead(suite: CipherSuite) -> Option<&'static Algorithm> {
    use CipherSuite::*;
    Some(match suite {
        TLS13_AES_128_GCM_SHA256
        | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => &AES_128_GCM,
        TLS13_AES_256_GCM_SHA384
        | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => &AES_256_GCM,
        TLS13_CHACHA20_POLY1305_SHA256
        | TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => &CHACHA20_POLY1305,
        _ => return None,
    })
}

/// Whole records: (5-byte header, payload). A partial one ends the walk.
fn records(mut bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_be_bytes([*bytes.get(3)?, *bytes.get(4)?]));
        let record = bytes.get(..5 + len)?;
        bytes = &bytes[5 + len..];
        Some(record.split_at(5))
    })
}

/// The body of the first Finished among whole handshake messages.
fn finished_in(all: &[u8]) -> Option<Vec<u8>> {
    messages(all)
        .find(|(kind, _)| *kind == FINISHED)
        .map(|(_, body)| body.to_vec())
}

fn open<'a>(
    alg: &'static Algorithm,
    key: &[u8],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    sealed: &'a mut [u8],
) -> Option<&'a mut [u8]> {
    let key = LessSafeKey::new(UnboundKey::new(alg, key).ok()?);
    key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
        .ok()
}

fn xor_sequence(iv: &[u8], seq: u64) -> Option<[u8; NONCE_LEN]> {
    let mut nonce: [u8; NONCE_LEN] = iv.try_into().ok()?;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    Some(nonce)
}

/// TLS 1.3: one side's encrypted handshake messages, opened in order under
/// its handshake traffic keys up to its Finished.
fn tls13_messages(suite: &Tls13CipherSuite, secret: &OkmBlock, sent: &[u8]) -> Option<Vec<u8>> {
    let alg = aead(suite.common.suite)?;
    let expander = suite.hkdf_provider.expander_for_okm(secret);
    let mut key = vec![0; alg.key_len()];
    let mut iv = [0; NONCE_LEN];
    expand_label(&*expander, b"key", &[], &mut key).ok()?;
    expand_label(&*expander, b"iv", &[], &mut iv).ok()?;
    let mut messages = Vec::new();
    // Plaintext records (hellos, the compatibility ChangeCipherSpec) carry no sequence number.
    let sealed = records(sent).filter(|(header, _)| header[0] == APPLICATION_DATA);
    for (seq, (header, payload)) in (0u64..).zip(sealed) {
        let mut body = payload.to_vec();
        let plain = open(alg, &key, xor_sequence(&iv, seq)?, header, &mut body)?;
        let end = plain.iter().rposition(|&b| b != 0)?;
        if plain[end] != HANDSHAKE {
            return None;
        }
        messages.extend_from_slice(&plain[..end]);
        if finished_in(&messages).is_some() {
            return Some(messages);
        }
    }
    None
}

/// TLS 1.2: one side's first record after its ChangeCipherSpec, sequence
/// number 0, under the key block's keys for that side.
fn tls12_finished(
    suite: &Tls12CipherSuite,
    secrets: &Tls12Secrets<'_>,
    sent: &[u8],
    client_side: bool,
) -> Option<Vec<u8>> {
    let alg = aead(suite.common.suite)?;
    let (key_len, iv_len) = (alg.key_len(), suite.aead_alg.key_block_shape().fixed_iv_len);
    let mut block = vec![0; 2 * key_len + 2 * iv_len];
    let mut seed = [0; 64];
    seed[..32].copy_from_slice(secrets.server_random);
    seed[32..].copy_from_slice(secrets.client_random);
    suite
        .prf_provider
        .for_secret(&mut block, secrets.master, b"key expansion", &seed);
    let (keys, ivs) = block.split_at(2 * key_len);
    let (key, iv) = if client_side {
        (&keys[..key_len], &ivs[..iv_len])
    } else {
        (&keys[key_len..], &ivs[iv_len..])
    };
    let mut all = records(sent).skip_while(|(header, _)| header[0] != CHANGE_CIPHER_SPEC);
    all.next()?;
    let (header, payload) = all.next()?;
    if header[0] != HANDSHAKE {
        return None;
    }
    // GCM: a 4-byte implicit IV and 8 explicit bytes opening the record;
    // ChaCha20-Poly1305: the 12-byte IV itself (sequence number 0).
    let (nonce, sealed) = if iv_len == NONCE_LEN {
        (xor_sequence(iv, 0)?, payload)
    } else {
        let (explicit, sealed) = payload.split_at_checked(NONCE_LEN - iv_len)?;
        let mut nonce = [0; NONCE_LEN];
        nonce[..iv_len].copy_from_slice(iv);
        nonce[iv_len..].copy_from_slice(explicit);
        (nonce, sealed)
    };
    let plain_len = u16::try_from(sealed.len().checked_sub(TAG_LEN)?).ok()?;
    let mut aad = [0; 13];
    aad[8] = HANDSHAKE;
    aad[9..11].copy_from_slice(&header[1..3]);
    aad[11..].copy_from_slice(&plain_len.to_be_bytes());
    let mut body = sealed.to_vec();
    finished_in(open(alg, key, nonce, &aad, &mut body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stop_at_a_partial_one() {
        let bytes = [22, 3, 3, 0, 2, 1, 2, 23, 3, 3, 0, 5, 9];
        let all: Vec<_> = records(&bytes).collect();
        assert_eq!(all, vec![(&bytes[..5], &bytes[5..7])]);
    }

    #[test]
    fn sigalgs_from_a_client_hello_and_both_certificate_requests() {
        let mut hello = vec![3, 3];
        hello.extend([7; 32]);
        hello.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
        // extensions: server_name (empty), then signature_algorithms [0x0804, 0x0403]
        hello.extend([0, 14, 0, 0, 0, 0, 0, 13, 0, 6, 0, 4, 8, 4, 4, 3]);
        assert_eq!(hello_sigalgs(&hello), Some(vec![0x0804, 0x0403]));
        let tls13 = [0, 0, 10, 0, 13, 0, 6, 0, 4, 4, 3, 8, 4];
        assert_eq!(
            certificate_request_sigalgs(&tls13, true),
            Some(vec![0x0403, 0x0804])
        );
        let tls12 = [1, 64, 0, 4, 4, 1, 6, 3, 0, 0];
        assert_eq!(
            certificate_request_sigalgs(&tls12, false),
            Some(vec![0x0401, 0x0603])
        );
        assert_eq!(hello_sigalgs(&hello[..40]), None);
    }

    #[test]
    fn shared_keeps_the_preferred_order_less_sha1_and_tls13_dsa() {
        let preferred = [0x0403, 0x0201, 0x0402, 0x0804];
        let allowed = [0x0804, 0x0402, 0x0201, 0x0403];
        assert_eq!(
            shared(&preferred, &allowed, false),
            [0x0403, 0x0402, 0x0804]
        );
        assert_eq!(shared(&preferred, &allowed, true), [0x0403, 0x0804]);
    }

    #[test]
    fn finished_is_found_after_other_messages_and_not_in_a_partial_one() {
        let messages = [8, 0, 0, 2, 0, 0, 20, 0, 0, 3, 7, 8, 9];
        assert_eq!(finished_in(&messages), Some(vec![7, 8, 9]));
        assert_eq!(finished_in(&messages[..12]), None);
    }
}
