//! Record I/O after offload. The kernel hands non-data records to
//! `recvmsg` with their content type; this module acts on them: alerts end
//! or fail the stream, session tickets go to rustls, key updates rekey the
//! kernel (Linux 6.14+) or fail the connection with a clear error.

use std::io;
use std::os::fd::BorrowedFd;

use crate::conn::Kernel;
use crate::crypto_info::CryptoInfo;
use crate::error::{Error, Result};
use crate::offload::install_direction;
use crate::outcome::{nonblocking, ControlOutcome, ReadOutcome};
use crate::sys::{self, Direction, CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE};

const HANDSHAKE_NEW_SESSION_TICKET: u8 = 4;
const HANDSHAKE_KEY_UPDATE: u8 = 24;
const ALERT_CLOSE_NOTIFY: u8 = 0;
const ALERT_USER_CANCELED: u8 = 90;

/// The kernel-side state of an offloaded connection.
#[derive(Debug)]
pub(crate) struct ControlRecords {
    kernel: Kernel,
    /// Handshake bytes of a message split across records.
    partial_message: Vec<u8>,
    /// The peer asked us to update our keys; our KeyUpdate is still to send.
    tx_update_due: bool,
}

impl ControlRecords {
    pub(crate) fn new(kernel: Kernel) -> Self {
        Self {
            kernel,
            partial_message: Vec::new(),
            tx_update_due: false,
        }
    }

    /// Reads application data, acting on any control records on the way.
    pub(crate) fn read(&mut self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<ReadOutcome> {
        loop {
            match self.next_record(fd, buf)? {
                ControlOutcome::Handled => {}
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
        let Some((n, content_type)) = nonblocking(sys::recv_record(fd, buf)).map_err(read_error)?
        else {
            return Ok(ControlOutcome::WouldBlock);
        };
        match content_type {
            _ if n == 0 => Ok(ControlOutcome::Eof),
            CONTENT_APPLICATION_DATA => Ok(ControlOutcome::Data(n)),
            CONTENT_ALERT if alert_ends_stream(&buf[..n])? => Ok(ControlOutcome::Eof),
            CONTENT_ALERT => Ok(ControlOutcome::Handled),
            CONTENT_HANDSHAKE => {
                self.handshake_record(fd, &buf[..n])?;
                Ok(ControlOutcome::Handled)
            }
            _ => Err(Error::BadControlRecord(
                "unexpected record type after handshake",
            )),
        }
    }

    fn handshake_record(&mut self, fd: BorrowedFd<'_>, record: &[u8]) -> Result<()> {
        self.partial_message.extend_from_slice(record);
        while let Some((msg_type, body_len)) = complete_message(&self.partial_message) {
            let message: Vec<u8> = self.partial_message.drain(..4 + body_len).collect();
            self.handshake_message(fd, msg_type, &message[4..])?;
        }
        Ok(())
    }

    fn handshake_message(&mut self, fd: BorrowedFd<'_>, msg_type: u8, body: &[u8]) -> Result<()> {
        match msg_type {
            HANDSHAKE_NEW_SESSION_TICKET => self.kernel.new_session_ticket(body),
            HANDSHAKE_KEY_UPDATE => self.key_update(fd, body),
            _ => Err(Error::BadControlRecord(
                "unexpected handshake message after handshake",
            )),
        }
    }

    /// RFC 8446 §4.6.3: install the peer's next key; if it asked, answer with
    /// our own KeyUpdate and move to our next key.
    fn key_update(&mut self, fd: BorrowedFd<'_>, body: &[u8]) -> Result<()> {
        let request_update = match body {
            [0] => false,
            [1] => true,
            _ => return Err(Error::BadControlRecord("malformed KeyUpdate")),
        };
        let (seq, secrets) = self.kernel.update_rx()?;
        let info = CryptoInfo::new(self.kernel.version(), &secrets, seq)?;
        install_direction(fd, Direction::Rx, &info).map_err(|_| Error::KeyUpdateUnsupported)?;
        if request_update {
            self.tx_update_due = true;
            self.flush(fd)?;
        }
        Ok(())
    }

    /// Sends a due KeyUpdate and installs our next key. Returns false when
    /// the socket could not take the record yet.
    pub(crate) fn flush(&mut self, fd: BorrowedFd<'_>) -> Result<bool> {
        if !self.tx_update_due {
            return Ok(true);
        }
        let key_update = [HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0];
        if nonblocking(sys::send_record(fd, CONTENT_HANDSHAKE, &key_update))?.is_none() {
            return Ok(false);
        }
        let (seq, secrets) = self.kernel.update_tx()?;
        let info = CryptoInfo::new(self.kernel.version(), &secrets, seq)?;
        install_direction(fd, Direction::Tx, &info).map_err(|_| Error::KeyUpdateUnsupported)?;
        self.tx_update_due = false;
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

fn read_error(err: io::Error) -> Error {
    match err.raw_os_error() {
        Some(libc::EBADMSG) => Error::BadRecord,
        Some(libc::EKEYEXPIRED) => Error::KeyUpdateUnsupported,
        Some(libc::EMSGSIZE) => Error::BadControlRecord("record too large"),
        _ => err.into(),
    }
}

/// True for close_notify; an error for fatal alerts; false for alerts that
/// may be ignored (user_canceled, RFC 8446 §6.1).
fn alert_ends_stream(payload: &[u8]) -> Result<bool> {
    let [_level, description] = payload else {
        return Err(Error::BadControlRecord("malformed alert"));
    };
    match *description {
        ALERT_CLOSE_NOTIFY => Ok(true),
        ALERT_USER_CANCELED => Ok(false),
        other => Err(Error::AlertReceived(rustls::AlertDescription::from(other))),
    }
}

/// The type and body length of the first message in `buf`, if whole.
fn complete_message(buf: &[u8]) -> Option<(u8, usize)> {
    let [msg_type, a, b, c, rest @ ..] = buf else {
        return None;
    };
    let len = u32::from_be_bytes([0, *a, *b, *c]) as usize;
    (rest.len() >= len).then_some((*msg_type, len))
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
        assert_eq!(complete_message(&[24, 0, 0, 1]), None);
        assert_eq!(complete_message(&[24, 0, 0, 1, 0]), Some((24, 1)));
        assert_eq!(complete_message(&[4, 0, 0, 2, 9, 9, 24]), Some((4, 2)));
    }
}
