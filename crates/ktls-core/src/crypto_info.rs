//! Pure construction of the kernel's `tls12_crypto_info_*` structures from
//! rustls's extracted secrets. No socket is needed, so the layout is tested
//! byte for byte here and the syscall wrapper stays trivial.

use rustls::{ConnectionTrafficSecrets, ProtocolVersion};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// The three AEADs the kernel can take over from rustls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelCipher {
    /// `TLS_CIPHER_AES_GCM_128`
    Aes128Gcm,
    /// `TLS_CIPHER_AES_GCM_256`
    Aes256Gcm,
    /// `TLS_CIPHER_CHACHA20_POLY1305`
    Chacha20Poly1305,
}

impl KernelCipher {
    /// Every cipher, in the order the capability probe tries them.
    pub const ALL: [Self; 3] = [Self::Aes128Gcm, Self::Aes256Gcm, Self::Chacha20Poly1305];

    /// The kernel's `cipher_type` number (`uapi/linux/tls.h`).
    pub fn kernel_id(self) -> u16 {
        match self {
            Self::Aes128Gcm => libc::TLS_CIPHER_AES_GCM_128,
            Self::Aes256Gcm => libc::TLS_CIPHER_AES_GCM_256,
            Self::Chacha20Poly1305 => libc::TLS_CIPHER_CHACHA20_POLY1305,
        }
    }

    /// Parses a TLS 1.3 suite name (IANA).
    pub fn from_suite_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.tls13_suite_name() == name)
    }

    /// The TLS 1.3 suite name (IANA) using this AEAD.
    pub fn tls13_suite_name(self) -> &'static str {
        match self {
            Self::Aes128Gcm => "TLS_AES_128_GCM_SHA256",
            Self::Aes256Gcm => "TLS_AES_256_GCM_SHA384",
            Self::Chacha20Poly1305 => "TLS_CHACHA20_POLY1305_SHA256",
        }
    }

    /// Size of the kernel's crypto_info structure for this cipher (the IV,
    /// salt and key with the version, cipher and sequence number).
    pub(crate) fn crypto_info_size(self) -> usize {
        4 + 12 + self.key_len() + 8
    }

    fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes256Gcm | Self::Chacha20Poly1305 => 32,
        }
    }

    /// The kernel splits rustls's 12-byte IV into salt + iv for GCM only.
    fn salt_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => 4,
            Self::Chacha20Poly1305 => 0,
        }
    }
}

/// One direction's kernel crypto state, in the kernel's field order.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoInfo {
    version: u16,
    cipher: KernelCipher,
    iv: Vec<u8>,
    key: Vec<u8>,
    salt: Vec<u8>,
    rec_seq: [u8; 8],
}

impl Drop for CryptoInfo {
    // Once the kernel holds the key, no userspace copy should outlive it.
    fn drop(&mut self) {
        self.key.zeroize();
        self.iv.zeroize();
        self.salt.zeroize();
    }
}

impl std::fmt::Debug for CryptoInfo {
    // Keys must never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoInfo")
            .field("version", &self.version)
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl CryptoInfo {
    /// Builds the structure for `version` from one direction's secrets and
    /// the sequence number of the next record in that direction.
    pub fn new(
        version: ProtocolVersion,
        secrets: &ConnectionTrafficSecrets,
        seq: u64,
    ) -> Result<Self> {
        let version = match version {
            ProtocolVersion::TLSv1_2 => libc::TLS_1_2_VERSION,
            ProtocolVersion::TLSv1_3 => libc::TLS_1_3_VERSION,
            other => return Err(Error::Unavailable(format!("{other:?} cannot be offloaded"))),
        };
        let (cipher, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (KernelCipher::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (KernelCipher::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (KernelCipher::Chacha20Poly1305, key, iv)
            }
            _ => return Err(Error::Unavailable("cipher suite has no kernel AEAD".into())),
        };
        Ok(Self::from_parts(
            version,
            cipher,
            key.as_ref(),
            iv.as_ref(),
            seq,
        ))
    }

    /// `iv` is TLS's 12-byte IV; the kernel wants it split for GCM.
    fn from_parts(version: u16, cipher: KernelCipher, key: &[u8], iv: &[u8], seq: u64) -> Self {
        let (salt, iv) = iv.split_at(cipher.salt_len());
        debug_assert_eq!(key.len(), cipher.key_len());
        Self {
            version,
            cipher,
            iv: iv.to_vec(),
            key: key.to_vec(),
            salt: salt.to_vec(),
            rec_seq: seq.to_be_bytes(),
        }
    }

    /// The AEAD this structure configures.
    pub fn cipher(&self) -> KernelCipher {
        self.cipher
    }

    /// Size of the kernel structure for this cipher.
    pub fn size(&self) -> usize {
        4 + self.iv.len() + self.key.len() + self.salt.len() + self.rec_seq.len()
    }

    /// The exact bytes `setsockopt(SOL_TLS, TLS_TX/TLS_RX)` takes.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        // Never grows (56 is the largest structure), so no stale copy is left behind.
        let mut out = Zeroizing::new(Vec::with_capacity(56));
        out.extend_from_slice(&self.version.to_ne_bytes());
        out.extend_from_slice(&self.cipher.kernel_id().to_ne_bytes());
        out.extend_from_slice(&self.iv);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.rec_seq);
        out
    }

