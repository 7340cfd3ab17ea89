//! Readiness through the host process's libuv loop (Node's main thread)
//! instead of a thread of our own: one `uv_poll` handle watches a
//! descriptor (the reactor's epoll set) and runs a callback on the loop's
//! thread. That saves a thread wake-up and a cross-thread hand-off per
//! readiness report, which is most of a handshake's waiting overhead.
//!
//! libuv is found at run time with `dlsym`, so this crate links and tests
//! without Node; outside a libuv host [`LoopWatch::on_main_loop`] fails
//! and callers keep the reactor thread.

use std::ffi::{c_int, c_void, CStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;

/// `UV_POLL` in libuv's `uv_handle_type`.
const UV_POLL: c_int = 8;
/// `UV_READABLE` in libuv's `uv_poll_event`.
const UV_READABLE: c_int = 1;

type PollCallback = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);
type CloseCallback = unsafe extern "C" fn(handle: *mut c_void);

/// The libuv functions this module calls, resolved once.
struct Uv {
    default_loop: unsafe extern "C" fn() -> *mut c_void,
    handle_size: unsafe extern "C" fn(kind: c_int) -> usize,
    poll_init: unsafe extern "C" fn(lp: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int,
    poll_start: unsafe extern "C" fn(handle: *mut c_void, events: c_int, cb: PollCallback) -> c_int,
    unref: unsafe extern "C" fn(handle: *mut c_void),
    close: unsafe extern "C" fn(handle: *mut c_void, cb: CloseCallback),
    handle_get_data: unsafe extern "C" fn(handle: *const c_void) -> *mut c_void,
    handle_set_data: unsafe extern "C" fn(handle: *mut c_void, data: *mut c_void),
}

fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT only looks a NUL-terminated name up in
    // the process's global symbol table.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!found.is_null()).then_some(found)
}

/// libuv's function `name`, as the function pointer type `F`.
///
/// # Safety
/// `F` must be an `extern "C" fn` type matching that function's signature.
unsafe fn function<F: Copy>(name: &CStr) -> Option<F> {
    let found = symbol(name)?;
    assert_eq!(size_of::<F>(), size_of::<*mut c_void>());
    // SAFETY: `found` is the address of the function `name`, and the caller
    // guarantees `F` is its pointer type, which has a pointer's size.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&found) })
}

fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    UV.get_or_init(|| {
        // SAFETY: each field's type is that function's C signature in uv.h
        // (libuv 1.34 or newer, which every supported Node has).
        unsafe {
            Some(Uv {
                default_loop: function(c"uv_default_loop")?,
                handle_size: function(c"uv_handle_size")?,
                poll_init: function(c"uv_poll_init")?,
                poll_start: function(c"uv_poll_start")?,
                unref: function(c"uv_unref")?,
                close: function(c"uv_close")?,
                handle_get_data: function(c"uv_handle_get_data")?,
                handle_set_data: function(c"uv_handle_set_data")?,
            })
        }
    })
    .as_ref()
}

fn on_main_thread() -> bool {
    nix::unistd::gettid() == nix::unistd::getpid()
}

type Callback = Box<dyn FnMut()>;

/// A `uv_poll` on libuv's default loop, calling back on the main thread
/// whenever the watched descriptor is readable. It does not keep the loop
/// alive. Dropping it closes the handle (on the main thread: the type is
/// neither `Send` nor `Sync`).
pub struct LoopWatch {
    uv: &'static Uv,
    handle: *mut c_void,
}

impl std::fmt::Debug for LoopWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopWatch")
    }
}

impl LoopWatch {
    /// Watches `fd` on libuv's default loop. Only on the process's main
    /// thread, the one that runs that loop in Node; elsewhere, or without
    /// libuv in the process, it returns an error and nothing is watched.
    /// `fd` must stay open as long as the watch lives.
    pub fn on_main_loop(
        fd: BorrowedFd<'_>,
        on_readable: impl FnMut() + 'static,
    ) -> io::Result<Self> {
        let unsupported = |why: &str| io::Error::new(io::ErrorKind::Unsupported, why.to_owned());
        let uv = uv().ok_or_else(|| unsupported("libuv is not in this process"))?;
        if !on_main_thread() {
            return Err(unsupported("not on the main thread"));
        }
        let callback: *mut Callback = Box::into_raw(Box::new(Box::new(on_readable)));
        // SAFETY: we are on the main thread, which runs libuv's default loop
        // (checked above), so calling into the loop cannot race with it. The
        // handle is a zeroed allocation of libuv's own size for UV_POLL; it
        // is freed by `free_handle` once uv_close has finished with it.
        unsafe {
            let size = (uv.handle_size)(UV_POLL);
            let handle = libc::calloc(1, size);
            if handle.is_null() {
                drop(Box::from_raw(callback));
                return Err(io::Error::from(io::ErrorKind::OutOfMemory));
            }
            let status = (uv.poll_init)((uv.default_loop)(), handle, fd.as_raw_fd());
            if status != 0 {
                libc::free(handle);
                drop(Box::from_raw(callback));
                return Err(io::Error::from_raw_os_error(-status));
            }
            (uv.handle_set_data)(handle, callback.cast());
            let watch = Self { uv, handle };
            let status = (uv.poll_start)(handle, UV_READABLE, on_poll);
            if status != 0 {
                return Err(io::Error::from_raw_os_error(-status));
            }
            (uv.unref)(handle);
            Ok(watch)
        }
    }
}

impl Drop for LoopWatch {
    fn drop(&mut self) {
        // SAFETY: the handle was initialised by `on_main_loop` on the main
        // thread and `LoopWatch` cannot leave it; uv_close stops the poll and
        // calls `free_handle` later from the same loop.
        unsafe { (self.uv.close)(self.handle, free_handle) }
    }
}

/// libuv's poll callback: runs the owner's closure.
unsafe extern "C" fn on_poll(handle: *mut c_void, _status: c_int, _events: c_int) {
    let Some(uv) = uv() else { return };
    // SAFETY: libuv passes back the handle whose data `on_main_loop` set to
    // a live `Callback`; callbacks of one loop never run concurrently.
    unsafe {
        let callback = (uv.handle_get_data)(handle).cast::<Callback>();
        if let Some(callback) = callback.as_mut() {
            callback();
        }
    }
}

/// libuv's close callback: frees the handle and the closure.
unsafe extern "C" fn free_handle(handle: *mut c_void) {
    let Some(uv) = uv() else { return };
    // SAFETY: libuv is done with the closed handle; its data is the closure
    // boxed by `on_main_loop`, dropped exactly once here.
    unsafe {
        let callback = (uv.handle_get_data)(handle).cast::<Callback>();
        if !callback.is_null() {
            drop(Box::from_raw(callback));
        }
        libc::free(handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn without_libuv_in_the_process_nothing_is_watched() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let err = LoopWatch::on_main_loop(a.as_fd(), || {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }
}
