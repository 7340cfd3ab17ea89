//! One TLS connection: a `ktls_core::Session` plus its reactor registration.

use std::os::fd::RawFd;

use ktls_core::{ControlOutcome, Interest, KtlsMode, Progress, ReadOutcome, Session, WriteOutcome};
use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use crate::context::{ClientSecureContext, ServerSecureContext};
use crate::reactor::Reactor;
use crate::to_js_error;

/// `read`/`write` return values besides byte counts.
const WOULD_BLOCK: i32 = -1;

#[napi(object)]
pub struct HandshakeInfo {
    pub alpn_protocol: Option<String>,
    pub servername: Option<String>,
    pub peer_certificates: Vec<Buffer>,
    pub cipher: String,
    pub protocol: String,
    pub chain_error: Option<String>,
    /// Server side: the index of the certificate served (of `cert`'s list).
    pub identity: u32,
    /// A resumed session (no full handshake).
    pub resumed: bool,
    /// The key exchange group ("X25519", "secp256r1", "secp384r1", ...).
    pub key_exchange_group: Option<String>,
    /// The verify_data of the Finished this side sent, and of the peer's,
    /// in hex: a string costs the heap less than a Buffer per connection.
    pub finished: Option<String>,
    pub peer_finished: Option<String>,
    /// node:tls's `getSharedSigalgs()`, joined with ':' (one string, split when asked).
    pub shared_sigalgs: String,
    /// Whether each direction went to the kernel.
    pub offload: Offload,
}

/// Where a handshake step stopped. For `WantRead` and `WantWrite` the
/// readiness report is already armed: one crossing per step.
#[napi]
pub enum HandshakeProgress {
    WantRead,
    WantWrite,
    Done,
    /// A server accepted with `acceptServerChoosing` has the ClientHello:
    /// choose a context (`requestedServername()`), `acceptWith` it, go on.
    ClientHello,
}

/// What the record that stopped the host's read turned out to be.
#[napi(string_enum)]
pub enum ControlKind {
    /// Acted on (ticket, key update, ignorable alert): reading may resume.
    Handled,
    /// A handshake message continues in the next record: ktls must read
    /// the records itself until it is whole.
    Fragment,
    /// close_notify or TCP end: the stream is over.
    Eof,
    /// Application data after all: `bytes` of it are in the buffer.
    Data,
    /// Nothing was waiting.
    WouldBlock,
}

#[napi(object)]
pub struct ControlRecord {
    pub kind: ControlKind,
    pub bytes: u32,
}

#[napi(object)]
pub struct Offload {
    pub tx: bool,
    pub rx: bool,
    pub reason: Option<String>,
}

#[napi]
pub struct Connection {
    session: Option<Session>,
    reactor: ktls_core::Reactor,
    token: u32,
    /// The descriptor is in the reactor's epoll set.
    /// The interest `fd` is registered with, if any (on a one-shot
    /// reactor, possibly used up by its report).
    registered: Option<Interest>,
}

fn mode(name: &str) -> napi::Result<KtlsMode, String> {
    match name {
        "auto" => Ok(KtlsMode::Auto),
        "require" => Ok(KtlsMode::Require),
        "off" => Ok(KtlsMode::Off),
        other => Err(napi::Error::new(
            "ERR_INVALID_ARG_VALUE".to_owned(),
            format!("ktls must be 'auto', 'require' or 'off', got {other:?}"),
        )),
    }
}

fn take_fd(fd: RawFd) -> napi::Result<std::os::fd::OwnedFd, String> {
    ktls_core::sys::dup_foreign_fd(fd).map_err(|e| to_js_error(e.into()))
}

/// A client connection on a duplicate of `fd` (the caller closes its own).
#[napi]
pub fn connect_client(
    context: &ClientSecureContext,
    fd: i32,
    servername: String,
    ktls: String,
    reactor: &Reactor,
    token: u32,
    resume: Option<Buffer>,
) -> napi::Result<Connection, String> {
    let session = Session::client(
        take_fd(fd)?,
        context.inner.clone(),
        &servername,
        mode(&ktls)?,
        resume.as_deref(),
    )
    .map_err(to_js_error)?;
    Ok(Connection::new(session, reactor, token))
}

