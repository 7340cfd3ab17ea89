//! Building rustls configurations from Node-style options, once per
//! secure context, and verifying a server's chain after the handshake the
//! way Node does (so `rejectUnauthorized: false` can still report why).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption, WebPkiServerVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls::{SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion};

use crate::error::{Error, Result};
use crate::exporter::ExporterKeyLog;
use crate::random::PooledRandom;
use crate::sessions::TokenStore;
use crate::sigalgs;
use crate::tickets::{TicketKeys, Ticketer, DEFAULT_SESSION_TIMEOUT};

/// Options common to both sides, named as in `node:tls`.
#[derive(Debug, Clone, Default)]
pub struct CommonOptions {
    /// `ALPNProtocols`, in preference order.
    pub alpn_protocols: Vec<Vec<u8>>,
    /// `minVersion`: "TLSv1.2" or "TLSv1.3" (default TLSv1.2).
    pub min_version: Option<String>,
    /// `maxVersion` (default TLSv1.3).
    pub max_version: Option<String>,
    /// `ciphers`: colon-separated IANA suite names, in preference order;
    /// empty means `DEFAULT_CIPHERS`.
    pub ciphers: Option<String>,
    /// `ecdhCurve`: key exchange groups by rustls's names ("X25519",
    /// "secp256r1", ...), in preference order; empty means rustls's default.
    pub groups: Vec<String>,
    /// `sigalgs`: the signature schemes offered, accepted and signed with
    /// (colon-separated, OpenSSL's or IANA's names); `None`: all of rustls's.
    pub sigalgs: Option<String>,
    /// The OpenSSL version node:tls uses on this Node ("3.0.19"): whose
    /// default signature algorithms `getSharedSigalgs()` reports against.
    pub openssl_version: Option<String>,
}

/// Client-side options.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Shared options.
    pub common: CommonOptions,
    /// `ca`: PEM trust anchors; empty means the Mozilla root list (as Node).
    pub ca: Vec<Vec<u8>>,
    /// `cert`: PEM chain, leaf first, presented when the server asks for one.
    pub cert: Vec<u8>,
    /// `key`: PEM private key of `cert`.
    pub key: Vec<u8>,
}

/// Server-side options.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Shared options.
    pub common: CommonOptions,
    /// `cert` and `key`: one or more certificates (PEM chain, leaf first) with
    /// their keys (PEM), e.g. an RSA and an ECDSA one; each handshake gets the
    /// first whose key can sign with a scheme the client offers.
    pub identities: Vec<Identity>,
    /// `honorCipherOrder`: pick the suite by this server's order (`ciphers`,
    /// else `DEFAULT_CIPHERS`), not the client's. node:tls's default is true.
    pub honor_cipher_order: bool,
    /// `requestCert`: ask the client for a certificate.
    pub request_cert: bool,
    /// `rejectUnauthorized` with `requestCert`: a client that sends no
    /// certificate fails the handshake (an untrusted one is judged after it,
    /// from `chain_error`, as node:tls does).
    pub reject_unauthorized: bool,
    /// `ca`: PEM trust anchors for client certificates; empty means the Mozilla list.
    pub ca: Vec<Vec<u8>>,
    /// `ticketKeys`: what session tickets are sealed with (48 bytes);
    /// `None`: random ones, as node:tls makes for each server.
    pub ticket_keys: Option<Vec<u8>>,
    /// `sessionTimeout`, in seconds: the lifetime tickets announce.
    pub session_timeout: u32,
}

/// A certificate chain (PEM, leaf first) and its private key (PEM).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// PEM chain, leaf first.
    pub cert: Vec<u8>,
    /// PEM private key.
    pub key: Vec<u8>,
}

