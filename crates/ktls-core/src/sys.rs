//! Every syscall the crate makes, and the crate's only `unsafe`. Each
//! function is a thin wrapper; policy lives in the callers.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{self, sockopt, MsgFlags, Shutdown};

use zeroize::Zeroizing;

use crate::crypto_info::CryptoInfo;

/// One direction of a kernel TLS socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `TLS_TX`: records we send.
    Tx,
    /// `TLS_RX`: records we receive.
    Rx,
}

impl Direction {
    fn optname(self) -> libc::c_int {
        match self {
            Self::Tx => libc::TLS_TX,
            Self::Rx => libc::TLS_RX,
        }
    }
}

/// TLS record content types (RFC 8446 §5.1).
pub const CONTENT_ALERT: u8 = 21;
/// Handshake records: tickets and key updates after the handshake.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Application data.
pub const CONTENT_APPLICATION_DATA: u8 = 23;

/// Takes a private duplicate of a descriptor owned by someone else (libuv),
/// so that their close does not close ours.
pub fn dup_foreign_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the caller passes a descriptor that is open for the duration of
    // this call (libuv's handle is still alive); we only borrow it to dup.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let dup = nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(0))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// Attaches the `tls` upper-layer protocol (`TCP_ULP`).
pub fn attach_tls_ulp(fd: BorrowedFd<'_>) -> io::Result<()> {
    socket::setsockopt(&fd, sockopt::TcpUlp::default(), b"tls")?;
    Ok(())
}

/// Reads `TCP_ULP` back; empty when no ULP is attached.
pub fn read_ulp(fd: BorrowedFd<'_>) -> io::Result<String> {
    let mut buf = [0u8; 16];
    let len = getsockopt_bytes(fd, libc::IPPROTO_TCP, libc::TCP_ULP, &mut buf)?;
    let name = &buf[..len];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

/// Hands one direction's keys to the kernel (from a buffer wiped after).
pub fn set_crypto_info(fd: BorrowedFd<'_>, dir: Direction, info: &CryptoInfo) -> io::Result<()> {
    set_crypto_info_bytes(fd, dir, &info.to_bytes())
}

/// Hands one direction a crypto_info exactly as the kernel read it back
/// (to install the current key again at its current sequence number).
pub fn set_crypto_info_bytes(fd: BorrowedFd<'_>, dir: Direction, info: &[u8]) -> io::Result<()> {
    // SAFETY: `info` is readable for its length, which is passed alongside.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TLS,
            dir.optname(),
            info.as_ptr().cast(),
            info.len() as libc::socklen_t,
        )
    };
    check(rc)?;
    Ok(())
}

/// Reads and clears the socket's pending error (`SO_ERROR`). After a record
/// fails to decrypt, kTLS parks the error there and refuses every send
/// until it is read.
pub fn take_socket_error(fd: BorrowedFd<'_>) -> Option<i32> {
    socket::getsockopt(&fd, sockopt::SocketError)
        .ok()
        .filter(|&e| e != 0)
}

/// Reads one direction's crypto_info back from the kernel (keys included:
/// wiped when dropped). The kernel insists on the exact size of the cipher's structure.
pub fn read_crypto_info(
    fd: BorrowedFd<'_>,
    dir: Direction,
    size: usize,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; size]);
    let len = getsockopt_bytes(fd, libc::SOL_TLS, dir.optname(), &mut buf)?;
    buf.truncate(len);
    Ok(buf)
}

/// `TLS_TX_MAX_PAYLOAD_LEN` (not yet in libc): the largest plaintext the
/// kernel puts in one record it sends.
const TLS_TX_MAX_PAYLOAD_LEN: libc::c_int = 5;

/// Caps the plaintext per record the kernel sends (Linux 6.19+). For TLS
/// 1.3 the kernel counts the content type byte apart: `max` is data only.
pub fn set_tx_max_payload(fd: BorrowedFd<'_>, max: u16) -> io::Result<()> {
    // SAFETY: `max` outlives the call and its size is passed exactly.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TLS,
            TLS_TX_MAX_PAYLOAD_LEN,
            (&max as *const u16).cast(),
            size_of::<u16>() as libc::socklen_t,
        )
    };
    check(rc).map(drop)
}

/// `TLS_RX_EXPECT_NO_PAD` (Linux 6.0+): TLS 1.3 records are decrypted
/// straight into the reader's buffer instead of a kernel bounce buffer.
pub fn set_rx_expect_no_pad(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `one` outlives the call and its size is passed exactly.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TLS,
            libc::TLS_RX_EXPECT_NO_PAD,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(rc).map(drop)
}

fn getsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is writable for `len` bytes and `len` is a valid pointer;
    // the kernel writes at most `len` bytes and updates it.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    check(rc)?;
    Ok(len as usize)
}

/// Receives bytes of one record type from a kTLS socket. Returns the length
/// and the record's content type; `None` when the kernel named no record
/// (the end of the TCP stream, or a socket without kTLS). Non-blocking.
pub fn recv_record(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<u8>)> {
    // Room for one cmsghdr carrying one byte, aligned.
    let mut control = [0u64; 4];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: msg points at `iov` (valid for buf.len() bytes) and `control`,
    // both alive for the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    let len = check_len(n)?;
    Ok((len, record_type(&msg)))
}