/// A server connection on a duplicate of `fd`.
#[napi]
pub fn accept_server(
    context: &ServerSecureContext,
    fd: i32,
    ktls: String,
    reactor: &Reactor,
    token: u32,
) -> napi::Result<Connection, String> {
    let session =
        Session::server(take_fd(fd)?, &context.inner, mode(&ktls)?).map_err(to_js_error)?;
    Ok(Connection::new(session, reactor, token))
}

/// A server connection that reads the ClientHello before its context is
/// chosen (by SNI): `handshake()` stops at `ClientHello`.
#[napi]
pub fn accept_server_choosing(
    fd: i32,
    ktls: String,
    reactor: &Reactor,
    token: u32,
) -> napi::Result<Connection, String> {
    let session = Session::server_choosing(take_fd(fd)?, mode(&ktls)?).map_err(to_js_error)?;
    Ok(Connection::new(session, reactor, token))
}

fn closed() -> napi::Error<String> {
    napi::Error::new(
        "ERR_SOCKET_CLOSED".to_owned(),
        "Socket is closed".to_owned(),
    )
}

impl Connection {
    fn new(session: Session, reactor: &Reactor, token: u32) -> Self {
        Self {
            session: Some(session),
            reactor: reactor.inner.clone(),
            token,
            registered: None,
        }
    }

    fn session(&mut self) -> napi::Result<&mut Session, String> {
        self.session.as_mut().ok_or_else(closed)
    }

    fn arm_for(&mut self, interest: Interest) -> napi::Result<(), String> {
        // A sticky registration already asking for this needs no syscall.
        if self.reactor.is_sticky() && self.registered == Some(interest) {
            return Ok(());
        }
        let (token, first) = (self.token, self.registered.is_none());
        let reactor = self.reactor.clone();
        let session = self.session()?;
        reactor
            .arm(session.fd(), token, interest, first)
            .map_err(|e| to_js_error(e.into()))?;
        self.registered = Some(interest);
        Ok(())
    }
}

#[napi]
impl Connection {
    /// Bytes a `net.Socket` read before the takeover.
    #[napi]
    pub fn prepend_received(&mut self, bytes: BufferSlice) -> napi::Result<(), String> {
        self.session()?.prepend_received(&bytes);
        Ok(())
    }

