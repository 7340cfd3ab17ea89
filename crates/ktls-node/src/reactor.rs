//! Readiness reports for one JS callback per binding instance: through
//! Node's own loop on the main thread, or from a reactor thread elsewhere.

use napi::bindgen_prelude::{Function, Uint32Array};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Env;
use napi_derive::napi;

use ktls_core::LoopWatch;

fn reactor_error(e: impl std::fmt::Display) -> napi::Error<String> {
    napi::Error::new("ERR_KTLS_REACTOR".to_owned(), e.to_string())
}

#[napi]
pub struct Reactor {
    pub(crate) inner: ktls_core::Reactor,
    /// Set when reports come through Node's loop rather than a thread.
    watch: Option<LoopWatch>,
}

#[napi]
impl Reactor {
    /// `onReady(batch)` gets `[token, bits, token, bits, ...]` with bit 1 =
    /// readable and bit 2 = writable. With `mainLoop` (and on the main
    /// thread) it is called from Node's loop as a libuv callback, outside any
    /// callback scope: it should hand the batch to something Node calls in
    /// one (an immediate), so that the nextTick and microtask queues run
    /// after it and never inside it; otherwise from a threadsafe function. Neither keeps the loop alive;
    /// sockets do that on the JS side.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        on_ready: Function<Uint32Array, ()>,
        main_loop: bool,
    ) -> napi::Result<Self, String> {
        if main_loop {
            if let Some(reactor) = Self::on_main_loop(env, &on_ready)? {
                return Ok(reactor);
            }
        }
        Self::on_thread(&on_ready)
    }

    /// True when reports come through Node's loop.
    #[napi(getter)]
    pub fn main_loop(&self) -> bool {
        self.watch.is_some()
    }

    /// True when an armed interest stays registered until changed or
    /// `disarm()`ed (reports through Node's loop); false: one report per arm.
    #[napi(getter)]
    pub fn sticky(&self) -> bool {
        self.inner.is_sticky()
    }
}

impl Reactor {
    /// `None` when this thread has no libuv default loop to watch from.
    fn on_main_loop(
        env: Env,
        on_ready: &Function<Uint32Array, ()>,
    ) -> napi::Result<Option<Self>, String> {
        let inner = ktls_core::Reactor::new().map_err(reactor_error)?;
        let callback = on_ready.create_ref().map_err(reactor_error)?;
        let raw_env = env.raw();
        let source = inner.clone();
        let report = move || {
            let mut batch = Vec::new();
            if source.ready_now(&mut batch).is_err() || batch.is_empty() {
                return;
            }
            let env = Env::from_raw(raw_env);
            let _ = env.run_in_scope(|| {
                let called = callback
                    .borrow_back(&env)
                    .and_then(|f| f.call(Uint32Array::new(batch)));
                // As any callback from the loop: a throw is an uncaught exception.
                if let Err(err) = called {
                    env.fatal_exception(err);
                }
                Ok(())
            });
        };
        match LoopWatch::on_main_loop(inner.as_fd(), report) {
            Ok(watch) => Ok(Some(Self {
                inner,
                watch: Some(watch),
            })),
            Err(_) => Ok(None),
        }
    }

    fn on_thread(on_ready: &Function<Uint32Array, ()>) -> napi::Result<Self, String> {
        let tsfn = on_ready
            .build_threadsafe_function::<Vec<u32>>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx| Ok(Uint32Array::new(ctx.value)))
            .map_err(reactor_error)?;
        let inner = ktls_core::Reactor::start(move |batch| {
            tsfn.call(batch, ThreadsafeFunctionCallMode::NonBlocking);
        })
        .map_err(reactor_error)?;
        Ok(Self { inner, watch: None })
    }
}
