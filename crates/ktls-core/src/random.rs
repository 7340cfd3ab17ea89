//! The randomness rustls asks its provider for (hello randoms, ticket ids
//! and ages), drawn from the kernel a kilobyte at a time instead of with
//! one `getrandom` per request: a server handshake makes about seven such
//! requests of a few dozen bytes. Every byte is still the kernel's, is
//! handed out once, and is wiped from the pool as it is handed out; a
//! forked child starts with an empty pool.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use rustls::crypto::{GetRandomFailed, SecureRandom};

const POOL_SIZE: usize = 1024;
/// Requests larger than this go to the kernel directly.
const LARGEST_POOLED: usize = 64;

/// Counts forks, so a child never reuses bytes its parent also holds.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

fn watch_forks() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a child-side fork handler that only touches an
        // atomic, which is async-signal-safe as fork handlers must be.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

struct Pool {
    bytes: [u8; POOL_SIZE],
    /// Bytes before this index were handed out (and wiped).
    next: usize,
    forks_at_fill: u64,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_SIZE], next: POOL_SIZE, forks_at_fill: 0 })
    };
}

/// rustls's `SecureRandom` over a per-thread pool filled from `system`.
#[derive(Debug)]
pub(crate) struct PooledRandom {
    pub(crate) system: &'static dyn SecureRandom,
}

impl SecureRandom for PooledRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        if buf.len() > LARGEST_POOLED {
            return self.system.fill(buf);
        }
        watch_forks();
        POOL.with_borrow_mut(|pool| {
            let forks = FORKS.load(Ordering::Relaxed);
            if POOL_SIZE - pool.next < buf.len() || pool.forks_at_fill != forks {
                self.system.fill(&mut pool.bytes)?;
                pool.next = 0;
                pool.forks_at_fill = forks;
            }
            let taken = &mut pool.bytes[pool.next..pool.next + buf.len()];
            buf.copy_from_slice(taken);
            taken.fill(0);
            pool.next += buf.len();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pooled() -> PooledRandom {
        PooledRandom {
            system: rustls::crypto::aws_lc_rs::default_provider().secure_random,
        }
    }

    #[test]
    fn successive_requests_get_different_bytes() {
        let rng = pooled();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        rng.fill(&mut a).unwrap();
        rng.fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }

    #[test]
    fn handed_out_bytes_are_wiped_from_the_pool() {
        let rng = pooled();
        let mut got = [0u8; 48];
        rng.fill(&mut got).unwrap();
        POOL.with_borrow(|pool| {
            assert!(pool.next >= got.len());
            assert!(pool.bytes[..pool.next].iter().all(|&b| b == 0));
        });
    }

    #[test]
    fn refills_when_the_pool_runs_out_and_serves_large_requests_directly() {
        let rng = pooled();
        let mut small = [0u8; 40];
        for _ in 0..(2 * POOL_SIZE / small.len()) {
            rng.fill(&mut small).unwrap();
        }
        let mut large = [0u8; 4096];
        rng.fill(&mut large).unwrap();
        assert!(large.iter().any(|&b| b != 0));
    }
}