    /// Advances the handshake, arming the wait it needs.
    #[napi]
    pub fn handshake(&mut self) -> napi::Result<HandshakeProgress, String> {
        let progress = self.session()?.handshake().map_err(to_js_error)?;
        Ok(match progress {
            Progress::WantRead => {
                self.arm_for(Interest::Read)?;
                HandshakeProgress::WantRead
            }
            Progress::WantWrite => {
                self.arm_for(Interest::Write)?;
                HandshakeProgress::WantWrite
            }
            Progress::Done => HandshakeProgress::Done,
            Progress::ClientHello => HandshakeProgress::ClientHello,
        })
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

    /// Continues a server stopped at `ClientHello` with `context`.
    #[napi]
    pub fn accept_with(&mut self, context: &ServerSecureContext) -> napi::Result<(), String> {
        self.session()?
            .accept_with(&context.inner)
            .map_err(to_js_error)
    }

    /// Answers a server stopped at `ClientHello` with a `handshake_failure`
    /// alert (it has no certificate to serve); the connection is over.
    #[napi]
    pub fn refuse_hello(&mut self) -> napi::Result<(), String> {
        self.session()?.refuse_hello().map_err(to_js_error)
    }

    /// Offloaded connections: reads and acts on the record that made the
    /// host's `read()` fail with `EIO` (a record that is not application data).
    #[napi]
    pub fn control_record(&mut self, mut buf: BufferSlice) -> napi::Result<ControlRecord, String> {
        let outcome = self
            .session()?
            .control_record(&mut buf)
            .map_err(to_js_error)?;
        let (kind, bytes) = match outcome {
            ControlOutcome::Handled => (ControlKind::Handled, 0),
            ControlOutcome::Fragment => (ControlKind::Fragment, 0),
            ControlOutcome::Eof => (ControlKind::Eof, 0),
            ControlOutcome::Data(n) => (ControlKind::Data, n as u32),
            ControlOutcome::WouldBlock => (ControlKind::WouldBlock, 0),
        };
        Ok(ControlRecord { kind, bytes })
    }

    /// Offload TLS 1.3 only where the kernel can follow KeyUpdates (else
    /// userspace). Call before the handshake ends.
    #[napi]
    pub fn require_key_update(&mut self) -> napi::Result<(), String> {
        self.session()?.require_key_update();
        Ok(())
    }

    /// Client: sessions stored since the last call, for `'session'`.
    #[napi]
    pub fn take_sessions(&mut self) -> napi::Result<Vec<Buffer>, String> {
        let tokens = self.session()?.take_new_sessions();
        Ok(tokens.iter().map(|t| t.to_vec().into()).collect())
    }

    /// Client: the newest session, for `getSession()`.
    #[napi]
    pub fn latest_session(&mut self) -> napi::Result<Option<Buffer>, String> {
        Ok(self.session()?.latest_session().map(|t| t.to_vec().into()))
    }

    /// Client: the session a resumed handshake resumed, if it did.
    #[napi]
    pub fn resumed_session(&mut self) -> napi::Result<Option<Buffer>, String> {
        Ok(self.session()?.resumed_session().map(|t| t.to_vec().into()))
    }

    /// node:tls's `setMaxSendFragment(size)`: true when applied.
    #[napi]
    pub fn set_max_send_fragment(&mut self, size: u32) -> napi::Result<bool, String> {
        Ok(self.session()?.set_max_send_fragment(size as usize))
    }

    /// A TLS 1.3 KeyUpdate of our sending key. False while the socket cannot
    /// take the record: `flush()` sends it once writable.
    #[napi]
    pub fn update_keys(&mut self, request_peer: bool) -> napi::Result<bool, String> {
        self.session()?
            .update_keys(request_peer)
            .map_err(to_js_error)
    }

    /// Offloaded connections: records sealed under the current sending key.
    #[napi]
    pub fn tx_records(&mut self) -> napi::Result<f64, String> {
        // Below 2^53: a u64 sequence number this large never occurs.
        Ok(self.session()?.tx_records().map_err(to_js_error)? as f64)
    }

    /// Offloaded connections: the host's `read()` failed with `errno`
    /// (`EBADMSG`, `EMSGSIZE`...). Sends the peer the alert it earned and
    /// returns the error to report.
    #[napi]
    pub fn read_failed(&mut self, errno: i32) -> napi::Result<(), String> {
        Err(to_js_error(self.session()?.read_failed(errno)))
    }

    /// close_notify alone (no FIN): for offloaded connections, whose FIN the
    /// host sends once its own write queue is empty. False while the socket
    /// cannot take the alert yet; then a writable report is armed.
    #[napi]
    pub fn close_notify(&mut self) -> napi::Result<bool, String> {
        if self.session()?.close_notify().map_err(to_js_error)? {
            return Ok(true);
        }
        self.arm_for(Interest::Write)?;
        Ok(false)
    }

    /// Bytes read, 0 at end of stream, -1 when nothing is available; then
    /// `rearm` (as for `arm`, 0 for none) is armed in the same crossing.
    /// `state[0]` becomes 1 when the bytes read leave nothing for another
    /// read until readiness (armed as for -1), else 0: the caller skips a
    /// read that would only say -1, as Node's streams read `streamBaseState`.
    #[napi]
    pub fn read(
        &mut self,
        mut buf: BufferSlice,
        rearm: u32,
        mut state: BufferSlice,
    ) -> napi::Result<i32, String> {
        let session = self.session()?;
        let outcome = session.read(&mut buf).map_err(to_js_error)?;
        let waits = session.read_waits();
        set_flag(&mut state, waits);
        match outcome {
            ReadOutcome::Data(n) => {
                if waits && rearm != 0 {
                    self.arm(rearm)?;
                }
                Ok(n as i32)
            }
            ReadOutcome::Eof => Ok(0),
            ReadOutcome::WouldBlock => {
                if rearm != 0 {
                    self.arm(rearm)?;
                }
                Ok(WOULD_BLOCK)
            }
        }
    }

    /// Plaintext bytes taken, or -1 when the socket is full. `state[0]`
    /// becomes 1 when nothing of ours is left queued (no `flush()` needed).
    #[napi]
    pub fn write(
        &mut self,
        data: BufferSlice,
        mut state: BufferSlice,
    ) -> napi::Result<i32, String> {
        let session = self.session()?;
        let outcome = session.write(&data).map_err(to_js_error)?;
        set_flag(&mut state, session.nothing_queued());
        match outcome {
            WriteOutcome::Written(n) => Ok(n as i32),
            WriteOutcome::WouldBlock => Ok(WOULD_BLOCK),
        }
    }

    /// True when nothing queued remains.
    #[napi]
    pub fn flush(&mut self) -> napi::Result<bool, String> {
        self.session()?.flush().map_err(to_js_error)
    }

    /// `end()`: close_notify, then FIN. False while the socket cannot take
    /// the alert yet (wait for writable and call again).
    #[napi]
    pub fn end(&mut self) -> napi::Result<bool, String> {
        let session = self.session()?;
        if !session.close_notify().map_err(to_js_error)? {
            return Ok(false);
        }
        session.shutdown_write().map_err(to_js_error)?;
        Ok(true)
    }

    #[napi]
    pub fn set_no_delay(&mut self, on: bool) -> napi::Result<(), String> {
        self.session()?.set_no_delay(on).map_err(to_js_error)
    }

    #[napi]
    pub fn set_keep_alive(&mut self, on: bool, idle_secs: u32) -> napi::Result<(), String> {
        self.session()?
            .set_keep_alive(on, idle_secs)
            .map_err(to_js_error)
    }

    /// Wants no more readiness reports until the next arm. A one-shot
    /// reactor's report already withdrew the interest; a sticky one's is
    /// removed here, so a socket nobody reads does not keep reporting.
    #[napi]
    pub fn disarm(&mut self) -> napi::Result<(), String> {
        if !self.reactor.is_sticky() || self.registered.is_none() {
            return Ok(());
        }
        let reactor = self.reactor.clone();
        reactor.forget(self.session()?.fd());
        self.registered = None;
        Ok(())
    }

    /// Asks for readiness reports (one, on a one-shot reactor): 1 read, 2 write, 3 both.
    #[napi]
    pub fn arm(&mut self, interest: u32) -> napi::Result<(), String> {
        self.arm_for(match interest {
            1 => Interest::Read,
            2 => Interest::Write,
            _ => Interest::Both,
        })
    }

    /// What the handshake negotiated and where the records now go.
    #[napi]
    pub fn info(&mut self) -> napi::Result<HandshakeInfo, String> {
        let session = self.session()?;
        let status = session.offload();
        let offload = Offload {
            tx: status.tx,
            rx: status.rx,
            reason: status.reason.clone(),
        };
        Ok(handshake_info(session.info(), offload))
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

    /// Closes the descriptor now (no close_notify). Idempotent.
    #[napi]
    pub fn destroy(&mut self) {
        if let Some(session) = self.session.take() {
            if self.registered.take().is_some() {
                self.reactor.forget(session.fd());
            }
        }
    }
}

/// The core's handshake record, as JavaScript values.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn handshake_info(info: &ktls_core::HandshakeInfo, offload: Offload) -> HandshakeInfo {
    HandshakeInfo {
        alpn_protocol: info
            .alpn_protocol
            .as_ref()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        servername: info.server_name.clone(),
        peer_certificates: info
            .peer_certificates
            .iter()
            .map(|c| Buffer::from(c.clone()))
            .collect(),
        cipher: info.cipher_suite.clone(),
        protocol: info.protocol.clone(),
        chain_error: info.chain_error.clone(),
        identity: u32::try_from(info.identity).unwrap_or(0),
        resumed: info.resumed,
        key_exchange_group: info.key_exchange_group.clone(),
        finished: info.finished.as_deref().map(hex),
        peer_finished: info.peer_finished.as_deref().map(hex),
        shared_sigalgs: info.shared_sigalgs.join(":"),
        offload,
    }
}

/// The one-byte answer a call leaves beside its result (see `read`, `write`).
fn set_flag(state: &mut [u8], on: bool) {
    if let Some(flag) = state.first_mut() {
        *flag = u8::from(on);
    }
}
