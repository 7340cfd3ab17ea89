//! Record I/O after offload. The kernel hands non-data records to
//! `recvmsg` with their content type; this module acts on them: alerts end
//! or fail the stream, session tickets go to rustls, key updates rekey the
//! kernel (Linux 6.14+) or fail the connection with a clear error.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::conn::Kernel;
use crate::crypto_info::CryptoInfo;
use crate::crypto_info::KernelCipher;
use crate::error::{Error, Result};
use crate::offload::install_direction;
use crate::outcome::{nonblocking, ControlOutcome, ReadOutcome};
use crate::sys::{self, Direction, CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE};
use rustls::AlertDescription;

const HANDSHAKE_NEW_SESSION_TICKET: u8 = 4;
const HANDSHAKE_KEY_UPDATE: u8 = 24;
const ALERT_CLOSE_NOTIFY: u8 = 0;
const ALERT_USER_CANCELED: u8 = 90;
/// More KeyUpdates than this from a peer within one second end the connection.
pub(crate) const MAX_PEER_KEY_UPDATES_PER_SECOND: u32 = 32;

/// The kernel-side state of an offloaded connection.
#[derive(Debug)]
pub(crate) struct ControlRecords {
    kernel: Kernel,
    /// Handshake bytes of a message split across records.
    partial_message: Vec<u8>,
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
            partial_message: Vec::new(),
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
        let received = match nonblocking(sys::recv_record(fd, buf)) {
            Ok(Some(received)) => received,
            Ok(None) => return Ok(ControlOutcome::WouldBlock),
            Err(e) if e.raw_os_error() == Some(libc::EKEYEXPIRED) && self.key_update_split() => {
                // The kernel stopped at the first fragment of a KeyUpdate,
                // expecting new keys; the rest of the message still comes
                // under the current key, so put that key back and read on.
                self.reinstall_rx(fd)?;
                return Ok(ControlOutcome::Fragment);
            }
            Err(e) => return Err(read_error(e)),
        };
        let (n, content_type) = match received {
            (0, None) => return Ok(ControlOutcome::Eof),
            (n, None) => return Ok(ControlOutcome::Data(n)),
            (n, Some(content_type)) => (n, content_type),
        };
        // RFC 8446 §5.1: nothing may come between the fragments of a handshake message.
        if !self.partial_message.is_empty() && content_type != CONTENT_HANDSHAKE {
            return Err(Error::violation(
                AlertDescription::UnexpectedMessage,
                "a record inside a fragmented handshake message",
            ));
        }
        match content_type {
            CONTENT_APPLICATION_DATA if n == 0 => Ok(ControlOutcome::Handled),
            CONTENT_APPLICATION_DATA => Ok(ControlOutcome::Data(n)),
            CONTENT_ALERT if alert_ends_stream(&buf[..n])? => Ok(ControlOutcome::Eof),
            CONTENT_ALERT => Ok(ControlOutcome::Handled),
            CONTENT_HANDSHAKE if n == 0 => Err(Error::violation(
                AlertDescription::UnexpectedMessage,
                "an empty handshake record",
            )),
            CONTENT_HANDSHAKE => {
                self.handshake_record(fd, &buf[..n])?;
                Ok(self.waiting_or(ControlOutcome::Handled))
            }
            _ => Err(Error::violation(
                AlertDescription::UnexpectedMessage,
                "a record of an unknown type",
            )),
        }
    }

    /// A handshake message is incomplete: its next fragment must be read
    /// here, before the host reads any data.
    fn waiting_or(&self, otherwise: ControlOutcome) -> ControlOutcome {
        if self.partial_message.is_empty() {
            otherwise
        } else {
            ControlOutcome::Fragment
        }
    }

    fn key_update_split(&self) -> bool {
        self.partial_message.first() == Some(&HANDSHAKE_KEY_UPDATE)
    }

    /// Installs the receive key the kernel holds again, at its current
    /// sequence number (what `getsockopt` reads back).
    fn reinstall_rx(&mut self, fd: BorrowedFd<'_>) -> Result<()> {
        let mut current = sys::read_crypto_info(fd, Direction::Rx, self.cipher.crypto_info_size())?;
        let result = sys::set_crypto_info_bytes(fd, Direction::Rx, &current);
        current.fill(0); // it holds the key
        result.map_err(|_| Error::KeyUpdateUnsupported)
    }

    fn handshake_record(&mut self, fd: BorrowedFd<'_>, record: &[u8]) -> Result<()> {
        self.partial_message.extend_from_slice(record);
        while let Some((msg_type, body_len)) = complete_message(&self.partial_message)? {
            let message: Vec<u8> = self.partial_message.drain(..4 + body_len).collect();
            // RFC 8446 §5.1: a KeyUpdate ends its record (the keys change after it).
            if msg_type == HANDSHAKE_KEY_UPDATE && !self.partial_message.is_empty() {
                return Err(Error::violation(
                    AlertDescription::UnexpectedMessage,
                    "data after a KeyUpdate in the same record",
                ));
            }
            self.handshake_message(fd, msg_type, &message[4..])?;
        }
        Ok(())
    }

    fn handshake_message(&mut self, fd: BorrowedFd<'_>, msg_type: u8, body: &[u8]) -> Result<()> {
        match msg_type {
            HANDSHAKE_NEW_SESSION_TICKET => self.kernel.new_session_ticket(body),
            HANDSHAKE_KEY_UPDATE => self.key_update(fd, body),
            _ => Err(Error::violation(
                AlertDescription::UnexpectedMessage,
                "a handshake message not allowed after the handshake",
            )),
        }
    }

    /// RFC 8446 §4.6.3: install the peer's next key; if it asked, answer with
    /// our own KeyUpdate and move to our next key.
    fn key_update(&mut self, fd: BorrowedFd<'_>, body: &[u8]) -> Result<()> {
        let request_update = match body {
            [0] => false,
            [1] => true,
            _ => {
                return Err(Error::violation(
                    AlertDescription::DecodeError,
                    "a malformed KeyUpdate",
                ))
            }
        };
        self.count_peer_update()?;
        let (seq, secrets) = self.kernel.update_rx()?;
        let info = CryptoInfo::new(self.kernel.version(), &secrets, seq)?;
        install_direction(fd, Direction::Rx, &info).map_err(|_| Error::KeyUpdateUnsupported)?;
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
        install_direction(fd, Direction::Tx, &info).map_err(|_| Error::KeyUpdateUnsupported)?;
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

/// True for close_notify; an error for fatal alerts; false for alerts that
/// may be ignored (user_canceled, RFC 8446 §6.1).
fn alert_ends_stream(payload: &[u8]) -> Result<bool> {
    let [_level, description] = payload else {
        return Err(if payload.is_empty() {
            Error::violation(AlertDescription::UnexpectedMessage, "an empty alert record")
        } else {
            Error::violation(AlertDescription::DecodeError, "a malformed alert")
        });
    };
    match *description {
        ALERT_CLOSE_NOTIFY => Ok(true),
        ALERT_USER_CANCELED => Ok(false),
        other => Err(Error::AlertReceived(AlertDescription::from(other))),
    }
}

/// Larger than any post-handshake message a peer has reason to send (a
/// NewSessionTicket is at most about 128 KiB): a bound on what we buffer.
const MAX_POST_HANDSHAKE_MESSAGE: usize = 256 * 1024;

/// The type and body length of the first message in `buf`, if whole.
fn complete_message(buf: &[u8]) -> Result<Option<(u8, usize)>> {
    let [msg_type, a, b, c, rest @ ..] = buf else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([0, *a, *b, *c]) as usize;
    if len > MAX_POST_HANDSHAKE_MESSAGE {
        return Err(Error::violation(
            AlertDescription::UnexpectedMessage,
            "a post-handshake message too large",
        ));
    }
    Ok((rest.len() >= len).then_some((*msg_type, len)))
}

/// The alert record for a fatal error, sent through the kernel.
pub(crate) fn send_fatal_alert(fd: BorrowedFd<'_>, alert: AlertDescription) {
    const FATAL: u8 = 2;
    // A record that failed to decrypt left its error on the socket, which
    // would refuse this send.
    sys::take_socket_error(fd);
    let _ = sys::send_record(fd, CONTENT_ALERT, &[FATAL, u8::from(alert)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_notify_ends_the_stream() {
        assert!(alert_ends_stream(&[1, 0]).unwrap());
    }

    #[test]
    fn user_canceled_is_ignored() {
        assert!(!alert_ends_stream(&[1, 90]).unwrap());
    }

    #[test]
    fn fatal_alerts_carry_their_code() {
        let err = alert_ends_stream(&[2, 40]).unwrap_err();
        assert_eq!(err.code(), "ERR_TLS_ALERT_HANDSHAKE_FAILURE");
    }

    #[test]
    fn messages_split_across_records_wait_for_their_tail() {
        assert_eq!(complete_message(&[24, 0, 0, 1]).unwrap(), None);
        assert_eq!(complete_message(&[24, 0, 0, 1, 0]).unwrap(), Some((24, 1)));
        assert_eq!(
            complete_message(&[4, 0, 0, 2, 9, 9, 24]).unwrap(),
            Some((4, 2))
        );
    }

    #[test]
    fn empty_and_truncated_alerts_are_violations() {
        let empty = alert_ends_stream(&[]).unwrap_err();
        assert_eq!(
            empty.alert_to_send(),
            Some(AlertDescription::UnexpectedMessage)
        );
        let truncated = alert_ends_stream(&[2]).unwrap_err();
        assert_eq!(
            truncated.alert_to_send(),
            Some(AlertDescription::DecodeError)
        );
    }

    #[test]
    fn oversized_messages_are_refused_before_buffering() {
        assert!(complete_message(&[4, 0x10, 0, 0]).is_err());
    }
}