fn record_type(msg: &libc::msghdr) -> Option<u8> {
    // SAFETY: `msg` was filled by recvmsg; the CMSG_* macros walk only within
    // msg_control/msg_controllen, which the kernel set.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_TLS && (*cmsg).cmsg_type == libc::TLS_GET_RECORD_TYPE
            {
                return Some(*libc::CMSG_DATA(cmsg));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

/// Sends `data` as one record of `content_type` through kernel TLS
/// (`TLS_SET_RECORD_TYPE`): alerts and post-handshake messages.
pub fn send_record(fd: BorrowedFd<'_>, content_type: u8, data: &[u8]) -> io::Result<usize> {
    let mut control = [0u64; 4];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(1) } as usize;
    // SAFETY: msg_control points at `control`, large enough for one cmsg with
    // one byte of data (checked by the assert in debug builds).
    unsafe {
        debug_assert!(msg.msg_controllen <= size_of_val(&control));
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_TLS;
        (*cmsg).cmsg_type = libc::TLS_SET_RECORD_TYPE;
        (*cmsg).cmsg_len = libc::CMSG_LEN(1) as usize;
        *libc::CMSG_DATA(cmsg) = content_type;
    }
    // SAFETY: all pointers in msg are valid for the duration of the call.
    let n = unsafe {
        libc::sendmsg(
            fd.as_raw_fd(),
            &msg,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    check_len(n)
}

/// Non-blocking read of up to `max` bytes appended to `buf`, into its spare
/// capacity: unlike `recv` on a resized `Vec`, nothing is zeroed first.
pub fn recv_append(fd: BorrowedFd<'_>, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let len = max.min(spare.len());
    // SAFETY: `spare` is writable memory of at least `len` bytes owned by
    // `buf`, and `fd` is an open descriptor borrowed for the call.
    let got = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            spare.as_mut_ptr().cast(),
            len,
            libc::MSG_DONTWAIT,
        )
    };
    let n = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: the kernel initialised the first `n` (<= `len`) spare bytes.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Non-blocking write; never raises SIGPIPE.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    Ok(socket::send(fd.as_raw_fd(), buf, flags)?)
}

/// `send` with `MSG_MORE`: TCP keeps a partial segment back until the next
/// send (or its probe timer), so that it leaves with what follows.
pub fn send_more(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // nix names no MSG_MORE.
    let more = MsgFlags::from_bits_retain(libc::MSG_MORE);
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL | more;
    Ok(socket::send(fd.as_raw_fd(), buf, flags)?)
}

/// Reads and drops what the peer already sent (up to `limit` bytes), so that
/// closing the socket sends FIN, not the RST that unread data provokes.
/// False when the limit was reached: the peer may be sending still.
pub fn discard_input(fd: BorrowedFd<'_>, limit: usize) -> bool {
    let mut scratch = [0u8; 4096];
    let mut dropped = 0;
    while dropped < limit {
        match socket::recv(fd.as_raw_fd(), &mut scratch, MsgFlags::MSG_DONTWAIT) {
            Ok(n) if n > 0 => dropped += n,
            _ => return true,
        }
    }
    false
}

/// Makes the socket's close an RST (`SO_LINGER` with a zero timeout).
pub fn reset_on_close(fd: BorrowedFd<'_>) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    Ok(socket::setsockopt(&fd, sockopt::Linger, &linger)?)
}

/// Half-closes the sending side (TCP FIN). A peer that is already gone
/// (`ENOTCONN`) leaves nothing to half-close, as libuv treats it.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    match socket::shutdown(fd.as_raw_fd(), Shutdown::Write) {
        Err(nix::errno::Errno::ENOTCONN) => Ok(()),
        other => Ok(other?),
    }
}

/// This end's IP address and port; `None` for other kinds of socket.
pub fn local_addr(fd: BorrowedFd<'_>) -> Option<SocketAddr> {
    ip_socket_addr(socket::getsockname::<socket::SockaddrStorage>(fd.as_raw_fd()).ok()?)
}

fn ip_socket_addr(addr: socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

/// Whether `fd` is a TCP socket (kTLS exists only for TCP).
pub fn is_tcp(fd: BorrowedFd<'_>) -> bool {
    local_addr(fd).is_some()
        && matches!(
            socket::getsockopt(&fd, sockopt::SockType),
            Ok(socket::SockType::Stream)
        )
}

/// `TCP_NODELAY`, as `socket.setNoDelay()`.
pub fn set_no_delay(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    Ok(socket::setsockopt(&fd, sockopt::TcpNoDelay, &on)?)
}

/// `SO_KEEPALIVE` and the idle time before the first probe, as
/// `socket.setKeepAlive()`.
pub fn set_keep_alive(fd: BorrowedFd<'_>, on: bool, idle_secs: u32) -> io::Result<()> {
    socket::setsockopt(&fd, sockopt::KeepAlive, &on)?;
    if on && idle_secs > 0 {
        socket::setsockopt(&fd, sockopt::TcpKeepIdle, &idle_secs)?;
    }
    Ok(())
}

/// Sets `O_NONBLOCK`; libuv already does, a user-provided fd may not.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    if !flags.contains(OFlag::O_NONBLOCK) {
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

/// The running kernel's release string (`uname -r`).
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn check_len(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
