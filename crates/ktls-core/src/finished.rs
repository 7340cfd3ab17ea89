//! node:tls's `getFinished()`/`getPeerFinished()`: the verify_data of each
//! side's Finished message. rustls keeps them to itself and both travel
//! encrypted, so the handshake's records are kept as they pass and, once it
//! is over, the two Finished messages are opened with the keys the logged
//! secrets give: TLS 1.3's handshake traffic secrets (RFC 8446 §7.3), TLS
//! 1.2's key block (RFC 5246 §6.3). Nothing here outlives the handshake.

use aws_lc_rs::aead::{Aad, Algorithm, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305};
use rustls::crypto::tls13::OkmBlock;
use rustls::{CipherSuite, Tls12CipherSuite, Tls13CipherSuite};

use crate::exporter::expand_label;

const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const FINISHED: u8 = 20;
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

/// (ours, the peer's) verify_data, each `None` where it cannot be known.
pub(crate) fn finished_pair(
    transcript: Transcript,
    keys: FinishedKeys,
    tls12: Option<Tls12Secrets<'_>>,
    suite: rustls::SupportedCipherSuite,
    we_are_client: bool,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    if transcript.overflowed {
        return (None, None);
    }
    let (client_records, server_records) = if we_are_client {
        (&transcript.sent, &transcript.received)
    } else {
        (&transcript.received, &transcript.sent)
    };
    let (client, server) = match suite {
        rustls::SupportedCipherSuite::Tls13(suite) => (
            keys.client_handshake
                .and_then(|secret| tls13_finished(suite, &secret, client_records)),
            keys.server_handshake
                .and_then(|secret| tls13_finished(suite, &secret, server_records)),
        ),
        rustls::SupportedCipherSuite::Tls12(suite) => match tls12 {
            Some(secrets) => (
                tls12_finished(suite, &secrets, client_records, true),
                tls12_finished(suite, &secrets, server_records, false),
            ),
            None => (None, None),
        },
    };
    if we_are_client {
        (client, server)
    } else {
        (server, client)
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
fn finished_in(mut messages: &[u8]) -> Option<Vec<u8>> {
    while messages.len() >= 4 {
        let len = usize::from(messages[1]) << 16
            | usize::from(messages[2]) << 8
            | usize::from(messages[3]);
        let body = messages.get(4..4 + len)?;
        if messages[0] == FINISHED {
            return Some(body.to_vec());
        }
        messages = &messages[4 + len..];
    }
    None
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

/// TLS 1.3: one side's encrypted handshake records, opened in order under
/// its handshake traffic keys until the Finished.
fn tls13_finished(suite: &Tls13CipherSuite, secret: &OkmBlock, sent: &[u8]) -> Option<Vec<u8>> {
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
        if let Some(verify_data) = finished_in(&messages) {
            return Some(verify_data);
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
    fn finished_is_found_after_other_messages_and_not_in_a_partial_one() {
        let messages = [8, 0, 0, 2, 0, 0, 20, 0, 0, 3, 7, 8, 9];
        assert_eq!(finished_in(&messages), Some(vec![7, 8, 9]));
        assert_eq!(finished_in(&messages[..12]), None);
    }
}
