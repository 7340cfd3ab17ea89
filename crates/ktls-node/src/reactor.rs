//! The readiness thread, reporting to one JS callback per binding instance.

use napi::bindgen_prelude::{Function, Uint32Array};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;

#[napi]
pub struct Reactor {
    pub(crate) inner: ktls_core::Reactor,
}

#[napi]
impl Reactor {
    /// `onReady(batch)` gets `[token, bits, token, bits, ...]` with bit 1 =
    /// readable and bit 2 = writable. The function does not keep the event
    /// loop alive; sockets do that on the JS side.
    #[napi(constructor)]
    pub fn new(on_ready: Function<Uint32Array, ()>) -> napi::Result<Self, String> {
        let tsfn = on_ready
            .build_threadsafe_function::<Vec<u32>>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx| Ok(Uint32Array::new(ctx.value)))
            .map_err(|e| napi::Error::new("ERR_KTLS_REACTOR".to_owned(), e.to_string()))?;
        let inner = ktls_core::Reactor::start(move |batch| {
            tsfn.call(batch, ThreadsafeFunctionCallMode::NonBlocking);
        })
        .map_err(|e| napi::Error::new("ERR_KTLS_REACTOR".to_owned(), e.to_string()))?;
        Ok(Self { inner })
    }
}
