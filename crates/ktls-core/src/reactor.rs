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

    /// Appends the reports ready now to `batch` without waiting: at most
    /// one wait's worth. More stay for the next call (the set's descriptor
    /// is still readable): a level-triggered interest is reported again at
    /// every wait until its owner acts, so waiting again now would only
    /// repeat it.
    pub fn ready_now(&self, batch: &mut Vec<u32>) -> io::Result<()> {
        let mut events = [EpollEvent::empty(); 256];
        loop {
            match self.epoll.wait(&mut events, EpollTimeout::ZERO) {
                Ok(n) => {
                    append_reports(batch, &events[..n]);
                    return Ok(());
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::{Interest, Reactor, READABLE};

    fn readable_pairs(n: usize) -> Vec<(UnixStream, UnixStream)> {
        (0..n)
            .map(|_| {
                let (mut a, b) = UnixStream::pair().unwrap();
                a.write_all(b"x").unwrap();
                (a, b)
            })
            .collect()
    }

    #[test]
    fn a_sticky_interest_is_reported_at_every_wait_and_one_wait_at_a_time() {
        let reactor = Reactor::new().unwrap();
        assert!(reactor.is_sticky());
        let pairs = readable_pairs(300);
        for (token, (_, b)) in pairs.iter().enumerate() {
            reactor
                .arm(b.as_fd(), token as u32, Interest::Read, true)
                .unwrap();
        }
        // 300 sockets stay readable: one call returns one wait's reports
        // instead of collecting the same ones forever.
        let mut batch = Vec::new();
        reactor.ready_now(&mut batch).unwrap();
        assert_eq!(batch.len(), 2 * 256);
        assert!(batch.chunks(2).all(|r| r[1] == READABLE));
        // Nobody read: the next wait reports again (level-triggered).
        let mut again = Vec::new();
        reactor.ready_now(&mut again).unwrap();
        assert!(!again.is_empty());
        // Forgotten, a socket reports no more.
        for (_, b) in &pairs {
            reactor.forget(b.as_fd());
        }
        let mut none = Vec::new();
        reactor.ready_now(&mut none).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_one_shot_arm_reports_once() {
        let reactor = Reactor {
            sticky: false,
            ..Reactor::new().unwrap()
        };
        let pairs = readable_pairs(1);
        reactor
            .arm(pairs[0].1.as_fd(), 7, Interest::Read, true)
            .unwrap();
        let mut batch = Vec::new();
        reactor.ready_now(&mut batch).unwrap();
        assert_eq!(batch, vec![7, READABLE]);
        let mut again = Vec::new();
        reactor.ready_now(&mut again).unwrap();
        assert!(again.is_empty());
    }
}
