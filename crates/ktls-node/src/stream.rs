//! A TLS connection whose records JavaScript carries over any `Duplex`:
//! a `ktls_core::StreamSession`, ciphertext in and out as Buffers.

use ktls_core::{StreamSession, StreamState};
use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use crate::connection::{handshake_info, HandshakeInfo, Offload};
use crate::context::{ClientSecureContext, ServerSecureContext};
use crate::to_js_error;

/// What one step produced: the state, the plaintext to push, the
/// ciphertext to send (each absent when empty).
#[napi(object)]
pub struct StreamStep {
    pub secure: bool,
    pub peer_closed: bool,
    /// A `streamServerChoosing` connection has the ClientHello: `acceptWith` a context.
    pub client_hello: bool,
    pub plaintext: Option<Buffer>,
    pub output: Option<Buffer>,
}

#[napi]
pub struct StreamConnection {
    session: Option<StreamSession>,
}

/// A client connection to `servername` over a transport JavaScript carries.
#[napi]
pub fn stream_client(
    context: &ClientSecureContext,
    servername: String,
) -> napi::Result<StreamConnection, String> {
    let session = StreamSession::client(context.inner.clone(), &servername).map_err(to_js_error)?;
    Ok(StreamConnection {
        session: Some(session),
    })
}

/// A server connection over a transport JavaScript carries.
#[napi]
pub fn stream_server(context: &ServerSecureContext) -> napi::Result<StreamConnection, String> {
    let session = StreamSession::server(&context.inner).map_err(to_js_error)?;
    Ok(StreamConnection {
        session: Some(session),
    })
}

/// A server connection that reads the ClientHello before its context is
/// chosen (by SNI): a step reports `clientHello`, then `acceptWith`.
#[napi]
pub fn stream_server_choosing() -> StreamConnection {
    StreamConnection {
        session: Some(StreamSession::server_choosing()),
    }
}

fn closed() -> napi::Error<String> {
    napi::Error::new(
        "ERR_SOCKET_CLOSED".to_owned(),
        "Socket is closed".to_owned(),
    )
}

fn non_empty(bytes: Vec<u8>) -> Option<Buffer> {
    (!bytes.is_empty()).then(|| Buffer::from(bytes))
}

impl StreamConnection {
    fn session(&mut self) -> napi::Result<&mut StreamSession, String> {
        self.session.as_mut().ok_or_else(closed)
    }

    fn step(&mut self, state: StreamState) -> napi::Result<StreamStep, String> {
        let session = self.session()?;
        Ok(StreamStep {
            secure: state.secure,
            peer_closed: state.peer_closed,
            client_hello: state.client_hello,
            plaintext: non_empty(session.take_plaintext()),
            output: non_empty(session.take_output()),
        })
    }
}

#[napi]
impl StreamConnection {
    /// Ciphertext from the transport: runs rustls over it. On error, the
    /// alert to send is left for `takeOutput()`.
    #[napi]
    pub fn receive(&mut self, ciphertext: BufferSlice) -> napi::Result<StreamStep, String> {
        let state = self.session()?.receive(&ciphertext).map_err(to_js_error)?;
        self.step(state)
    }

    /// Runs rustls without new input (a client's first flight).
    #[napi]
    pub fn advance(&mut self) -> napi::Result<StreamStep, String> {
        let state = self.session()?.advance().map_err(to_js_error)?;
        self.step(state)
    }

    /// The server name the ClientHello asked for, if any.
    #[napi]
    pub fn requested_servername(&mut self) -> napi::Result<Option<String>, String> {
        Ok(self.session()?.requested_server_name().map(str::to_owned))
    }

    /// The ALPN protocols the ClientHello offered, if it offered any.
    #[napi]
    pub fn offered_alpn(&mut self) -> napi::Result<Option<Vec<String>>, String> {
        Ok(self.session()?.offered_alpn().map(<[String]>::to_vec))
    }

    /// Continues a server that reported `clientHello` with `context`.
    #[napi]
    pub fn accept_with(
        &mut self,
        context: &ServerSecureContext,
    ) -> napi::Result<StreamStep, String> {
        let state = self
            .session()?
            .accept_with(&context.inner)
            .map_err(to_js_error)?;
        self.step(state)
    }

    /// Answers a server that reported `clientHello` with a `handshake_failure`
    /// alert (it has no certificate to serve): the records to send last.
    #[napi]
    pub fn refuse_hello(&mut self) -> napi::Result<Buffer, String> {
        let session = self.session()?;
        session.refuse_hello().map_err(to_js_error)?;
        Ok(Buffer::from(session.take_output()))
    }

    /// Seals `chunks` (in order) and returns the records.
    #[napi]
    pub fn encrypt(&mut self, chunks: Vec<BufferSlice>) -> napi::Result<Buffer, String> {
        let session = self.session()?;
        for chunk in &chunks {
            session.encrypt(chunk).map_err(to_js_error)?;
        }
        Ok(Buffer::from(session.take_output()))
    }

    /// close_notify's record (empty if already sent or still handshaking).
    #[napi]
    pub fn close_notify(&mut self) -> napi::Result<Buffer, String> {
        let session = self.session()?;
        session.close_notify().map_err(to_js_error)?;
        Ok(Buffer::from(session.take_output()))
    }

    /// Ciphertext waiting to be sent (an alert after a failed step).
    #[napi]
    pub fn take_output(&mut self) -> Option<Buffer> {
        self.session
            .as_mut()
            .and_then(|s| non_empty(s.take_output()))
    }

    /// What the handshake negotiated; nothing is offloaded on such a transport.
    #[napi]
    pub fn info(&mut self, reason: String) -> napi::Result<HandshakeInfo, String> {
        let offload = Offload {
            tx: false,
            rx: false,
            reason: Some(reason),
        };
        Ok(handshake_info(self.session()?.info(), offload))
    }

    /// Keeps NSS key log lines from now on (node:tls's 'keylog').
    #[napi]
    pub fn log_keys(&mut self, on: bool) -> napi::Result<(), String> {
        self.session()?.log_keys(on);
        Ok(())
    }

    /// Key log lines since the last call.
    #[napi]
    pub fn take_keylog(&mut self) -> napi::Result<Vec<String>, String> {
        Ok(self.session()?.take_keylog())
    }

    /// node:tls's `exportKeyingMaterial(length, label, context)`.
    #[napi]
    pub fn export_keying_material(
        &mut self,
        length: u32,
        label: BufferSlice,
        context: Option<BufferSlice>,
    ) -> napi::Result<Buffer, String> {
        let bytes = self
            .session()?
            .export_keying_material(length as usize, &label, context.as_deref())
            .map_err(to_js_error)?;
        Ok(Buffer::from(bytes))
    }

    /// Drops the connection state. Idempotent.
    #[napi]
    pub fn destroy(&mut self) {
        self.session = None;
    }
}
