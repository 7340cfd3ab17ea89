//! Record I/O after offload. The kernel hands non-data records to
//! `recvmsg` with their content type; `control.rs` judges them and this
//! module acts: session tickets go to rustls, key updates rekey the kernel
//! (Linux 6.14+) or fail the connection with a clear error.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustls::AlertDescription;

use crate::conn::Kernel;
use crate::control::{
    ControlParser, PostHandshake, Step, ALERT_CLOSE_NOTIFY, HANDSHAKE_KEY_UPDATE,
};
use crate::crypto_info::{CryptoInfo, KernelCipher};
use crate::error::{Error, Result};
use crate::offload::install_direction;
use crate::outcome::{nonblocking, ControlOutcome, ReadOutcome};
use crate::sys::{self, Direction, CONTENT_ALERT, CONTENT_HANDSHAKE};

/// More KeyUpdates than this from a peer within one second end the connection.
pub(crate) const MAX_PEER_KEY_UPDATES_PER_SECOND: u32 = 32;

/// The kernel-side state of an offloaded connection.
#[derive(Debug)]
pub(crate) struct ControlRecords {
    kernel: Kernel,
    /// The record rules, handshake messages split across records included.
    parser: ControlParser,
    /// Our KeyUpdate is still to send, with its `request_update` byte (the
    /// peer asked us to update, or the application did).
    tx_update_due: Option<u8>,
    /// Peer KeyUpdates in the current one-second window.
    peer_updates: (Instant, u32),
    cipher: KernelCipher,
}

impl ControlRecords {
    pub(crate) fn new(kernel: Kernel, cipher: KernelCipher) -> Self {
        Self {
            kernel,
            parser: ControlParser::default(),
            tx_update_due: None,
            peer_updates: (Instant::now(), 0),
            cipher,
        }
    }