/// A ready client configuration plus the verifier used after the handshake.
#[derive(Debug)]
pub struct ClientContext {
    pub(crate) config: Arc<ClientConfig>,
    /// Its sessions, each also known by a token (`getSession`, `session`).
    pub(crate) sessions: Arc<TokenStore>,
    verifier: Arc<WebPkiServerVerifier>,
    /// `ca` entries, trusted as leaves too: OpenSSL (so Node) accepts a
    /// self-signed server certificate that is itself in the trust store.
    trusted_leaves: Vec<CertificateDer<'static>>,
    /// The signature schemes it allows (`getSharedSigalgs()`).
    pub(crate) sigalgs: Arc<[u16]>,
}

/// A ready server configuration.
#[derive(Debug)]
pub struct ServerContext {
    pub(crate) config: Arc<ServerConfig>,
    /// What its tickets are sealed with (`getTicketKeys`/`setTicketKeys`).
    pub ticket_keys: Arc<TicketKeys>,
    /// With `requestCert`: how the client's chain is judged after the handshake.
    pub(crate) client_check: Option<Arc<ClientChainCheck>>,
    /// The signature schemes it allows (`getSharedSigalgs()`).
    pub(crate) sigalgs: Arc<[u16]>,
}

/// A client's chain judged against the server's `ca`, after the handshake,
/// so that `rejectUnauthorized: false` can still report why.
#[derive(Debug)]
pub(crate) struct ClientChainCheck {
    verifier: Arc<dyn ClientCertVerifier>,
    trusted_leaves: Vec<CertificateDer<'static>>,
}

impl ClientChainCheck {
    /// Node's `authorizationError` code, or `None` when the chain is trusted.
    pub(crate) fn chain_error(&self, chain: &[CertificateDer<'static>]) -> Option<String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            // What node:tls reports for a client that sent no certificate.
            return Some("UNABLE_TO_GET_ISSUER_CERT".into());
        };
        if self.trusted_leaves.contains(leaf) {
            return None;
        }
        if webpki::EndEntityCert::try_from(leaf).is_err() {
            return Some(UNREADABLE_LEAF.into());
        }
        match self
            .verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
        {
            Ok(_) => None,
            Err(rustls::Error::InvalidCertificate(err)) => certificate_error_code(&err),
            Err(_) => Some("CERT_REJECTED".into()),
        }
    }
}

impl ClientContext {
    /// Parses and validates the options; errors name the bad option.
    pub fn new(options: &ClientOptions) -> Result<Self> {
        let provider = Arc::new(provider(&options.common)?);
        let trusted_leaves = ca_certificates(&options.ca)?;
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots(&trusted_leaves)?),
            provider.clone(),
        )
        .build()
        .map_err(|e| Error::InvalidArgument(format!("ca: {e}")))?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions(&options.common)?)
            .map_err(|e| Error::InvalidArgument(format!("minVersion/maxVersion: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(shared_handshake_verifier(&provider));
        // A client certificate needs both halves; either alone is ignored.
        let mut config = if options.cert.is_empty() || options.key.is_empty() {
            builder.with_client_cert_resolver(shared_no_client_cert())
        } else {
            let certified = Arc::new(certified_key_from_pem(
                &options.cert,
                &options.key,
                &provider,
            )?);
            builder.with_client_cert_resolver(Arc::new(PresentClientCert(certified)))
        };
        config.alpn_protocols = options.common.alpn_protocols.clone();
        config.enable_secret_extraction = true;
        config.key_log = Arc::new(ExporterKeyLog);
        let sessions = Arc::new(TokenStore::default());
        config.resumption = Resumption::store(sessions.clone());
        Ok(Self {
            config: Arc::new(config),
            sessions,
            verifier,
            trusted_leaves,
            sigalgs: sigalgs::allowed(
                options.common.sigalgs.as_deref(),
                options.common.openssl_version.as_deref(),
            )?,
        })
    }

    /// Verifies the peer's chain against the trust anchors. Returns Node's
    /// `authorizationError` code, or `None` when the chain is trusted. The
    /// host name is Node's `checkServerIdentity` business, not checked here.
    pub fn chain_error(&self, chain: &[CertificateDer<'static>], host: &str) -> Option<String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Some("UNABLE_TO_GET_ISSUER_CERT".into());
        };
        if self.trusted_leaves.contains(leaf) {
            return None;
        }
        if webpki::EndEntityCert::try_from(leaf).is_err() {
            return Some(UNREADABLE_LEAF.into());
        }
        let name = ServerName::try_from(host.to_owned())
            .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("valid literal"));
        let verdict =
            self.verifier
                .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now());
        match verdict {
            Ok(_) => None,
            Err(rustls::Error::InvalidCertificate(err)) => certificate_error_code(&err),
            Err(_) => Some("CERT_REJECTED".into()),
        }
    }
}

