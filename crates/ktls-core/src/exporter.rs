//! Keying material exporters (RFC 8446 §7.5, RFC 5705), as node:tls's
//! `exportKeyingMaterial`. rustls offers no exporter on its unbuffered
//! connections, and the kernel none at all, so the secret it derives from
//! is captured during the handshake (rustls hands it to its key log) and
//! kept, wiped on drop (`OkmBlock`), for the connection's life.

use std::cell::RefCell;

use rustls::crypto::tls13::{HkdfExpander, OkmBlock};
use rustls::{KeyLog, SupportedCipherSuite};

use crate::conn::{Buffers, Offer, Pumped, Tls};
use crate::error::{Error, Result};
use crate::transcript::{learn, FinishedKeys, Learned, Tls12Secrets, Transcript};

/// What an exporter derives from, for the negotiated suite.
pub(crate) struct Exporter {
    suite: SupportedCipherSuite,
    secret: OkmBlock,
    /// TLS 1.2: client_random || server_random, the PRF's seed.
    randoms: Option<[u8; 64]>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter { .. }") // never the secret
    }
}

impl Exporter {
    /// `length` bytes for `label` (and `context`, if given).
    pub(crate) fn export(
        &self,
        length: usize,
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let mut out = vec![0; length];
        match (self.suite, self.randoms) {
            (SupportedCipherSuite::Tls13(suite), _) => {
                let hash = suite.common.hash_provider;
                // Derive-Secret(exporter_secret, label, ""), then "exporter" over Hash(context).
                let mut derived = vec![0; hash.output_len()];
                let first = suite.hkdf_provider.expander_for_okm(&self.secret);
                expand_label(&*first, label, hash.hash(&[]).as_ref(), &mut derived)?;
                let second = suite
                    .hkdf_provider
                    .expander_for_okm(&OkmBlock::new(&derived));
                derived.fill(0);
                let context_hash = hash.hash(context.unwrap_or_default());
                expand_label(&*second, b"exporter", context_hash.as_ref(), &mut out)?;
            }
            (SupportedCipherSuite::Tls12(suite), Some(randoms)) => {
                let mut seed = randoms.to_vec();
                if let Some(context) = context {
                    let len = u16::try_from(context.len()).map_err(|_| {
                        Error::InvalidArgument("context: longer than 65535 bytes".into())
                    })?;
                    seed.extend_from_slice(&len.to_be_bytes());
                    seed.extend_from_slice(context);
                }
                suite
                    .prf_provider
                    .for_secret(&mut out, self.secret.as_ref(), label, &seed);
            }
            (SupportedCipherSuite::Tls12(_), None) => {
                return Err(Error::InvalidArgument(
                    "no keying material: the ServerHello was not seen".into(),
                ));
            }
        }
        Ok(out)
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1).
pub(crate) fn expand_label(
    expander: &dyn HkdfExpander,
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let too_long = || Error::InvalidArgument("label or length too long for an exporter".into());
    let length = u16::try_from(out.len())
        .map_err(|_| too_long())?
        .to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).map_err(|_| too_long())?];
    let context_len = [u8::try_from(context.len()).map_err(|_| too_long())?];
    let info: [&[u8]; 6] = [&length, &label_len, b"tls13 ", label, &context_len, context];
    expander.expand_slice(&info, out).map_err(|_| too_long())
}

/// The secrets one handshake logged, on its way to an `Exporter`.
#[derive(Default)]
pub(crate) struct Captured {
    tls13: Option<OkmBlock>,
    tls12: Option<([u8; 32], OkmBlock)>,
    server_random: Option<[u8; 32]>,
    /// node:tls's 'keylog': NSS key log lines, kept only when asked for.
    pub(crate) keylog: Option<Vec<String>>,
    /// What `transcript.rs` reads once the handshake is over.
    transcript: Transcript,
    finished_keys: FinishedKeys,
    /// The signature schemes this side allows (`sigalgs`, or OpenSSL's default).
    pub(crate) our_sigalgs: std::sync::Arc<[u16]>,
}

impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Captured { .. }")
    }
}

