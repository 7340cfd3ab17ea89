//! What this kernel can offload, probed once per process on throwaway
//! loopback sockets with fixed keys.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::OnceLock;

use crate::crypto_info::{CryptoInfo, KernelCipher};
use crate::sys::{self, Direction};

/// The result of the capability probe.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// `uname -r`.
    pub kernel: String,
    /// `TCP_ULP "tls"` can be attached.
    pub ulp: bool,
    /// Why offload is impossible, when `ulp` is false.
    pub reason: Option<String>,
    /// Per AEAD: both TX and RX accepted it and read back the same key.
    pub ciphers: Vec<(KernelCipher, bool)>,
    /// TLS 1.3 key update can be installed on a live socket (Linux 6.14+).
    pub rekey: bool,
    /// `TLS_RX_EXPECT_NO_PAD` is known to this kernel (Linux 6.0+).
    pub rx_expect_no_pad: bool,
    /// `TLS_TX_ZEROCOPY_RO` is known to this kernel (Linux 5.19+).
    pub tx_zero_copy: bool,
    /// `TLS_TX_MAX_PAYLOAD_LEN` caps the records this kernel sends (Linux 6.19+).
    pub tx_max_payload: bool,
}

impl Capabilities {
    /// Whether the kernel accepts this AEAD in both directions.
    pub fn supports(&self, cipher: KernelCipher) -> bool {
        self.ciphers.iter().any(|&(c, ok)| c == cipher && ok)
    }
}

/// The cached probe of the running kernel.
pub fn capabilities() -> &'static Capabilities {
    static CACHE: OnceLock<Capabilities> = OnceLock::new();
    CACHE.get_or_init(probe)
}

fn probe() -> Capabilities {
    let kernel = sys::kernel_release();
    let mut caps = Capabilities {
        kernel,
        ulp: false,
        reason: None,
        ciphers: KernelCipher::ALL.iter().map(|&c| (c, false)).collect(),
        rekey: false,
        rx_expect_no_pad: false,
        tx_zero_copy: false,
        tx_max_payload: false,
    };
    if let Err(why) = probe_ulp() {
        caps.reason = Some(why);
        return caps;
    }
    caps.ulp = true;
    for entry in caps.ciphers.iter_mut() {
        entry.1 = probe_cipher(entry.0).is_ok();
    }
    if let Some(&(cipher, _)) = caps.ciphers.iter().find(|(_, ok)| *ok) {
        caps.rekey = probe_rekey(cipher).unwrap_or(false);
        caps.rx_expect_no_pad = probe_no_pad(cipher).unwrap_or(false);
        caps.tx_zero_copy = probe_zero_copy(cipher).unwrap_or(false);
        caps.tx_max_payload = probe_max_payload(cipher).unwrap_or(false);
    }
    caps
}

fn loopback_pair() -> std::io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

fn probe_ulp() -> Result<(), String> {
    let (client, _server) = loopback_pair().map_err(|e| format!("loopback socket: {e}"))?;
    match sys::attach_tls_ulp(client.as_fd()) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(
            "this kernel has no `tls` module loaded (TCP_ULP failed with ENOENT); \
             try `modprobe tls`, or a kernel built with CONFIG_TLS"
                .into(),
        ),
        Err(e) => Err(format!("TCP_ULP \"tls\" failed: {e}")),
    }
}

fn probe_cipher(cipher: KernelCipher) -> std::io::Result<()> {
    let (client, _server) = loopback_pair()?;
    offload_with_fixed_key(client.as_fd(), cipher, 0x5a).map(drop)
}

/// Attaches the ULP and installs both directions with a fixed, known key,
/// checking every read-back. Returns the ULP name read back. For the probe
/// and the kernel smoke test only: such a socket is not secret.
pub fn offload_with_fixed_key(
    fd: BorrowedFd<'_>,
    cipher: KernelCipher,
    fill: u8,
) -> std::io::Result<String> {
    sys::attach_tls_ulp(fd)?;
    let info = CryptoInfo::fixed_for_probe(cipher, fill);
    for dir in [Direction::Tx, Direction::Rx] {
        sys::set_crypto_info(fd, dir, &info)?;
        if !info.matches_read_back(&sys::read_crypto_info(fd, dir, info.size())?) {
            return Err(std::io::Error::other(format!("{dir:?} read-back differs")));
        }
    }
    sys::read_ulp(fd)
}

/// Installing TX keys a second time is what a TLS 1.3 key update needs;
/// kernels before 6.14 refuse it.
fn probe_rekey(cipher: KernelCipher) -> std::io::Result<bool> {
    let (client, _server) = loopback_pair()?;
    let fd = client.as_fd();
    sys::attach_tls_ulp(fd)?;
    sys::set_crypto_info(fd, Direction::Tx, &CryptoInfo::fixed_for_probe(cipher, 1))?;
    let second = CryptoInfo::fixed_for_probe(cipher, 2);
    Ok(sys::set_crypto_info(fd, Direction::Tx, &second).is_ok()
        && second.matches_read_back(&sys::read_crypto_info(fd, Direction::Tx, second.size())?))
}

/// `TLS_RX_EXPECT_NO_PAD` is used only where it keeps padded records
/// intact: Linux 6.1 hands the application the raw inner bytes of some
/// padded records instead of their content. So a live check: a TLS 1.3
/// peer sends an empty padded record and a padded "ping"; the option stays
/// off unless exactly "ping" comes out. A kTLS sender cannot pad, but a
/// record of type 0 whose content ends in `0x17` and zeros decrypts as
/// exactly such a padded application data record.
fn probe_no_pad(cipher: KernelCipher) -> std::io::Result<bool> {
    const PADDING: [u8; 30] = [0; 30];
    let (sender, receiver) = loopback_pair()?;
    sys::attach_tls_ulp(sender.as_fd())?;
    sys::set_crypto_info(
        sender.as_fd(),
        Direction::Tx,
        &CryptoInfo::fixed_for_probe(cipher, 3),
    )?;
    sys::attach_tls_ulp(receiver.as_fd())?;
    sys::set_crypto_info(
        receiver.as_fd(),
        Direction::Rx,
        &CryptoInfo::fixed_for_probe(cipher, 3),
    )?;
    if sys::set_rx_expect_no_pad(receiver.as_fd()).is_err() {
        return Ok(false);
    }
    let padded = |content: &[u8]| [content, &[sys::CONTENT_APPLICATION_DATA], &PADDING].concat();
    sys::send_record(sender.as_fd(), 0, &padded(b""))?;
    sys::send_record(sender.as_fd(), 0, &padded(b"ping"))?;
    receiver.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    let mut buf = [0u8; 64];
    let n = (&receiver).read(&mut buf)?;
    Ok(&buf[..n] == b"ping")
}

fn probe_max_payload(cipher: KernelCipher) -> std::io::Result<bool> {
    let (client, _server) = loopback_pair()?;
    let fd = client.as_fd();
    sys::attach_tls_ulp(fd)?;
    sys::set_crypto_info(fd, Direction::Tx, &CryptoInfo::fixed_for_probe(cipher, 5))?;
    Ok(sys::set_tx_max_payload(fd, 1024).is_ok())
}

fn probe_zero_copy(cipher: KernelCipher) -> std::io::Result<bool> {
    let (client, _server) = loopback_pair()?;
    let fd = client.as_fd();
    sys::attach_tls_ulp(fd)?;
    sys::set_crypto_info(fd, Direction::Tx, &CryptoInfo::fixed_for_probe(cipher, 4))?;
    Ok(crate::sendfile::set_zero_copy(fd).is_ok())
}
