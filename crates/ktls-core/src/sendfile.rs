//! File to socket with sendfile(2): the page cache goes to the kernel's TLS
//! layer (or plain TCP) without a copy through userspace.
//!
//! The socket belongs to libuv, which keeps it non-blocking and in its own
//! epoll set. A send therefore runs on a worker thread, over private
//! duplicates of both descriptors (libuv closing its own cannot let the
//! number be reused under us), and waits out `EAGAIN` in poll(2) on that one
//! descriptor, never in another epoll set.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::sendfile::sendfile64;
use nix::sys::socket::{getsockopt, setsockopt};
use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};

use crate::error::{Error, Result};
use crate::sys;

sockopt_impl!(
    /// `TLS_TX_ZEROCOPY_RO` (Linux 5.19+): the kernel may send file pages
    /// without copying them, trusting that they do not change in flight.
    TlsTxZeroCopyRo,
    Both,
    libc::SOL_TLS,
    libc::TLS_TX_ZEROCOPY_RO,
    bool
);

/// How long one wait for room in the send buffer lasts before the
/// cancellation flag is looked at again.
const WAIT_SLICE_MS: u8 = 100;

/// sendfile(2) moves at most this much per call (Linux's `MAX_RW_COUNT`).
const MAX_PER_CALL: u64 = 0x7fff_f000;

/// One file sent on one socket, possibly in several ranges.
#[derive(Debug)]
pub struct FileSend {
    socket: OwnedFd,
    file: OwnedFd,
    cancelled: AtomicBool,
}

impl FileSend {
    /// Takes private duplicates of a socket and a file owned by someone else
    /// (libuv, a FileHandle); both must be open for this call.
    pub fn new(socket_fd: RawFd, file_fd: RawFd) -> Result<Self> {
        Ok(Self {
            socket: sys::dup_foreign_fd(socket_fd)?,
            file: sys::dup_foreign_fd(file_fd)?,
            cancelled: AtomicBool::new(false),
        })
    }

    /// Sends `length` bytes of the file from `offset`, blocking this thread
    /// until they are in the socket's send buffer. Returns how many were
    /// sent: fewer than `length` only when the file ended first (it was
    /// truncated). Fails with the socket's error (`EPIPE`, `ECONNRESET`), or
    /// `ECANCELED` after [`cancel`](Self::cancel).
    pub fn send(&self, offset: u64, length: u64) -> Result<u64> {
        let start = i64::try_from(offset).map_err(|_| out_of_range(offset))?;
        let mut position = start;
        let mut sent = 0;
        while sent < length {
            if self.cancelled.load(Ordering::Acquire) {
                return Err(Errno::ECANCELED.into());
            }
            let chunk = (length - sent).min(MAX_PER_CALL) as usize;
            match sendfile64(&self.socket, &self.file, Some(&mut position), chunk) {
                Ok(0) => break,
                Ok(_) => sent = position.abs_diff(start),
                Err(Errno::EAGAIN) => self.wait_writable()?,
                Err(Errno::EINTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(sent)
    }

    /// Makes a running or later [`send`](Self::send) stop at its next step.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Opts this socket into `TLS_TX_ZEROCOPY_RO`, checked by reading it back.
    pub fn set_zero_copy(&self) -> Result<()> {
        set_zero_copy(self.socket.as_fd())
    }

    /// Waits for room in the send buffer, or for an error the next
    /// sendfile(2) will report.
    fn wait_writable(&self) -> Result<()> {
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLOUT)];
        match nix::poll::poll(&mut fds, PollTimeout::from(WAIT_SLICE_MS)) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

/// Sets `TLS_TX_ZEROCOPY_RO` on a socket whose `tls` ULP is attached.
pub(crate) fn set_zero_copy(fd: BorrowedFd<'_>) -> Result<()> {
    setsockopt(&fd, TlsTxZeroCopyRo, &true)?;
    if !getsockopt(&fd, TlsTxZeroCopyRo)? {
        return Err(Error::OffloadFailed(
            "TLS_TX_ZEROCOPY_RO read back as off".into(),
        ));
    }
    Ok(())
}

fn out_of_range(offset: u64) -> Error {
    Error::InvalidArgument(format!("file offset {offset} is past 2^63"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server
            .set_nonblocking(true)
            .expect("non-blocking, as libuv's");
        (client, server)
    }

    fn file_of(bytes: &[u8]) -> std::fs::File {
        let path = std::env::temp_dir().join(format!(
            "ktls-sendfile-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        let mut file = std::fs::File::create(&path).expect("create");
        file.write_all(bytes).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        std::fs::remove_file(&path).expect("unlink");
        file
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn a_range_bigger_than_the_send_buffer_arrives_whole_through_eagain() {
        let data = pattern(8 << 20);
        let file = file_of(&data);
        let (mut client, server) = pair();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client.read_to_end(&mut got).expect("read");
            got
        });
        let send = FileSend::new(server.as_raw_fd(), file.as_raw_fd()).expect("dup");
        assert_eq!(
            send.send(3, data.len() as u64 - 3).expect("send"),
            data.len() as u64 - 3
        );
        drop(send);
        drop(server);
        assert!(reader.join().expect("reader") == data[3..]);
    }

    #[test]
    fn a_range_past_the_end_of_the_file_reports_what_was_there() {
        let file = file_of(&pattern(1000));
        let (_client, server) = pair();
        let send = FileSend::new(server.as_raw_fd(), file.as_raw_fd()).expect("dup");
        assert_eq!(send.send(900, 500).expect("send"), 100);
    }

    #[test]
    fn a_peer_that_left_fails_the_send_with_its_errno() {
        let file = file_of(&pattern(4 << 20));
        let (client, server) = pair();
        drop(client);
        let send = FileSend::new(server.as_raw_fd(), file.as_raw_fd()).expect("dup");
        let err = send.send(0, 4 << 20).expect_err("peer gone");
        assert!(
            matches!(err.code().as_str(), "EPIPE" | "ECONNRESET"),
            "{err}"
        );
    }

    #[test]
    fn a_cancelled_send_stops_while_the_peer_does_not_read() {
        let file = file_of(&pattern(16 << 20));
        let (_client, server) = pair();
        let send =
            std::sync::Arc::new(FileSend::new(server.as_raw_fd(), file.as_raw_fd()).expect("dup"));
        let canceller = std::sync::Arc::clone(&send);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            canceller.cancel();
        });
        let err = send.send(0, 16 << 20).expect_err("cancelled");
        assert_eq!(err.code(), "ECANCELED");
    }
}
