//! Node binding for `ktls-core`: argument conversion only, no protocol logic.
//! Errors cross as JS errors whose `code` is the core's stable code.
// A cdylib: its `pub` items are JS exports, not a Rust API, and its napi
// classes are JS-facing handles where Debug adds nothing.
#![allow(missing_debug_implementations, unreachable_pub)]
// napi registers exports only outside `cfg(test)`, leaving them unused there.
#![cfg_attr(test, allow(dead_code))]

mod connection;
mod context;
mod reactor;
mod sendfile;
mod stream;

use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

/// Freed blocks are wiped: no copy of a key outlives its allocation.
#[global_allocator]
static ALLOCATOR: ktls_core::WipingAllocator = ktls_core::WipingAllocator;

pub(crate) fn to_js_error(err: ktls_core::Error) -> napi::Error<String> {
    napi::Error::new(err.code(), err.to_string())
}

/// The suite order used when `ciphers` is not given.
/// The ticket of the session a token (from `'session'`/`getSession()`) names.
#[napi]
pub fn session_ticket(token: BufferSlice) -> Option<Buffer> {
    ktls_core::session_ticket(&token).map(Buffer::from)
}

#[napi]
pub fn default_ciphers() -> &'static str {
    ktls_core::DEFAULT_CIPHERS
}

/// The kernel's kTLS capabilities, probed once per process.
#[napi(object)]
pub struct Capabilities {
    pub kernel: String,
    pub ulp: bool,
    pub reason: Option<String>,
    pub aes128gcm: bool,
    pub aes256gcm: bool,
    pub chacha20poly1305: bool,
    pub rekey: bool,
    pub rx_expect_no_pad: bool,
    pub tx_zero_copy: bool,
    pub tx_max_payload: bool,
}

#[napi]
pub fn capabilities() -> Capabilities {
    use ktls_core::KernelCipher;
    let caps = ktls_core::capabilities();
    Capabilities {
        kernel: caps.kernel.clone(),
        ulp: caps.ulp,
        reason: caps.reason.clone(),
        aes128gcm: caps.supports(KernelCipher::Aes128Gcm),
        aes256gcm: caps.supports(KernelCipher::Aes256Gcm),
        chacha20poly1305: caps.supports(KernelCipher::Chacha20Poly1305),
        rekey: caps.rekey,
        rx_expect_no_pad: caps.rx_expect_no_pad,
        tx_zero_copy: caps.tx_zero_copy,
        tx_max_payload: caps.tx_max_payload,
    }
}

/// What the kernel smoke test reads back after installing a fixed key.
#[napi(object)]
pub struct FixedKeyOffload {
    pub ulp: String,
}

/// Diagnostics only: puts kernel TLS with a fixed, known key (not secret!)
/// on the socket behind `fd`, both directions, verifying the read-back.
/// Two sockets given the same key talk through the kernel's crypto.
#[napi]
pub fn offload_with_fixed_key(
    fd: i32,
    cipher: String,
    fill: u8,
) -> napi::Result<FixedKeyOffload, String> {
    let Some(cipher) = ktls_core::KernelCipher::from_suite_name(&cipher) else {
        let msg = format!("unknown TLS 1.3 suite {cipher:?}");
        return Err(napi::Error::new("ERR_INVALID_ARG_VALUE".to_owned(), msg));
    };
    let dup = ktls_core::sys::dup_foreign_fd(fd).map_err(|e| to_js_error(e.into()))?;
    let ulp = ktls_core::offload_with_fixed_key(std::os::fd::AsFd::as_fd(&dup), cipher, fill)
        .map_err(|e| to_js_error(e.into()))?;
    Ok(FixedKeyOffload { ulp })
}
