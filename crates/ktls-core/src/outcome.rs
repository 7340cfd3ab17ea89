//! The vocabulary of non-blocking I/O results, shared by the handshake, the
//! userspace record path and the kernel's control records, and the one
//! funnel that turns `EAGAIN` into "not now".

use std::io;

/// Progress of the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Call again when the socket is readable.
    WantRead,
    /// Call again when the socket is writable.
    WantWrite,
    /// Handshake finished; `info()` and `offload()` are final.
    Done,
    /// A server built to choose its configuration has the ClientHello:
    /// call `accept_with` (then `handshake` again).
    ClientHello,
}

/// Result of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes of application data were written to the buffer.
    Data(usize),
    /// Nothing to read now; wait for readability.
    WouldBlock,
    /// The peer finished sending (close_notify or FIN).
    Eof,
}

/// Result of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// This many plaintext bytes were taken.
    Written(usize),
    /// Nothing taken; wait for writability.
    WouldBlock,
}

/// What one record read by [`crate::Session::control_record`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlOutcome {
    /// A control record was read and acted on (a ticket stored, keys
    /// updated, a warning alert ignored): application data may follow.
    Handled,
    /// A handshake message continues in the next record: until it is
    /// whole, records must be read here (`Session::read`), not by the host,
    /// so that data slipped between its fragments is refused.
    Fragment,
    /// The peer sent close_notify, or the TCP stream ended.
    Eof,
    /// The next record was application data after all; this many bytes of
    /// it are in the buffer, to be delivered before anything else.
    Data(usize),
    /// Nothing is waiting.
    WouldBlock,
}

/// The one place `EAGAIN` is recognised: `Ok(None)` means "not now".
pub(crate) fn nonblocking<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn would_block_is_not_now() {
        let eagain = io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(nonblocking::<usize>(Err(eagain)).unwrap(), None);
        assert_eq!(nonblocking(Ok(3)).unwrap(), Some(3));
    }

    #[test]
    fn other_errors_pass_through() {
        let epipe = io::Error::from_raw_os_error(libc::EPIPE);
        let err = nonblocking::<usize>(Err(epipe)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    }
}