/// `chain_error`'s answer for a leaf webpki cannot read (X.509 v1, which
/// OpenSSL accepts): the binding judges such a chain itself, so this marker
/// never reaches a user.
pub(crate) const UNREADABLE_LEAF: &str = "UNREADABLE_LEAF";

fn certificate_error_code(err: &CertificateError) -> Option<String> {
    let code = match err {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            return None
        }
        CertificateError::UnknownIssuer => "UNKNOWN_ISSUER",
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "CERT_HAS_EXPIRED",
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "CERT_NOT_YET_VALID"
        }
        CertificateError::BadSignature => "CERT_SIGNATURE_FAILURE",
        CertificateError::Revoked => "CERT_REVOKED",
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "INVALID_PURPOSE"
        }
        _ => "CERT_REJECTED",
    };
    Some(code.into())
}

impl ServerContext {
    /// Parses the key and chain; errors name the bad option.
    pub fn new(options: &ServerOptions) -> Result<Self> {
        let provider = Arc::new(provider(&options.common)?);
        if options.identities.is_empty() {
            return Err(Error::InvalidArgument("cert: no certificate in PEM".into()));
        }
        let certified = options
            .identities
            .iter()
            .map(|id| certified_key_from_pem(&id.cert, &id.key, &provider))
            .map(|key| {
                key.and_then(|key| restrict_signing(key, &options.common))
                    .map(Arc::new)
            })
            .collect::<Result<Vec<_>>>()?;
        let resolver = Arc::new(RecordHello(certified));
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions(&options.common)?)
            .map_err(|e| Error::InvalidArgument(format!("minVersion/maxVersion: {e}")))?;
        let mut client_check = None;
        let builder = if options.request_cert {
            let trusted_leaves = ca_certificates(&options.ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(&trusted_leaves)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::InvalidArgument(format!("ca: {e}")))?;
            client_check = Some(Arc::new(ClientChainCheck {
                verifier,
                trusted_leaves,
            }));
            builder.with_client_cert_verifier(Arc::new(RequestClientCert {
                provider,
                mandatory: options.reject_unauthorized,
            }))
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = options.common.alpn_protocols.clone();
        config.enable_secret_extraction = true;
        config.key_log = Arc::new(ExporterKeyLog);
        config.ignore_client_order = options.honor_cipher_order;
        // Stateless tickets under keys the application may share and rotate.
        let ticket_keys = match &options.ticket_keys {
            Some(bytes) => TicketKeys::from_bytes(bytes)?,
            None => TicketKeys::random()?,
        };
        config.ticketer = Arc::new(Ticketer {
            keys: ticket_keys.clone(),
            lifetime: if options.session_timeout == 0 {
                DEFAULT_SESSION_TIMEOUT
            } else {
                options.session_timeout
            },
        });
        Ok(Self {
            ticket_keys,
            config: Arc::new(config),
            client_check,
            sigalgs: sigalgs::allowed(
                options.common.sigalgs.as_deref(),
                options.common.openssl_version.as_deref(),
            )?,
        })
    }
}

/// With `sigalgs`, a server key signs only with the schemes it names.
fn restrict_signing(key: CertifiedKey, options: &CommonOptions) -> Result<CertifiedKey> {
    let Some(list) = options.sigalgs.as_deref() else {
        return Ok(key);
    };
    let restricted = sigalgs::RestrictedKey {
        inner: key.key.clone(),
        allowed: sigalgs::parse(list)?,
    };
    Ok(CertifiedKey {
        key: Arc::new(restricted),
        ..key
    })
}

