//! node:tls's `sigalgs`: the signature schemes a side offers and accepts,
//! in OpenSSL's names (`RSA-PSS+SHA256`, `ECDSA+SHA384`, `ed25519`) or the
//! IANA ones (`rsa_pss_rsae_sha256`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::error::{Error, Result};

/// The schemes a `sigalgs` string names, in its order.
pub(crate) fn parse(list: &str) -> Result<Vec<SignatureScheme>> {
    let schemes = list
        .split(':')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            scheme(name).ok_or_else(|| {
                Error::InvalidArgument(format!("sigalgs: unknown signature algorithm {name:?}"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if schemes.is_empty() {
        return Err(Error::InvalidArgument("sigalgs: empty list".into()));
    }
    Ok(schemes)
}

fn scheme(name: &str) -> Option<SignatureScheme> {
    use SignatureScheme as S;
    Some(match name.to_ascii_lowercase().as_str() {
        "rsa+sha256" | "rsa_pkcs1_sha256" => S::RSA_PKCS1_SHA256,
        "rsa+sha384" | "rsa_pkcs1_sha384" => S::RSA_PKCS1_SHA384,
        "rsa+sha512" | "rsa_pkcs1_sha512" => S::RSA_PKCS1_SHA512,
        "rsa-pss+sha256" | "rsa_pss_rsae_sha256" | "rsa_pss_pss_sha256" => S::RSA_PSS_SHA256,
        "rsa-pss+sha384" | "rsa_pss_rsae_sha384" | "rsa_pss_pss_sha384" => S::RSA_PSS_SHA384,
        "rsa-pss+sha512" | "rsa_pss_rsae_sha512" | "rsa_pss_pss_sha512" => S::RSA_PSS_SHA512,
        "ecdsa+sha256" | "ecdsa_secp256r1_sha256" => S::ECDSA_NISTP256_SHA256,
        "ecdsa+sha384" | "ecdsa_secp384r1_sha384" => S::ECDSA_NISTP384_SHA384,
        "ecdsa+sha512" | "ecdsa_secp521r1_sha512" => S::ECDSA_NISTP521_SHA512,
        "ed25519" => S::ED25519,
        "ed448" => S::ED448,
        _ => return None,
    })
}

/// The provider's verification algorithms cut down to `allowed`: what a
/// client offers in its ClientHello and a server in its CertificateRequest.
/// rustls wants them `'static`; each distinct list is built once per process.
pub(crate) fn restrict(
    all: WebPkiSupportedAlgorithms,
    allowed: &[SignatureScheme],
) -> WebPkiSupportedAlgorithms {
    static BUILT: OnceLock<Mutex<HashMap<Vec<u16>, WebPkiSupportedAlgorithms>>> = OnceLock::new();
    let key: Vec<u16> = allowed.iter().map(|s| u16::from(*s)).collect();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *built.entry(key).or_insert_with(|| {
        let mapping: Vec<_> = all
            .mapping
            .iter()
            .filter(|(scheme, _)| allowed.contains(scheme))
            .copied()
            .collect();
        WebPkiSupportedAlgorithms {
            all: all.all,
            mapping: Box::leak(mapping.into_boxed_slice()),
        }
    })
}

/// A server key that signs only with the schemes `sigalgs` allows.
#[derive(Debug)]
pub(crate) struct RestrictedKey {
    pub(crate) inner: Arc<dyn SigningKey>,
    pub(crate) allowed: Vec<SignatureScheme>,
}

impl SigningKey for RestrictedKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let both: Vec<SignatureScheme> = offered
            .iter()
            .filter(|s| self.allowed.contains(s))
            .copied()
            .collect();
        self.inner.choose_scheme(&both)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.algorithm()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_and_iana_names() {
        let schemes = parse("RSA-PSS+SHA256:ecdsa_secp384r1_sha384:ed25519").unwrap();
        assert_eq!(
            schemes,
            [
                SignatureScheme::RSA_PSS_SHA256,
                SignatureScheme::ECDSA_NISTP384_SHA384,
                SignatureScheme::ED25519
            ]
        );
        assert!(parse("RSA+MD5").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn restricting_keeps_only_the_named_schemes() {
        let all = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        let cut = restrict(all, &[SignatureScheme::ECDSA_NISTP256_SHA256]);
        assert_eq!(
            cut.supported_schemes(),
            [SignatureScheme::ECDSA_NISTP256_SHA256]
        );
    }
}
