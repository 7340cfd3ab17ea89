//! Handing a finished handshake to the kernel: attach the ULP, install both
//! directions, and read every setting back before trusting it.

use std::os::fd::BorrowedFd;

use rustls::{ExtractedSecrets, ProtocolVersion};
use zeroize::Zeroize;

use crate::crypto_info::{CryptoInfo, KernelCipher};
use crate::error::{Error, Result};
use crate::probe::capabilities;
use crate::sys::{self, Direction};

/// What the caller asked for (`ktls` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KtlsMode {
    /// Offload when the kernel can, else stay in userspace.
    #[default]
    Auto,
    /// Offload or fail the connection.
    Require,
    /// Never offload.
    Off,
}

/// Whether each direction is in the kernel, and why not.
#[derive(Debug, Clone, Default)]
pub struct OffloadStatus {
    /// Records we send are encrypted by the kernel.
    pub tx: bool,
    /// Records we receive are decrypted by the kernel.
    pub rx: bool,
    /// Why a direction is not offloaded.
    pub reason: Option<String>,
}

/// Why this connection cannot be offloaded, checked before anything is
/// attached so that the userspace path stays open.
pub(crate) fn obstacle(
    fd: BorrowedFd<'_>,
    mode: KtlsMode,
    cipher: Option<KernelCipher>,
    unread_ciphertext: usize,
) -> Option<String> {
    if mode == KtlsMode::Off {
        return Some("disabled by option ktls: 'off'".into());
    }
    let caps = capabilities();
    if !caps.ulp {
        return caps
            .reason
            .clone()
            .or_else(|| Some("kernel TLS unavailable".into()));
    }
    let Some(cipher) = cipher else {
        return Some("cipher suite has no kernel implementation".into());
    };
    if !caps.supports(cipher) {
        return Some(format!(
            "cipher {} not supported by this kernel",
            cipher.tls13_suite_name()
        ));
    }
    if !sys::is_tcp(fd) {
        return Some("not a TCP socket".into());
    }
    if unread_ciphertext > 0 {
        return Some("peer records were already read into userspace".into());
    }
    None
}

/// Attaches the ULP. Failing here leaves the socket untouched.
pub(crate) fn attach(fd: BorrowedFd<'_>) -> Result<()> {
    sys::attach_tls_ulp(fd).map_err(|e| Error::Unavailable(format!("TCP_ULP: {e}")))?;
    match sys::read_ulp(fd)?.as_str() {
        "tls" => Ok(()),
        other => Err(Error::OffloadFailed(format!(
            "TCP_ULP reads back {other:?}"
        ))),
    }
}

/// Installs both directions. Any failure means the socket is half in the
/// kernel and must be closed, never used in cleartext.
pub(crate) fn install(
    fd: BorrowedFd<'_>,
    version: ProtocolVersion,
    secrets: &ExtractedSecrets,
) -> Result<KernelCipher> {
    let tx = CryptoInfo::new(version, &secrets.tx.1, secrets.tx.0)?;
    let rx = CryptoInfo::new(version, &secrets.rx.1, secrets.rx.0)?;
    install_direction(fd, Direction::Tx, &tx)?;
    install_direction(fd, Direction::Rx, &rx)?;
    if version == ProtocolVersion::TLSv1_3 && capabilities().rx_expect_no_pad {
        // An optimisation only: the kernel falls back by itself if a peer pads.
        let _ = sys::set_rx_expect_no_pad(fd);
    }
    Ok(tx.cipher())
}

/// Overwrites the 32 KiB of stack below the caller. rustls returns the
/// traffic keys by value, and every move leaves a copy no destructor wipes;
/// called once the kernel holds them, where that call chain ran.
#[inline(never)]
pub(crate) fn scrub_stack() {
    let mut below = [0u8; 32 * 1024];
    below.zeroize();
}

/// Installs (or, after a key update, replaces) one direction's keys.
pub(crate) fn install_direction(
    fd: BorrowedFd<'_>,
    dir: Direction,
    info: &CryptoInfo,
) -> Result<()> {
    sys::set_crypto_info(fd, dir, info)
        .map_err(|e| Error::OffloadFailed(format!("{dir:?}: {e}")))?;
    let read_back = sys::read_crypto_info(fd, dir, info.size())
        .map_err(|e| Error::OffloadFailed(format!("{dir:?} read-back: {e}")))?;
    if !info.matches_read_back(&read_back) {
        return Err(Error::OffloadFailed(format!(
            "{dir:?} read-back differs from what was set"
        )));
    }
    Ok(())
}

/// Maps a negotiated suite to the kernel AEAD, if any.
pub(crate) fn kernel_cipher(suite: rustls::SupportedCipherSuite) -> Option<KernelCipher> {
    let name = suite.suite().as_str()?;
    if name.contains("AES_128_GCM") {
        Some(KernelCipher::Aes128Gcm)
    } else if name.contains("AES_256_GCM") {
        Some(KernelCipher::Aes256Gcm)
    } else if name.contains("CHACHA20_POLY1305") {
        Some(KernelCipher::Chacha20Poly1305)
    } else {
        None
    }
}