/// The suites used when `ciphers` is not given, in preference order: every
/// suite rustls has, AES-128-GCM first (as BoringSSL and Go order them).
/// It was kTLS's first suite (Linux 4.13), the kernel's AES-128 runs 10
/// rounds to AES-256's 14, and its handshake hashes with SHA-256,
/// which current x86 CPUs of both vendors run in hardware (SHA-384 they do not).
pub const DEFAULT_CIPHERS: &str = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:\
    TLS_CHACHA20_POLY1305_SHA256:\
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:\
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:\
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

fn provider(options: &CommonOptions) -> Result<CryptoProvider> {
    static POOLED: OnceLock<PooledRandom> = OnceLock::new();
    let mut provider = aws_lc_rs::default_provider();
    let system = provider.secure_random;
    provider.secure_random = POOLED.get_or_init(|| PooledRandom { system });
    let list = (options.ciphers.as_deref())
        .filter(|l| !l.is_empty())
        .unwrap_or(DEFAULT_CIPHERS);
    let wanted: Vec<&str> = list.split(':').map(str::trim).collect();
    // Where the suite stands in the list: its preference, as in OpenSSL.
    let rank = |suite: &SupportedCipherSuite| {
        let name = suite.suite().as_str().unwrap_or_default();
        let iana = name.replacen("TLS13_", "TLS_", 1);
        wanted
            .iter()
            .position(|w| w.eq_ignore_ascii_case(name) || w.eq_ignore_ascii_case(&iana))
    };
    if !options.groups.is_empty() {
        let rank = |group: &&'static dyn rustls::crypto::SupportedKxGroup| {
            let name = format!("{:?}", group.name());
            options.groups.iter().position(|g| *g == name)
        };
        provider.kx_groups.retain(|g| rank(g).is_some());
        provider.kx_groups.sort_by_key(rank);
        if provider.kx_groups.is_empty() {
            return Err(Error::InvalidArgument(
                "ecdhCurve: no supported group".into(),
            ));
        }
    }
    if let Some(list) = options.sigalgs.as_deref() {
        provider.signature_verification_algorithms = sigalgs::restrict(
            provider.signature_verification_algorithms,
            &sigalgs::parse(list)?,
        );
    }
    // Suites of a disabled version go too: rustls's client offers every suite
    // it holds, so a TLS 1.2-only hello would otherwise look TLS 1.3-capable
    // and a server with RSA and ECDSA certificates could choose wrongly.
    let enabled = versions(options)?;
    provider.cipher_suites.retain(|suite| {
        rank(suite).is_some() && enabled.iter().any(|v| v.version == suite.version().version)
    });
    provider.cipher_suites.sort_by_key(rank);
    if provider.cipher_suites.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "ciphers: no supported suite in {list:?}"
        )));
    }
    Ok(provider)
}

fn versions(options: &CommonOptions) -> Result<Vec<&'static SupportedProtocolVersion>> {
    let rank = |name: Option<&str>, default: u8| match name {
        None => Ok(default),
        Some("TLSv1.2") => Ok(2),
        Some("TLSv1.3") => Ok(3),
        Some(other) => Err(Error::InvalidArgument(format!(
            "unsupported TLS version {other:?}"
        ))),
    };
    let min = rank(options.min_version.as_deref(), 2)?;
    let max = rank(options.max_version.as_deref(), 3)?;
    let all = [(2, &rustls::version::TLS12), (3, &rustls::version::TLS13)];
    let chosen: Vec<_> = all
        .iter()
        .filter(|(r, _)| (min..=max).contains(r))
        .map(|(_, v)| *v)
        .collect();
    if chosen.is_empty() {
        return Err(Error::InvalidArgument(
            "minVersion is above maxVersion".into(),
        ));
    }
    Ok(chosen)
}

