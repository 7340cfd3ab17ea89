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

/// OpenSSL 3.0's default list (`tls12_sigalgs`), what a side allows
/// without `sigalgs`: node:tls's `getSharedSigalgs()` draws on it (Node 20).
const OPENSSL_3_0_DEFAULT: [u16; 23] = [
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x0804, 0x0805, 0x0806, 0x0401,
    0x0501, 0x0601, 0x0303, 0x0203, 0x0301, 0x0201, 0x0302, 0x0202, 0x0402, 0x0502, 0x0602,
];

/// OpenSSL 3.5's (Node 22 and 24): ML-DSA first, brainpool after Ed448.
const OPENSSL_3_5_DEFAULT: [u16; 29] = [
    0x0905, 0x0906, 0x0904, 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x081a, 0x081b, 0x081c, 0x0809,
    0x080a, 0x080b, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0303, 0x0203, 0x0301, 0x0201,
    0x0302, 0x0202, 0x0402, 0x0502, 0x0602,
];

/// The schemes a side allows, as wire code points, in preference order:
/// `list`, else the default of `openssl` (the version node:tls would use).
pub(crate) fn allowed(list: Option<&str>, openssl: Option<&str>) -> Result<Arc<[u16]>> {
    if let Some(list) = list {
        return Ok(parse(list)?.into_iter().map(u16::from).collect());
    }
    let version: Vec<u32> = openssl
        .unwrap_or_default()
        .split('.')
        .map_while(|part| part.parse().ok())
        .collect();
    Ok(match version.as_slice() {
        [major, minor, ..] if (*major, *minor) >= (3, 5) => OPENSSL_3_5_DEFAULT.into(),
        _ => OPENSSL_3_0_DEFAULT.into(),
    })
}

/// node:tls's names for them (`RSA-PSS+SHA256`, `Ed25519+UNDEF`): the
/// signature's then the hash's, as OpenSSL's objects name them.
pub(crate) fn node_names(codes: &[u16]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|&code| {
            let signature = match (code >> 8, code & 0xff) {
                (0x08, 0x07) => return Some("Ed25519+UNDEF".to_owned()),
                (0x08, 0x08) => return Some("Ed448+UNDEF".to_owned()),
                (0x09, 0x04) => return Some("id-ml-dsa-44+UNDEF".to_owned()),
                (0x09, 0x05) => return Some("id-ml-dsa-65+UNDEF".to_owned()),
                (0x09, 0x06) => return Some("id-ml-dsa-87+UNDEF".to_owned()),
                (0x08, 0x1a..=0x1c) => "ECDSA",
                (0x08, 0x04..=0x06 | 0x09..=0x0b) => "RSA-PSS",
                (_, 0x01) => "RSA",
                (_, 0x02) => "DSA",
                (_, 0x03) => "ECDSA",
                _ => return None,
            };
            let hash = match (code >> 8, code & 0xff) {
                (0x08, 0x04 | 0x09 | 0x1a) => "SHA256",
                (0x08, 0x05 | 0x0a | 0x1b) => "SHA384",
                (0x08, 0x06 | 0x0b | 0x1c) => "SHA512",
                (0x02, _) => "SHA1",
                (0x03, _) => "SHA224",
                (0x04, _) => "SHA256",
                (0x05, _) => "SHA384",
                (0x06, _) => "SHA512",
                _ => return None,
            };
            Some(format!("{signature}+{hash}"))
        })
        .collect()
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
    fn node_names_as_openssl_names_them() {
        let codes = [
            0x0403, 0x0807, 0x0809, 0x0804, 0x0401, 0x0303, 0x0502, 0x0201, 0xfe00, 0x0905, 0x081b,
        ];
        assert_eq!(
            node_names(&codes),
            [
                "ECDSA+SHA256",
                "Ed25519+UNDEF",
                "RSA-PSS+SHA256",
                "RSA-PSS+SHA256",
                "RSA+SHA256",
                "ECDSA+SHA224",
                "DSA+SHA384",
                "RSA+SHA1",
                "id-ml-dsa-65+UNDEF",
                "ECDSA+SHA384"
            ]
        );
        let named = allowed(Some("ECDSA+SHA384:ed25519"), Some("3.5.9")).unwrap();
        assert_eq!(&*named, [0x0503, 0x0807]);
        assert_eq!(
            &*allowed(None, Some("3.0.19")).unwrap(),
            OPENSSL_3_0_DEFAULT
        );
        assert_eq!(&*allowed(None, Some("3.5.9")).unwrap(), OPENSSL_3_5_DEFAULT);
        assert_eq!(&*allowed(None, None).unwrap(), OPENSSL_3_0_DEFAULT);
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