impl Captured {
    /// A ServerHello at the start of `records` gives the TLS 1.2 server random.
    fn sniff_server_hello(&mut self, records: &[u8]) {
        const HANDSHAKE: u8 = 22;
        const SERVER_HELLO: u8 = 2;
        if self.server_random.is_none()
            && records.len() >= 43
            && records[0] == HANDSHAKE
            && records[5] == SERVER_HELLO
        {
            let mut random = [0; 32];
            random.copy_from_slice(&records[11..43]);
            self.server_random = Some(random);
        }
    }

    /// One handshake step of `tls`: its logged secrets (and a TLS 1.2
    /// ServerHello's random, in or out) are kept here.
    pub(crate) fn pump(&mut self, tls: &mut Tls, bufs: &mut Buffers) -> Result<Pumped> {
        self.sniff_server_hello(&bufs.incoming);
        self.transcript.note_input(&bufs.incoming);
        let queued_before = bufs.outgoing.len();
        let pumped = capturing(self, || tls.pump(bufs, Offer::Nothing));
        self.transcript
            .note_step(&bufs.outgoing, queued_before, bufs.incoming.len());
        self.sniff_server_hello(bufs.pending_out());
        pumped
    }

    /// Once the handshake is over, what its records tell (`transcript.rs`).
    /// Call before `take_exporter`, which takes TLS 1.2's secrets.
    pub(crate) fn take_learned(
        &mut self,
        suite: SupportedCipherSuite,
        we_are_client: bool,
    ) -> Learned {
        let tls12 = match (&self.tls12, &self.server_random) {
            (Some((client_random, master)), Some(server_random)) => Some(Tls12Secrets {
                master: master.as_ref(),
                client_random,
                server_random,
            }),
            _ => None,
        };
        learn(
            std::mem::take(&mut self.transcript),
            std::mem::take(&mut self.finished_keys),
            tls12,
            suite,
            we_are_client,
            &self.our_sigalgs,
        )
    }

    /// The exporter for `suite`, once the handshake is over (the secrets
    /// move into it; key log lines stay to be taken).
    pub(crate) fn take_exporter(&mut self, suite: SupportedCipherSuite) -> Option<Exporter> {
        let (tls13, tls12, server_random) = (
            self.tls13.take(),
            self.tls12.take(),
            self.server_random.take(),
        );
        match suite {
            SupportedCipherSuite::Tls13(_) => Some(Exporter {
                suite,
                secret: tls13?,
                randoms: None,
            }),
            SupportedCipherSuite::Tls12(_) => {
                let (client_random, master) = tls12?;
                let mut randoms = [0; 64];
                randoms[..32].copy_from_slice(&client_random);
                randoms[32..].copy_from_slice(&server_random?);
                Some(Exporter {
                    suite,
                    secret: master,
                    randoms: Some(randoms),
                })
            }
        }
    }
}

thread_local! {
    /// The handshake being driven on this thread: rustls's key log runs
    /// synchronously inside its processing, on the caller's thread.
    static CAPTURING: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// Runs `f` (a step of one handshake) with its logged secrets going to `into`.
fn capturing<T>(into: &mut Captured, f: impl FnOnce() -> T) -> T {
    CAPTURING.with(|slot| *slot.borrow_mut() = Some(std::mem::take(into)));
    let result = f();
    *into = CAPTURING
        .with(|slot| slot.borrow_mut().take())
        .unwrap_or_default();
    result
}

/// rustls's key log, keeping only what exporters need.
#[derive(Debug)]
pub(crate) struct ExporterKeyLog;

impl KeyLog for ExporterKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        CAPTURING.with(|slot| {
            let mut slot = slot.borrow_mut();
            let Some(captured) = slot.as_mut() else {
                return;
            };
            if let Some(lines) = captured.keylog.as_mut() {
                lines.push(format!("{label} {} {}\n", hex(client_random), hex(secret)));
            }
            match label {
                "EXPORTER_SECRET" => captured.tls13 = Some(OkmBlock::new(secret)),
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => {
                    captured.finished_keys.client_handshake = Some(OkmBlock::new(secret));
                }
                "SERVER_HANDSHAKE_TRAFFIC_SECRET" => {
                    captured.finished_keys.server_handshake = Some(OkmBlock::new(secret));
                }
                "CLIENT_RANDOM" => {
                    let mut random = [0; 32];
                    if client_random.len() == 32 {
                        random.copy_from_slice(client_random);
                        captured.tls12 = Some((random, OkmBlock::new(secret)));
                    }
                }
                _ => {}
            }
        });
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}