fn certificates(pem: &[u8], option: &str) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::InvalidArgument(format!("{option}: {e}")))
}

fn ca_certificates(ca: &[Vec<u8>]) -> Result<Vec<CertificateDer<'static>>> {
    let mut all = Vec::new();
    for pem in ca {
        all.extend(certificates(pem, "ca")?);
    }
    Ok(all)
}

/// The `ca` option, or the Mozilla list when it is absent (as Node).
fn roots(ca: &[CertificateDer<'static>]) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    if ca.is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    for cert in ca {
        // A leaf that cannot be an anchor is still trusted via `trusted_leaves`.
        let _ = store.add(cert.clone());
    }
    Ok(store)
}

/// `cert` and `key` options (PEM) as one certified key.
fn certified_key_from_pem(
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey> {
    let chain = certificates(cert, "cert")?;
    if chain.is_empty() {
        return Err(Error::InvalidArgument("cert: no certificate in PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| Error::InvalidArgument(format!("key: {e}")))?;
    certified_key(chain, key, provider)
}

/// The key and its chain. rustls checks that they belong together by parsing
/// the leaf with webpki, which refuses X.509 v1; OpenSSL (so Node) serves v1
/// certificates, so for those the check is skipped rather than the certificate.
fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey> {
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| Error::InvalidArgument(format!("key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    // Compared on the DER, so X.509 v1 certificates (which webpki cannot read)
    // are checked too; only the key's bits, as parameters may be spelled apart.
    let cert_key = crate::x509::subject_public_key_info(&certified.cert[0])
        .and_then(crate::x509::public_key_bits);
    let own_key = certified.key.public_key();
    let own_key = own_key
        .as_ref()
        .and_then(|spki| crate::x509::public_key_bits(spki.as_ref()));
    match (cert_key, own_key) {
        (Some(cert_key), Some(own_key)) if cert_key != own_key => Err(Error::KeyMismatch),
        _ => Ok(certified),
    }
}

/// A handshake signature checked against the certificate's key when webpki
/// cannot parse the certificate (X.509 v1): the key is found in its DER.
fn verify_with_certificate_key(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algs: &rustls::crypto::WebPkiSupportedAlgorithms,
    tls13: bool,
) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
    let bad = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    let spki = crate::x509::subject_public_key_info(cert.as_ref()).ok_or_else(bad)?;
    let spki = rustls::pki_types::SubjectPublicKeyInfoDer::from(spki);
    if tls13 {
        return rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, algs);
    }
    // TLS 1.2: every algorithm the scheme maps to is a candidate, as rustls tries them.
    let key = webpki::RawPublicKeyEntity::try_from(&spki).map_err(|_| bad())?;
    let candidates = algs
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, candidates)| *candidates)
        .unwrap_or_default();
    if candidates
        .iter()
        .any(|alg| key.verify_signature(*alg, message, dss.signature()).is_ok())
    {
        return Ok(HandshakeSignatureValid::assertion());
    }
    Err(rustls::Error::InvalidCertificate(
        CertificateError::BadSignature,
    ))
}

/// During the handshake: checks the peer's signatures (so the key really is
/// the certificate's), but defers chain trust to `ClientContext::chain_error`,
/// as Node defers it to `rejectUnauthorized`. No application byte is sent
/// before that verdict.
#[derive(Debug)]
struct VerifyChainAfterHandshake {
    provider: Arc<CryptoProvider>,
}

/// rustls resumes a session only under the very verifier (and client
/// certificate resolver) that made it. The chain is judged after every
/// handshake, resumed ones included, against the connecting context's own
/// `ca`; so one verifier serves every context and a `session` from one
/// context resumes in another, as with node:tls.
/// One per `sigalgs` choice: the schemes a client offers are the verifier's.
fn shared_handshake_verifier(provider: &Arc<CryptoProvider>) -> Arc<VerifyChainAfterHandshake> {
    static SHARED: OnceLock<Mutex<HashMap<Vec<u16>, Arc<VerifyChainAfterHandshake>>>> =
        OnceLock::new();
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let key: Vec<u16> = schemes.iter().map(|s| u16::from(*s)).collect();
    SHARED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert_with(|| {
            Arc::new(VerifyChainAfterHandshake {
                provider: provider.clone(),
            })
        })
        .clone()
}

/// The resolver of every context without a client certificate (see above).
fn shared_no_client_cert() -> Arc<NoClientCert> {
    static SHARED: OnceLock<Arc<NoClientCert>> = OnceLock::new();
    SHARED.get_or_init(|| Arc::new(NoClientCert)).clone()
}

#[derive(Debug)]
struct NoClientCert;

impl ResolvesClientCert for NoClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

impl ServerCertVerifier for VerifyChainAfterHandshake {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.provider, message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.provider, message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client's `cert`/`key`, presented whenever the server asks.
#[derive(Debug)]
struct PresentClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for PresentClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `requestCert`: asks for a client certificate and checks the client's
/// signatures during the handshake; the chain's trust is judged after it
/// (`ClientChainCheck`), as node:tls does. `mandatory` (`rejectUnauthorized`)
/// refuses a client that sends none.
#[derive(Debug)]
struct RequestClientCert {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl ClientCertVerifier for RequestClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.provider, message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.provider, message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A handshake signature made with the certificate's key (X.509 v1 included).
fn check_signature(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
    let algs = &provider.signature_verification_algorithms;
    if webpki::EndEntityCert::try_from(cert).is_err() {
        return verify_with_certificate_key(message, cert, dss, algs, tls13);
    }
    if tls13 {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    } else {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }
}

thread_local! {
    /// What the resolver saw of the ClientHello being processed on this
    /// thread (its SNI) and which certificate it chose. rustls's unbuffered
    /// server has no public accessor for either, and the resolver runs
    /// synchronously inside `process_tls_records` on the caller's thread, so
    /// the caller takes it right after that call returns.
    static LAST_HELLO: RefCell<Option<ResolvedHello>> = const { RefCell::new(None) };
}

/// The SNI a ClientHello asked for and the index of the identity served.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedHello {
    pub(crate) server_name: Option<String>,
    pub(crate) identity: usize,
}

/// Takes what the last ClientHello processed on this thread resolved to.
pub(crate) fn take_resolved_hello() -> Option<ResolvedHello> {
    LAST_HELLO.with(|slot| slot.borrow_mut().take())
}

struct RecordHello(Vec<Arc<CertifiedKey>>);

impl fmt::Debug for RecordHello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordHello")
    }
}

impl ResolvesServerCert for RecordHello {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // As OpenSSL with several certificates: by the client's signature
        // scheme preference, the first certificate whose key can sign with it
        // (and, for a TLS 1.2-only client, that one of its suites can use).
        let suites: Vec<String> = client_hello
            .cipher_suites()
            .iter()
            .map(|s| format!("{s:?}"))
            .collect();
        let tls12_only = !suites.iter().any(|s| s.starts_with("TLS13_"));
        let suite_allows = |key: &CertifiedKey| {
            let auth = match key.key.algorithm() {
                rustls::SignatureAlgorithm::RSA => "_RSA_",
                _ => "_ECDSA_",
            };
            !tls12_only || suites.iter().any(|s| s.contains(auth))
        };
        let identity = client_hello
            .signature_schemes()
            .iter()
            .find_map(|scheme| {
                self.0
                    .iter()
                    .position(|c| c.key.choose_scheme(&[*scheme]).is_some() && suite_allows(c))
            })
            .unwrap_or(0);
        let hello = ResolvedHello {
            server_name: client_hello.server_name().map(str::to_owned),
            identity,
        };
        LAST_HELLO.with(|slot| *slot.borrow_mut() = Some(hello));
        self.0.get(identity).cloned()
    }
}
