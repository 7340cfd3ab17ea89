//! `socket.sendFile()`'s native half: sendfile(2) ranges on libuv's
//! threadpool, so the JS thread never blocks on a slow peer.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;

use crate::to_js_error;

/// A file and a socket, duplicated: closing either original is safe while a
/// send runs. `close()` lets the duplicates go once no send needs them (a
/// running send holds its own reference), rather than at garbage collection.
#[napi]
pub struct FileSender {
    inner: Option<Arc<ktls_core::FileSend>>,
}

/// What a send did. A Task's errors carry napi statuses, not our codes, so
/// failures come back as values: `code` (e.g. `EPIPE`, `ECANCELED`) set
/// means it failed. `blocked`: the peer stopped reading; send the rest later.
#[napi(object)]
pub struct FileSent {
    pub bytes: f64,
    pub blocked: bool,
    pub code: Option<String>,
    pub message: Option<String>,
}

#[napi]
impl FileSender {
    #[napi(constructor)]
    pub fn new(socket_fd: i32, file_fd: i32) -> napi::Result<Self, String> {
        let inner = ktls_core::FileSend::new(socket_fd, file_fd).map_err(to_js_error)?;
        Ok(Self {
            inner: Some(Arc::new(inner)),
        })
    }

    /// Sends up to `length` bytes from `offset` on the threadpool, waiting
    /// for a full send buffer at most `patienceMs` in all. `bytes` below
    /// `length`, not `blocked`, with no `code`: the file ended first.
    #[napi(ts_return_type = "Promise<FileSent>")]
    pub fn send(
        &self,
        offset: f64,
        length: f64,
        patience_ms: u32,
    ) -> napi::Result<AsyncTask<SendRange>, String> {
        Ok(AsyncTask::new(SendRange {
            inner: Arc::clone(self.open()?),
            offset: offset as u64,
            length: length as u64,
            patience: Duration::from_millis(patience_ms.into()),
        }))
    }

    /// Stops a running send within a fraction of a second (`ECANCELED`).
    #[napi]
    pub fn cancel(&self) {
        if let Some(inner) = &self.inner {
            inner.cancel();
        }
    }

    /// `TLS_TX_ZEROCOPY_RO` on the socket (Linux 5.19+).
    #[napi]
    pub fn set_zero_copy(&self) -> napi::Result<(), String> {
        self.open()?.set_zero_copy().map_err(to_js_error)
    }

    /// Drops this handle's duplicates (a running send keeps its own until it ends).
    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
    }
}

impl FileSender {
    fn open(&self) -> napi::Result<&Arc<ktls_core::FileSend>, String> {
        self.inner.as_ref().ok_or_else(|| {
            let msg = "file sender already closed".to_owned();
            napi::Error::new("ERR_KTLS_INTERNAL".to_owned(), msg)
        })
    }
}

pub struct SendRange {
    inner: Arc<ktls_core::FileSend>,
    offset: u64,
    length: u64,
    patience: Duration,
}

impl Task for SendRange {
    type Output = FileSent;
    type JsValue = FileSent;

    fn compute(&mut self) -> napi::Result<FileSent> {
        Ok(
            match self.inner.send(self.offset, self.length, self.patience) {
                Ok(sent) => FileSent {
                    bytes: sent.bytes as f64,
                    blocked: sent.blocked,
                    code: None,
                    message: None,
                },
                Err(err) => FileSent {
                    bytes: 0.0,
                    blocked: false,
                    code: Some(err.code()),
                    message: Some(err.to_string()),
                },
            },
        )
    }

    fn resolve(&mut self, _env: Env, output: FileSent) -> napi::Result<FileSent> {
        Ok(output)
    }
}