    /// Reads application data, acting on any control records on the way.
    pub(crate) fn read(&mut self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<ReadOutcome> {
        loop {
            match self.next_record(fd, buf)? {
                ControlOutcome::Handled | ControlOutcome::Fragment => {}
                ControlOutcome::Data(n) => return Ok(ReadOutcome::Data(n)),
                ControlOutcome::Eof => return Ok(ReadOutcome::Eof),
                ControlOutcome::WouldBlock => return Ok(ReadOutcome::WouldBlock),
            }
        }
    }

    /// Reads one record (application data stops at the next record of
    /// another type) and acts on it if it is a control record.
    pub(crate) fn next_record(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
    ) -> Result<ControlOutcome> {
        let (n, content_type) = match nonblocking(sys::recv_record(fd, buf)) {
            Ok(Some(received)) => received,
            Ok(None) => return Ok(ControlOutcome::WouldBlock),
            Err(e)
                if e.raw_os_error() == Some(libc::EKEYEXPIRED)
                    && self.parser.key_update_split() =>
            {
                // The kernel stopped at the first fragment of a KeyUpdate,
                // expecting new keys; the rest of the message still comes
                // under the current key, so put that key back and read on.
                self.reinstall_rx(fd)?;
                return Ok(ControlOutcome::Fragment);
            }
            Err(e) => return Err(read_error(e)),
        };
        match self.parser.record(content_type, &buf[..n])? {
            Step::Eof => Ok(ControlOutcome::Eof),
            Step::Data(n) => Ok(ControlOutcome::Data(n)),
            Step::Handled => Ok(ControlOutcome::Handled),
            Step::Handshake {
                messages,
                fragment_pending,
            } => {
                for message in messages {
                    match message {
                        PostHandshake::Ticket(body) => self.kernel.new_session_ticket(&body)?,
                        PostHandshake::KeyUpdate { update_requested } => {
                            self.key_update(fd, update_requested)?
                        }
                    }
                }
                // The rest of a split message must be read here, before the host reads data.
                Ok(if fragment_pending {
                    ControlOutcome::Fragment
                } else {
                    ControlOutcome::Handled
                })
            }
        }
    }

    /// Installs the receive key the kernel holds again, at its current
    /// sequence number (what `getsockopt` reads back).
    fn reinstall_rx(&mut self, fd: BorrowedFd<'_>) -> Result<()> {
        let mut current = sys::read_crypto_info(fd, Direction::Rx, self.cipher.crypto_info_size())?;
        let result = sys::set_crypto_info_bytes(fd, Direction::Rx, &current);
        current.fill(0); // it holds the key
        result.map_err(|_| Error::KeyUpdateUnsupported)
    }

    /// RFC 8446 §4.6.3: install the peer's next key; if it asked, answer with
    /// our own KeyUpdate and move to our next key.
    fn key_update(&mut self, fd: BorrowedFd<'_>, request_update: bool) -> Result<()> {
        self.count_peer_update()?;
        let (seq, secrets) = self.kernel.update_rx()?;
        let info = CryptoInfo::new(self.kernel.version(), &secrets, seq)?;
        let installed = install_direction(fd, Direction::Rx, &info);
        drop((info, secrets));
        crate::offload::scrub_stack();
        installed.map_err(|_| Error::KeyUpdateUnsupported)?;
        if request_update {
            // Our answer must not ask again (RFC 8446 §4.6.3).
            self.tx_update_due.get_or_insert(0);
            self.flush(fd)?;
        }
        Ok(())
    }

    /// Each KeyUpdate costs a key derivation and two kernel calls: a peer
    /// sending more than `MAX_PEER_KEY_UPDATES_PER_SECOND` is cut off.
    fn count_peer_update(&mut self) -> Result<()> {
        let (since, count) = &mut self.peer_updates;
        if since.elapsed() >= Duration::from_secs(1) {
            *since = Instant::now();
            *count = 0;
        }
        *count += 1;
        if *count > MAX_PEER_KEY_UPDATES_PER_SECOND {
            return Err(Error::violation(
                AlertDescription::UnexpectedMessage,
                "too many KeyUpdates",
            ));
        }
        Ok(())
    }

    /// The application asks for a KeyUpdate of our sending key. Refused
    /// before anything is sent where the kernel cannot install the next key:
    /// the connection then stays as it was.
    pub(crate) fn update_keys(&mut self, fd: BorrowedFd<'_>, request_peer: bool) -> Result<bool> {
        if self.kernel.version() != rustls::ProtocolVersion::TLSv1_3 {
            return Err(Error::InvalidState("KeyUpdate exists only in TLS 1.3"));
        }
        if !crate::probe::capabilities().rekey {
            return Err(Error::KeyUpdateUnsupported);
        }
        let due = self.tx_update_due.get_or_insert(0);
        *due |= u8::from(request_peer);
        self.flush(fd)
    }

    /// Records sealed under the current sending key (the kernel's sequence number).
    pub(crate) fn tx_records(&self, fd: BorrowedFd<'_>) -> Result<u64> {
        let mut info = sys::read_crypto_info(fd, Direction::Tx, self.cipher.crypto_info_size())?;
        let seq = info
            .get(info.len().saturating_sub(8)..)
            .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
            .map(u64::from_be_bytes);
        info.fill(0); // it holds the key
        seq.ok_or_else(|| Error::OffloadFailed("TLS_TX read-back too short".into()))
    }

    /// Sends a due KeyUpdate and installs our next key. Returns false when
    /// the socket could not take the record yet.
    pub(crate) fn flush(&mut self, fd: BorrowedFd<'_>) -> Result<bool> {
        let Some(request_update) = self.tx_update_due else {
            return Ok(true);
        };
        let key_update = [HANDSHAKE_KEY_UPDATE, 0, 0, 1, request_update];
        if nonblocking(sys::send_record(fd, CONTENT_HANDSHAKE, &key_update))?.is_none() {
            return Ok(false);
        }
        let (seq, secrets) = self.kernel.update_tx()?;
        let info = CryptoInfo::new(self.kernel.version(), &secrets, seq)?;
        let installed = install_direction(fd, Direction::Tx, &info);
        drop((info, secrets));
        crate::offload::scrub_stack();
        installed.map_err(|_| Error::KeyUpdateUnsupported)?;
        self.tx_update_due = None;
        Ok(true)
    }

    /// close_notify as a kernel-encrypted alert record.
    pub(crate) fn send_close_notify(&mut self, fd: BorrowedFd<'_>) -> Result<bool> {
        Ok(nonblocking(sys::send_record(
            fd,
            CONTENT_ALERT,
            &[1, ALERT_CLOSE_NOTIFY],
        ))?
        .is_some())
    }
}

pub(crate) fn read_error(err: io::Error) -> Error {
    match err.raw_os_error() {
        Some(libc::EBADMSG) => Error::BadRecord,
        Some(libc::EKEYEXPIRED) => Error::KeyUpdateUnsupported,
        Some(libc::EMSGSIZE) => {
            Error::violation(AlertDescription::RecordOverflow, "a record too large")
        }
        _ => err.into(),
    }
}

/// The alert record for a fatal error, sent through the kernel.
pub(crate) fn send_fatal_alert(fd: BorrowedFd<'_>, alert: AlertDescription) {
    const FATAL: u8 = 2;
    // A record that failed to decrypt left its error on the socket, which
    // would refuse this send.
    sys::take_socket_error(fd);
    let _ = sys::send_record(fd, CONTENT_ALERT, &[FATAL, u8::from(alert)]);
}