    /// Whether a structure read back from the kernel names the same
    /// version, cipher and key. The IV and sequence read back are the
    /// kernel's current ones, so they are not compared.
    pub fn matches_read_back(&self, read_back: &[u8]) -> bool {
        let expected = self.to_bytes();
        let key_at = 4 + self.iv.len();
        read_back.len() == expected.len()
            && read_back[..4] == expected[..4]
            && read_back[key_at..key_at + self.key.len()]
                == expected[key_at..key_at + self.key.len()]
    }

    /// A structure with a fixed, known key: for the capability probe and the
    /// kernel smoke test, never for a real connection.
    pub fn fixed_for_probe(cipher: KernelCipher, fill: u8) -> Self {
        Self {
            version: libc::TLS_1_3_VERSION,
            cipher,
            iv: vec![fill; 12 - cipher.salt_len()],
            key: vec![fill; cipher.key_len()],
            salt: vec![fill; cipher.salt_len()],
            rec_seq: [0; 8],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::cipher::{AeadKey, Iv};

    fn iv() -> Iv {
        Iv::new([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    }

    #[test]
    fn aes128_gcm_splits_salt_from_iv_in_kernel_order() {
        let info = CryptoInfo::from_parts(
            libc::TLS_1_3_VERSION,
            KernelCipher::Aes128Gcm,
            &[0xaa; 16],
            iv().as_ref(),
            0x0102,
        );
        let mut expected = vec![0x04, 0x03, 51, 0];
        expected.extend_from_slice(&[5, 6, 7, 8, 9, 10, 11, 12]);
        expected.extend_from_slice(&[0xaa; 16]);
        expected.extend_from_slice(&[1, 2, 3, 4]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(*info.to_bytes(), expected);
        assert_eq!(info.to_bytes().len(), 40);
    }

    #[test]
    fn aes256_gcm_is_56_bytes() {
        let secrets = ConnectionTrafficSecrets::Aes256Gcm {
            key: AeadKey::from([7; 32]),
            iv: iv(),
        };
        let info = CryptoInfo::new(ProtocolVersion::TLSv1_2, &secrets, 1).unwrap();
        let bytes = info.to_bytes();
        assert_eq!(bytes.len(), 56);
        assert_eq!(&bytes[..4], &[0x03, 0x03, 52, 0]);
        assert_eq!(&bytes[44..48], &[1, 2, 3, 4]);
    }

    #[test]
    fn chacha_keeps_the_whole_iv_and_no_salt() {
        let secrets = ConnectionTrafficSecrets::Chacha20Poly1305 {
            key: AeadKey::from([9; 32]),
            iv: iv(),
        };
        let info = CryptoInfo::new(ProtocolVersion::TLSv1_3, &secrets, 0).unwrap();
        let bytes = info.to_bytes();
        assert_eq!(bytes.len(), 56);
        assert_eq!(&bytes[..4], &[0x04, 0x03, 54, 0]);
        assert_eq!(&bytes[4..16], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn read_back_ignores_iv_and_sequence_but_not_key() {
        let info = CryptoInfo::fixed_for_probe(KernelCipher::Aes128Gcm, 3);
        let mut read_back = info.to_bytes();
        read_back[39] = 9; // sequence advanced
        assert!(info.matches_read_back(&read_back));
        read_back[12] ^= 1; // key differs
        assert!(!info.matches_read_back(&read_back));
    }
}
