//! Readiness notifications for many sockets, from one epoll set. Watched
//! from the host's own loop (the same thread that reads), an interest stays
//! registered until changed or withdrawn, so a connection that keeps reading
//! costs no `epoll_ctl` per wait (as libuv's own handles). Waited on by a
//! thread of its own, each arm is one-shot: a socket is reported once per
//! arm, so the thread never spins on readiness the owner has not acted on
//! yet. Either way the owner decides when it wants to hear again (that is
//! how backpressure stays bounded).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// What a socket's owner waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Readable (data, EOF or error).
    Read,
    /// Writable.
    Write,
    /// Either.
    Both,
}

/// Bit set in the readiness report when the socket is readable.
pub const READABLE: u32 = 1;
/// Bit set in the readiness report when the socket is writable.
pub const WRITABLE: u32 = 2;

/// An epoll instance and the thread that waits on it.
#[derive(Debug, Clone)]
pub struct Reactor {
    epoll: Arc<Epoll>,
    /// Interests stay registered (level-triggered) rather than one-shot.
    sticky: bool,
}

impl Reactor {
    /// An epoll set with no thread: its owner waits for the set's own
    /// descriptor ([`Reactor::as_fd`], e.g. with [`crate::LoopWatch`]) and
    /// then collects the reports with [`Reactor::ready_now`].
    /// Its interests stay registered: see [`Reactor::is_sticky`].
    pub fn new() -> io::Result<Self> {
        let epoll = Arc::new(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
        Ok(Self {
            epoll,
            sticky: true,
        })
    }

    /// An epoll set and a thread that waits on it. `on_ready` receives
    /// batches of `[token, READABLE|WRITABLE, token, bits, ...]`.
    pub fn start(on_ready: impl Fn(Vec<u32>) + Send + 'static) -> io::Result<Self> {
        let reactor = Self {
            sticky: false,
            ..Self::new()?
        };
        let waiter = reactor.epoll.clone();
        std::thread::Builder::new()
            .name("ktls-reactor".into())
            .spawn(move || wait_forever(&waiter, &on_ready))?;
        Ok(reactor)
    }

    /// The epoll set's descriptor: readable while reports are waiting.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }

    /// Appends the reports ready now to `batch` without waiting.
    pub fn ready_now(&self, batch: &mut Vec<u32>) -> io::Result<()> {
        let mut events = [EpollEvent::empty(); 64];
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::ZERO) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            append_reports(batch, &events[..n]);
            if n < events.len() {
                return Ok(());
            }
        }
    }

    /// True when an armed interest stays registered: reported at every wait
    /// while the socket is ready, until re-armed otherwise or forgotten.
    /// False: one report per arm.
    pub fn is_sticky(&self) -> bool {
        self.sticky
    }

    /// Asks for reports when `fd` becomes ready for `interest` (one, unless
    /// sticky). The first arm of a descriptor registers it; later ones
    /// change or re-arm it.
    pub fn arm(
        &self,
        fd: BorrowedFd<'_>,
        token: u32,
        interest: Interest,
        first: bool,
    ) -> io::Result<()> {
        let once = if self.sticky {
            EpollFlags::empty()
        } else {
            EpollFlags::EPOLLONESHOT
        };
        let flags = once
            | match interest {
                Interest::Read => EpollFlags::EPOLLIN,
                Interest::Write => EpollFlags::EPOLLOUT,
                Interest::Both => EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT,
            };
        let mut event = EpollEvent::new(flags, u64::from(token));
        if first {
            Ok(self.epoll.add(fd, event)?)
        } else {
            Ok(self.epoll.modify(fd, &mut event)?)
        }
    }

    /// Stops reporting `fd` (it may be armed again, as a first arm); call
    /// before closing it.
    pub fn forget(&self, fd: BorrowedFd<'_>) {
        let _ = self.epoll.delete(fd);
    }
}

fn wait_forever(epoll: &Epoll, on_ready: &impl Fn(Vec<u32>)) {
    let mut events = vec![EpollEvent::empty(); 256];
    loop {
        let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        };
        let mut batch = Vec::with_capacity(2 * n);
        append_reports(&mut batch, &events[..n]);
        on_ready(batch);
    }
}

/// Appends `[token, READABLE|WRITABLE]` for each event.
fn append_reports(batch: &mut Vec<u32>, events: &[EpollEvent]) {
    batch.extend(
        events
            .iter()
            .flat_map(|e| [e.data() as u32, bits(e.events())]),
    );
}

fn bits(flags: EpollFlags) -> u32 {
    let failed = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP;
    let mut out = 0;
    if flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | failed) {
        out |= READABLE;
    }
    if flags.intersects(EpollFlags::EPOLLOUT | failed) {
        out |= WRITABLE;
    }
    out
}
