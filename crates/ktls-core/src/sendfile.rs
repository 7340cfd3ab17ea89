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
use std::time::{Duration, Instant};

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
const WAIT_SLICE: Duration = Duration::from_millis(100);

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

    /// Sends up to `length` bytes of the file from `offset`, blocking this
    /// thread while the send buffer is full, but for no more than `patience`
    /// in all: a peer that stops reading must not hold a worker thread (the
    /// host's threadpool also serves its file system calls). `bytes` below
    /// `length` means the file ended first (it was truncated), unless
    /// `blocked` says the patience ran out. Fails with the socket's error
    /// (`EPIPE`, `ECONNRESET`), or `ECANCELED` after [`cancel`](Self::cancel).
    pub fn send(&self, offset: u64, length: u64, patience: Duration) -> Result<Sent> {
        let start = i64::try_from(offset).map_err(|_| out_of_range(offset))?;
        let mut position = start;
        let mut sent = Sent::default();
        let mut waited = Duration::ZERO;
        while sent.bytes < length {
            if self.cancelled.load(Ordering::Acquire) {
                return Err(Errno::ECANCELED.into());
            }
            let chunk = (length - sent.bytes).min(MAX_PER_CALL) as usize;
            match sendfile64(&self.socket, &self.file, Some(&mut position), chunk) {
                Ok(0) => break,
                Ok(_) => sent.bytes = position.abs_diff(start),
                Err(Errno::EAGAIN) if waited >= patience => {
                    sent.blocked = true;
                    break;
                }
                Err(Errno::EAGAIN) => waited += self.wait_writable(patience - waited)?,
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

    /// Waits (at most `limit`, in cancellable slices) for room in the send
    /// buffer, or for an error the next sendfile(2) will report; returns how
    /// long it waited.
    fn wait_writable(&self, limit: Duration) -> Result<Duration> {
        let began = Instant::now();
        let slice = limit.min(WAIT_SLICE);
        let millis = u16::try_from(slice.as_millis()).unwrap_or(u16::MAX).max(1);
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLOUT)];
        match nix::poll::poll(&mut fds, PollTimeout::from(millis)) {
            Ok(_) | Err(Errno::EINTR) => Ok(began.elapsed()),
            Err(err) => Err(err.into()),
        }
    }
}

/// What one [`FileSend::send`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Bytes now in the socket's send buffer.
    pub bytes: u64,
    /// It stopped because the peer was not reading: try again later.
    pub blocked: bool,
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

    const PATIENT: Duration = Duration::from_secs(30);

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
        let sent = send.send(3, data.len() as u64 - 3, PATIENT).expect("send");
        assert_eq!(sent.bytes, data.len() as u64 - 3);
        assert!(!sent.blocked);
        drop(send);
        drop(server);
        assert!(reader.join().expect("reader") == data[3..]);
    }

    #[test]
    fn a_range_past_the_end_of_the_file_reports_what_was_there() {
        let file = file_of(&pattern(1000));
        let (_client, server) = pair();
        let send = FileSend::new(server.as_raw_fd(), file.as_raw_fd()).expect("dup");
        let sent = send.send(900, 500, PATIENT).expect("send");
        assert_eq!((sent.bytes, sent.blocked), (100, false));
    }

    #[test]
    fn a_peer_that_left_fails_the_send_with_its_errno() {
        let file = file_of(&pattern(4 << 20));
        let (client, server) = pair();
        drop(client);
        let send = FileSend::new(server.as_raw_fd(), file.as_raw_fd()).expect("dup");
        let err = send.send(0, 4 << 20, PATIENT).expect_err("peer gone");
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
            std::thread::sleep(Duration::from_millis(50));
            canceller.cancel();
        });
        let err = send.send(0, 16 << 20, PATIENT).expect_err("cancelled");
        assert_eq!(err.code(), "ECANCELED");
    }

    #[test]
    fn a_peer_that_does_not_read_gets_only_the_patience() {
        let file = file_of(&pattern(64 << 20));
        let (_client, server) = pair();
        let send = FileSend::new(server.as_raw_fd(), file.as_raw_fd()).expect("dup");
        let began = Instant::now();
        let sent = send
            .send(0, 64 << 20, Duration::from_millis(150))
            .expect("send");
        assert!(sent.blocked);
        assert!(sent.bytes > 0 && sent.bytes < 64 << 20, "{sent:?}");
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{:?}",
            began.elapsed()
        );
    }
}
