//! One TLS connection over a non-blocking TCP descriptor: the handshake in
//! userspace, then either the kernel or rustls carries the records. Every
//! call is non-blocking and reports what it is waiting for.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;

use crate::config::{
    take_resolved_hello, ClientChainCheck, ClientContext, ResolvedHello, ServerContext,
};
use crate::conn::{Buffers, Offer, Pumped, Tls};
use crate::error::{Error, Result};
use crate::exporter::{Captured, Exporter};
use crate::hello::{named_http_request, peek_client_hello, Hello, HANDSHAKE_FAILURE_ALERT};
use crate::offload::{self, KtlsMode, OffloadStatus};
use crate::outcome::{nonblocking, ControlOutcome, Progress, ReadOutcome, WriteOutcome};
use crate::record::{self, ControlRecords};
use crate::sessions::{collecting, SessionToken, SessionsSeen};
use crate::sys;

/// What the handshake negotiated, captured before conversion because the
/// kernel connection object no longer knows it.
#[derive(Debug, Clone, Default)]
pub struct HandshakeInfo {
    /// Negotiated ALPN protocol.
    pub alpn_protocol: Option<Vec<u8>>,
    /// SNI: what the client sent (server side) or asked for (client side).
    pub server_name: Option<String>,
    /// Peer certificate chain, DER, leaf first.
    pub peer_certificates: Vec<Vec<u8>>,
    /// IANA name of the negotiated suite.
    pub cipher_suite: String,
    /// "TLSv1.2" or "TLSv1.3".
    pub protocol: String,
    /// Client side: Node's `authorizationError` code for the chain, if untrusted.
    pub chain_error: Option<String>,
    /// Server side: which of the context's certificates was served.
    pub identity: usize,
    /// The session was resumed (no full handshake).
    pub resumed: bool,
    /// The key exchange group, as rustls names it ("X25519", "secp256r1", ...).
    pub key_exchange_group: Option<String>,
    /// The verify_data of the Finished this side sent, and of the peer's.
    pub finished: Option<Vec<u8>>,
    pub peer_finished: Option<Vec<u8>>,
    /// node:tls's `getSharedSigalgs()`: its names, in the chooser's order.
    pub shared_sigalgs: Vec<String>,
}

impl HandshakeInfo {
    pub(crate) fn note_hello(&mut self, hello: ResolvedHello) {
        if hello.server_name.is_some() {
            self.server_name = hello.server_name;
        }
        self.identity = hello.identity;
    }
}

enum State {
    /// A server waiting for the ClientHello to choose its configuration.
    AwaitingHello,
    Handshaking(Tls),
    Userspace(Tls),
    Kernel(Box<ControlRecords>),
    Closed,
}

/// A TLS connection on a descriptor this object owns.
pub struct Session {
    fd: OwnedFd,
    state: State,
    bufs: Buffers,
    mode: KtlsMode,
    client: Option<Arc<ClientContext>>,
    info: HandshakeInfo,
    offload: OffloadStatus,
    peer_closed: bool,
    /// close_notify queued; the read side stays open (half-close).
    close_sent: bool,
    /// What a `server_choosing` connection's ClientHello asked for.
    hello_name: Option<String>,
    /// The ALPN protocols that ClientHello offered.
    hello_alpn: Option<Vec<String>>,
    /// A server with `requestCert`: how the client's chain is judged.
    client_check: Option<Arc<ClientChainCheck>>,
    /// Secrets the handshake logged, until it ends.
    captured: Captured,
    /// What `export_keying_material` derives from, once the handshake is over.
    exporter: Option<Exporter>,
    /// The last userspace read returned less than asked for.
    drained: bool,
    /// The last `read()` returned data and left nothing for another one
    /// until the socket is readable again.
    read_waits: bool,
    /// How much the next userspace read asks for: what the last one got,
    /// doubled while reads fill it. Small requests then cost small buffers
    /// (an idle connection frees, and so wipes, its whole buffer).
    read_chunk: usize,
    /// Client: sessions rustls stored since `take_new_sessions`, and the newest.
    new_sessions: Vec<SessionToken>,
    latest_session: Option<SessionToken>,
    /// The sessions the ClientHello offered (a TLS 1.3 ticket, a TLS 1.2 session).
    offered: SessionsSeen,
    /// Offload TLS 1.3 only where the kernel can follow KeyUpdates.
    require_rekey: bool,
    /// The largest plaintext per record we send (`setMaxSendFragment`).
    max_fragment: Option<usize>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A client connection to `server_name` (a DNS name or an IP address).
    pub fn client(
        fd: OwnedFd,
        context: Arc<ClientContext>,
        server_name: &str,
        mode: KtlsMode,
        resume: Option<&[u8]>,
    ) -> Result<Self> {
        sys::set_nonblocking(fd.as_fd())?;
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| Error::InvalidArgument(format!("servername: invalid {server_name:?}")))?;
        // The `session` option: offered before rustls writes the ClientHello.
        if let Some(token) = resume {
            context.sessions.import(&name, token);
        }
        // rustls writes the ClientHello here, taking the session it offers.
        let (conn, offered) =
            collecting(|| UnbufferedClientConnection::new(context.config.clone(), name));
        let mut session = Self::new(fd, Tls::Client(conn?), mode);
        session.note_sessions(offered);
        session.info.server_name = Some(server_name.to_owned());
        session.captured.our_sigalgs = context.sigalgs.clone();
        session.client = Some(context);
        Ok(session)
    }

    /// A server connection.
    pub fn server(fd: OwnedFd, context: &ServerContext, mode: KtlsMode) -> Result<Self> {
        sys::set_nonblocking(fd.as_fd())?;
        let conn = UnbufferedServerConnection::new(context.config.clone())?;
        let mut session = Self::new(fd, Tls::Server(conn), mode);
        session.client_check = context.client_check.clone();
        session.captured.our_sigalgs = context.sigalgs.clone();
        Ok(session)
    }

    /// A server connection whose configuration is chosen once the
    /// ClientHello is in (`Progress::ClientHello`, then `accept_with`).
    pub fn server_choosing(fd: OwnedFd, mode: KtlsMode) -> Result<Self> {
        sys::set_nonblocking(fd.as_fd())?;
        Ok(Self::new_in(fd, State::AwaitingHello, mode))
    }

    /// Continues a `server_choosing` connection with `context`.
    pub fn accept_with(&mut self, context: &ServerContext) -> Result<()> {
        if !matches!(self.state, State::AwaitingHello) {
            return Err(Error::InvalidArgument(
                "no ClientHello is waiting for a context".into(),
            ));
        }
        let conn = UnbufferedServerConnection::new(context.config.clone())?;
        self.state = State::Handshaking(Tls::Server(conn));
        self.client_check = context.client_check.clone();
        self.captured.our_sigalgs = context.sigalgs.clone();
        Ok(())
    }

    /// Refuses a `server_choosing` connection's ClientHello (no certificate
    /// to serve): a fatal `handshake_failure` alert, then the session is closed.
    pub fn refuse_hello(&mut self) -> Result<()> {
        if !matches!(self.state, State::AwaitingHello) {
            return Err(Error::InvalidArgument(
                "no ClientHello is waiting for a context".into(),
            ));
        }
        self.bufs
            .outgoing
            .extend_from_slice(&HANDSHAKE_FAILURE_ALERT);
        self.send_pending_alert();
        Ok(())
    }

    /// The server name the ClientHello asked for (known from `Progress::ClientHello` on).
    pub fn requested_server_name(&self) -> Option<&str> {
        self.hello_name.as_deref()
    }

    /// The ALPN protocols the ClientHello offered (known with the server name).
    pub fn offered_alpn(&self) -> Option<&[String]> {
        self.hello_alpn.as_deref()
    }

    fn new(fd: OwnedFd, tls: Tls, mode: KtlsMode) -> Self {
        Self::new_in(fd, State::Handshaking(tls), mode)
    }

    fn new_in(fd: OwnedFd, state: State, mode: KtlsMode) -> Self {
        Self {
            fd,
            hello_name: None,
            hello_alpn: None,
            client_check: None,
            captured: Captured::default(),
            exporter: None,
            drained: false,
            read_waits: false,
            read_chunk: MIN_READ_CHUNK,
            require_rekey: false,
            new_sessions: Vec::new(),
            latest_session: None,
            offered: SessionsSeen::default(),
            max_fragment: None,
            state,
            bufs: Buffers::default(),
            mode,
            client: None,
            info: HandshakeInfo::default(),
            offload: OffloadStatus::default(),
            peer_closed: false,
            close_sent: false,
        }
    }

    /// Bytes the previous owner of the socket had already read: handshake
    /// input that comes before anything still in the kernel.
    pub fn prepend_received(&mut self, bytes: &[u8]) {
        self.bufs.incoming.splice(0..0, bytes.iter().copied());
    }

    /// The descriptor, for readiness polling.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// What the handshake negotiated.
    pub fn info(&self) -> &HandshakeInfo {
        &self.info
    }

    /// Keeps the handshake's secrets as NSS key log lines (node:tls's
    /// 'keylog'), from the next step on; `take_keylog` hands them out.
    pub fn log_keys(&mut self, on: bool) {
        self.captured.keylog = on.then(Vec::new);
    }

    /// The key log lines logged since the last call.
    pub fn take_keylog(&mut self) -> Vec<String> {
        self.captured
            .keylog
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Keying material (RFC 8446 §7.5 / RFC 5705), as node:tls's
    /// `exportKeyingMaterial`; from the handshake's secrets, so it works
    /// the same once the kernel holds the traffic keys.
    pub fn export_keying_material(
        &self,
        length: usize,
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let exporter = self.exporter.as_ref().ok_or_else(no_exporter)?;
        exporter.export(length, label, context)
    }

    /// Which directions are offloaded.
    pub fn offload(&self) -> &OffloadStatus {
        &self.offload
    }

    /// Advances the handshake as far as the socket allows.
    pub fn handshake(&mut self) -> Result<Progress> {
        let (result, stored) = collecting(|| self.handshake_steps());
        self.note_sessions(stored);
        let result = result.map_err(|err| named_http_request(err, &self.bufs.incoming));
        if result.is_err() {
            self.send_pending_alert();
        }
        result
    }

    fn handshake_steps(&mut self) -> Result<Progress> {
        while matches!(self.state, State::AwaitingHello) {
            match peek_client_hello(&self.bufs.incoming, &mut self.bufs.outgoing)? {
                Hello::Complete { server_name, alpn } => {
                    self.hello_name = server_name;
                    self.hello_alpn = alpn;
                    return Ok(Progress::ClientHello);
                }
                Hello::Incomplete if !self.read_handshake_bytes()? => {
                    return Ok(Progress::WantRead)
                }
                Hello::Incomplete => {}
            }
        }
        loop {
            if !self.flush_outgoing()? {
                return Ok(Progress::WantWrite);
            }
            let State::Handshaking(tls) = &mut self.state else {
                return Ok(Progress::Done);
            };
            let pumped = self.captured.pump(tls, &mut self.bufs);
            if let Some(hello) = take_resolved_hello() {
                self.info.note_hello(hello);
            }
            let needs_input = match pumped? {
                Pumped::NeedInput => true,
                Pumped::Idle { .. } => tls.common().is_handshaking(),
                Pumped::PeerClosed => return Err(Error::HandshakeEof),
            };
            // A TLS 1.3 server's last flight is its session tickets: held back
            // to leave with its first answer, as OpenSSL's do. Sent alone, Nagle
            // would hold that answer for the peer's delayed ACK (~40 ms).
            let hold = !needs_input && tls.is_tls13_server();
            if !self.send_outgoing(hold)? {
                return Ok(Progress::WantWrite);
            }
            if !needs_input {
                self.finish_handshake()?;
                return Ok(Progress::Done);
            }
            if !self.read_handshake_bytes()? {
                return Ok(Progress::WantRead);
            }
        }
    }

    /// Reads at most up to the end of the next incomplete record, so that
    /// records behind the handshake stay in the kernel for kTLS to decrypt.
    fn read_handshake_bytes(&mut self) -> Result<bool> {
        let want = bytes_to_record_end(&self.bufs.incoming).inspect_err(|_| {
            // rustls never sees this record, so the alert is ours to queue.
            self.bufs.outgoing.extend_from_slice(&RECORD_OVERFLOW_ALERT);
        })?;
        match nonblocking(sys::recv_append(
            self.fd.as_fd(),
            &mut self.bufs.incoming,
            want,
        ))? {
            Some(0) => Err(Error::HandshakeEof),
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    fn finish_handshake(&mut self) -> Result<()> {
        let State::Handshaking(tls) = std::mem::replace(&mut self.state, State::Closed) else {
            return Ok(());
        };
        capture_info(
            &mut self.info,
            &tls,
            self.client.as_deref(),
            self.client_check.as_deref(),
        );
        self.exporter = conclude(&mut self.captured, &tls, &mut self.info);
        let cipher = tls
            .common()
            .negotiated_cipher_suite()
            .and_then(offload::kernel_cipher);
        let unread = self.bufs.incoming.len();
        if let Some(reason) = offload::obstacle(self.fd.as_fd(), self.mode, cipher, unread) {
            return self.stay_in_userspace(tls, reason);
        }
        if let Err(err) = offload::attach(self.fd.as_fd()) {
            return self.stay_in_userspace(tls, err.to_string());
        }
        let version = tls
            .common()
            .protocol_version()
            .unwrap_or(rustls::ProtocolVersion::TLSv1_3);
        if self.require_rekey
            && version == rustls::ProtocolVersion::TLSv1_3
            && !crate::probe::capabilities().rekey
        {
            let reason = "requireKeyUpdate: this kernel cannot follow a TLS 1.3 KeyUpdate \
                          (Linux 6.14+), so the connection stays in userspace";
            return self.stay_in_userspace(tls, reason.into());
        }
        if self.max_fragment.is_some() && !crate::probe::capabilities().tx_max_payload {
            let reason = "setMaxSendFragment: this kernel cannot cap its record size \
                          (TLS_TX_MAX_PAYLOAD_LEN, Linux 6.19+)";
            return self.stay_in_userspace(tls, reason.into());
        }
        let (secrets, kernel) = tls.into_kernel()?;
        let installed = offload::install(self.fd.as_fd(), version, &secrets);
        drop(secrets);
        offload::scrub_stack();
        let cipher = installed?;
        if let Some(max) = self.max_fragment {
            sys::set_tx_max_payload(self.fd.as_fd(), max as u16)
                .map_err(|e| Error::OffloadFailed(format!("TLS_TX_MAX_PAYLOAD_LEN: {e}")))?;
        }
        self.offload = OffloadStatus {
            tx: true,
            rx: true,
            reason: None,
        };
        self.bufs = Buffers::default();
        self.state = State::Kernel(Box::new(ControlRecords::new(kernel, cipher)));
        Ok(())
    }

    fn stay_in_userspace(&mut self, tls: Tls, reason: String) -> Result<()> {
        if self.mode == KtlsMode::Require {
            return Err(Error::Unavailable(reason));
        }
        self.bufs.release_idle();
        self.offload = OffloadStatus {
            tx: false,
            rx: false,
            reason: Some(reason),
        };
        self.state = State::Userspace(tls);
        Ok(())
    }

    /// Reads application data. `buf` should hold at least one full record
    /// (16 KiB) so that control records fit.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<ReadOutcome> {
        self.read_waits = false;
        let (result, stored) = collecting(|| self.read_records(buf));
        self.note_sessions(stored);
        result
    }

    /// After a `read()` that returned data: true when another read would
    /// find nothing until the socket is readable (userspace holds no
    /// plaintext, no pending close, and the socket came up short), so the
    /// caller can wait for readiness instead of asking again.
    pub fn read_waits(&self) -> bool {
        self.read_waits
    }

    /// True when no userspace ciphertext waits to be sent: after a
    /// `write()` on the userspace path, no `flush()` is needed.
    pub fn nothing_queued(&self) -> bool {
        self.bufs.pending_out().is_empty()
    }

    /// Client: sessions (tickets) rustls stored since the last call, as
    /// tokens for `'session'`.
    pub fn take_new_sessions(&mut self) -> Vec<SessionToken> {
        std::mem::take(&mut self.new_sessions)
    }

    /// Client: the newest session, for `getSession()`.
    pub fn latest_session(&self) -> Option<SessionToken> {
        self.latest_session
    }

    /// Client: the session a resumed handshake resumed (its ticket is
    /// `getTLSTicket()`'s until a new one comes).
    pub fn resumed_session(&self) -> Option<SessionToken> {
        if !self.info.resumed {
            return None;
        }
        match self.info.protocol.as_str() {
            "TLSv1.2" => self.offered.offered_tls12,
            _ => self.offered.offered_tls13,
        }
    }

    fn note_sessions(&mut self, seen: SessionsSeen) {
        if let Some(last) = seen.stored.last() {
            self.latest_session = Some(*last);
            self.new_sessions.extend(seen.stored);
        }
        self.offered.offered_tls13 = seen.offered_tls13.or(self.offered.offered_tls13);
        self.offered.offered_tls12 = seen.offered_tls12.or(self.offered.offered_tls12);
    }

    fn read_records(&mut self, buf: &mut [u8]) -> Result<ReadOutcome> {
        if self.bufs.plaintext.len() > self.bufs.plain_pos {
            return Ok(ReadOutcome::Data(self.bufs.take_plaintext(buf)));
        }
        if self.peer_closed {
            return Ok(ReadOutcome::Eof);
        }
        let outcome = match &mut self.state {
            State::Kernel(control) => control.read(self.fd.as_fd(), buf),
            State::Userspace(_) => self.read_userspace(buf),
            State::AwaitingHello | State::Handshaking(_) => Ok(ReadOutcome::WouldBlock),
            State::Closed => Ok(ReadOutcome::Eof),
        }
        .map_err(|err| self.fail_after_handshake(err))?;
        if outcome == ReadOutcome::Eof {
            self.peer_closed = true;
        }
        Ok(outcome)
    }

    /// Offloaded connections, whose data the host reads itself: reads the
    /// one record that stopped the host's `read()` (`EIO`: not application
    /// data) and acts on it. `buf` should hold a full record (16 KiB).
    pub fn control_record(&mut self, buf: &mut [u8]) -> Result<ControlOutcome> {
        let State::Kernel(control) = &mut self.state else {
            return Err(Error::InvalidArgument(
                "control records exist only on offloaded connections".into(),
            ));
        };
        let (outcome, stored) = collecting(|| control.next_record(self.fd.as_fd(), buf));
        self.note_sessions(stored);
        let outcome = outcome.map_err(|err| self.fail_after_handshake(err))?;
        if outcome == ControlOutcome::Eof {
            self.peer_closed = true;
        }
        Ok(outcome)
    }

    /// Offloaded connections: the host's own `read()` failed with `errno`
    /// (a record that did not authenticate, one too large...). Answers the
    /// peer with the alert it earned and returns the error to report.
    pub fn read_failed(&mut self, errno: i32) -> Error {
        self.fail_after_handshake(record::read_error(io::Error::from_raw_os_error(errno)))
    }

    fn read_userspace(&mut self, buf: &mut [u8]) -> Result<ReadOutcome> {
        loop {
            let State::Userspace(tls) = &mut self.state else {
                return Ok(ReadOutcome::Eof);
            };
            let pumped = tls.pump(&mut self.bufs, Offer::Nothing)?;
            // Replies rustls queued (e.g. to a key update) go out now.
            self.flush_outgoing()?;
            if self.bufs.plaintext.len() > self.bufs.plain_pos {
                let n = self.bufs.take_plaintext(buf);
                // The next read would only find the socket empty: say so
                // now, which saves the caller that read.
                if self.drained && pumped != Pumped::PeerClosed && self.bufs.plaintext.is_empty() {
                    self.drained = false;
                    self.read_waits = true;
                    self.bufs.release_idle();
                }
                return Ok(ReadOutcome::Data(n));
            }
            if pumped == Pumped::PeerClosed {
                return Ok(ReadOutcome::Eof);
            }
            // The last read came up short: the socket is most likely empty,
            // so wait for readiness instead of paying a read for EAGAIN (as
            // libuv does). Data that came in since makes the re-arm report at once.
            if std::mem::take(&mut self.drained) {
                self.bufs.release_idle();
                return Ok(ReadOutcome::WouldBlock);
            }
            match self.read_ciphertext()? {
                ReadOutcome::Data(_) => continue,
                other => return Ok(other),
            }
        }
    }

    fn read_ciphertext(&mut self) -> Result<ReadOutcome> {
        let chunk = self.read_chunk;
        match nonblocking(sys::recv_append(
            self.fd.as_fd(),
            &mut self.bufs.incoming,
            chunk,
        ))? {
            Some(0) => Ok(ReadOutcome::Eof),
            Some(n) => {
                self.drained = n < chunk;
                self.read_chunk = next_read_chunk(chunk, n);
                Ok(ReadOutcome::Data(n))
            }
            None => {
                self.bufs.release_idle();
                Ok(ReadOutcome::WouldBlock)
            }
        }
    }

    /// Writes application data. Userspace ciphertext that the socket did not
    /// take yet is kept and sent by later calls or `flush`.
    pub fn write(&mut self, data: &[u8]) -> Result<WriteOutcome> {
        if self.close_sent {
            return Err(Error::Io(io::Error::from(io::ErrorKind::BrokenPipe)));
        }
        if !self.flush()? {
            return Ok(WriteOutcome::WouldBlock);
        }
        match &mut self.state {
            State::Kernel(_) => write_plain(self.fd.as_fd(), data),
            State::Userspace(tls) => {
                const CHUNK: usize = 256 * 1024;
                let chunk = &data[..data.len().min(CHUNK)];
                let mut taken = 0;
                // rustls fragments at the configured size; a smaller cap
                // (setMaxSendFragment) is one offer per record.
                for piece in chunk.chunks(self.max_fragment.unwrap_or(CHUNK)) {
                    let Pumped::Idle { encrypted } =
                        tls.pump(&mut self.bufs, Offer::Plaintext(piece))?
                    else {
                        return Err(Error::Io(io::Error::from(io::ErrorKind::BrokenPipe)));
                    };
                    taken += encrypted;
                }
                self.flush_outgoing()?;
                Ok(WriteOutcome::Written(taken))
            }
            State::AwaitingHello | State::Handshaking(_) => Ok(WriteOutcome::WouldBlock),
            State::Closed => Err(Error::Io(io::Error::from(io::ErrorKind::BrokenPipe))),
        }
    }

    /// Sends whatever is queued (userspace ciphertext, a key update reply).
    /// Returns true when nothing is left.
    pub fn flush(&mut self) -> Result<bool> {
        if let State::Kernel(control) = &mut self.state {
            return control.flush(self.fd.as_fd());
        }
        self.flush_outgoing()
    }

    /// Sends close_notify (RFC 8446 §6.1). Returns false when the socket
    /// could not take it yet; call again when writable.
    pub fn close_notify(&mut self) -> Result<bool> {
        if !self.flush()? {
            return Ok(false);
        }
        match &mut self.state {
            State::Kernel(control) => control.send_close_notify(self.fd.as_fd()),
            State::Userspace(tls) => {
                if !self.close_sent {
                    tls.pump(&mut self.bufs, Offer::CloseNotify)?;
                    self.close_sent = true;
                }
                self.flush_outgoing()
            }
            State::AwaitingHello | State::Handshaking(_) | State::Closed => Ok(true),
        }
    }

    /// Offload a TLS 1.3 connection only where the kernel can follow the
    /// peer's KeyUpdates (Linux 6.14+); else it stays in userspace, where
    /// rustls follows them. Before the handshake ends.
    pub fn require_key_update(&mut self) {
        self.require_rekey = true;
    }

    /// node:tls's `setMaxSendFragment`: the largest plaintext per record we
    /// send, 512 to 16384 bytes. False when out of range, or when the kernel
    /// already sends this connection's records and cannot cap them. Before
    /// the handshake ends, a kernel that cannot keeps the connection in
    /// userspace.
    pub fn set_max_send_fragment(&mut self, size: usize) -> bool {
        if !(512..=16384).contains(&size) {
            return false;
        }
        if let State::Kernel(_) = self.state {
            if sys::set_tx_max_payload(self.fd.as_fd(), size as u16).is_err() {
                return false;
            }
        }
        self.max_fragment = Some(size);
        true
    }

    /// A TLS 1.3 KeyUpdate of our sending key (`request_peer`: ask the peer
    /// to update its own; rustls always asks). Returns false while the
    /// socket cannot take the record yet: `flush` sends it when writable.
    pub fn update_keys(&mut self, request_peer: bool) -> Result<bool> {
        match &mut self.state {
            State::Kernel(control) => control.update_keys(self.fd.as_fd(), request_peer),
            State::Userspace(tls) => {
                if tls.common().protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
                    return Err(Error::InvalidState("KeyUpdate exists only in TLS 1.3"));
                }
                tls.pump(&mut self.bufs, Offer::KeyUpdate)?;
                // Queued in order: what the socket does not take now goes
                // out before any later write.
                self.flush_outgoing()?;
                Ok(true)
            }
            _ => Err(Error::InvalidState(
                "TLS socket connection must be securely established",
            )),
        }
    }

    /// Offloaded connections: records sealed under the current sending key.
    pub fn tx_records(&self) -> Result<u64> {
        match &self.state {
            State::Kernel(control) => control.tx_records(self.fd.as_fd()),
            _ => Err(Error::InvalidState(
                "only offloaded connections count records",
            )),
        }
    }

    /// `TCP_NODELAY`.
    pub fn set_no_delay(&self, on: bool) -> Result<()> {
        Ok(sys::set_no_delay(self.fd.as_fd(), on)?)
    }

    /// `SO_KEEPALIVE` with the first probe after `idle_secs`.
    pub fn set_keep_alive(&self, on: bool, idle_secs: u32) -> Result<()> {
        Ok(sys::set_keep_alive(self.fd.as_fd(), on, idle_secs)?)
    }

    /// Half-closes the TCP connection after everything queued was sent.
    pub fn shutdown_write(&mut self) -> Result<()> {
        Ok(sys::shutdown_write(self.fd.as_fd())?)
    }

    fn flush_outgoing(&mut self) -> Result<bool> {
        self.send_outgoing(false)
    }

    /// `hold`: sent with `MSG_MORE`, so that it goes out with the next send.
    fn send_outgoing(&mut self, hold: bool) -> Result<bool> {
        while !self.bufs.pending_out().is_empty() {
            let out = self.bufs.pending_out();
            let sent = if hold {
                sys::send_more(self.fd.as_fd(), out)
            } else {
                sys::send(self.fd.as_fd(), out)
            };
            let Some(n) = nonblocking(sent)? else {
                return Ok(false);
            };
            self.bufs.consume_out(n);
        }
        Ok(true)
    }

    /// A record the peer sent broke the connection: answer with the alert
    /// RFC 8446 names (rustls queued it on the userspace path; the kernel
    /// path builds it), drop what else is unread so the close is a FIN, and
    /// refuse further use.
    fn fail_after_handshake(&mut self, err: Error) -> Error {
        match &mut self.state {
            State::Kernel(_) => {
                if let Some(alert) = err.alert_to_send() {
                    record::send_fatal_alert(self.fd.as_fd(), alert);
                }
            }
            State::Userspace(tls) => {
                let _ = tls.pump(&mut self.bufs, Offer::Nothing);
                let _ = self.flush_outgoing();
            }
            _ => return err,
        }
        let _ = sys::discard_input(self.fd.as_fd(), 64 * 1024);
        self.state = State::Closed;
        match err {
            Error::Tls(tls) => Error::Record(tls),
            other => other,
        }
    }

    /// After a handshake error rustls queues an alert; give it one chance.
    /// What the peer sent after the bad record is read and dropped, so the
    /// close that follows is a FIN the peer reads as the end, as node:tls's
    /// server gives a client that sent some junk; a peer still sending past
    /// 16 KiB gets an RST, as a node:tls server gives one that floods.
    fn send_pending_alert(&mut self) {
        if let State::Handshaking(tls) = &mut self.state {
            let _ = tls.pump(&mut self.bufs, Offer::Nothing);
        }
        let _ = self.flush_outgoing();
        if !sys::discard_input(self.fd.as_fd(), 16 * 1024) {
            let _ = sys::reset_on_close(self.fd.as_fd());
        }
        self.state = State::Closed;
    }
}

pub(crate) fn no_exporter() -> Error {
    Error::InvalidArgument("no keying material: the handshake has not finished".into())
}

/// Records what the handshake negotiated, before the connection object is
/// converted (the kernel's knows none of it).
pub(crate) fn capture_info(
    info: &mut HandshakeInfo,
    tls: &Tls,
    client: Option<&ClientContext>,
    client_check: Option<&ClientChainCheck>,
) {
    let common = tls.common();
    info.alpn_protocol = common.alpn_protocol().map(<[u8]>::to_vec);
    let chain: Vec<_> = common.peer_certificates().unwrap_or_default().to_vec();
    info.peer_certificates = chain.iter().map(|c| c.as_ref().to_vec()).collect();
    if let Some(suite) = common.negotiated_cipher_suite() {
        // rustls says TLS13_AES_128_GCM_SHA256; IANA (and Node) say TLS_AES_128_GCM_SHA256.
        let name = suite.suite().as_str().unwrap_or_default();
        info.cipher_suite = name.replacen("TLS13_", "TLS_", 1);
    }
    info.resumed = common.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    info.key_exchange_group = common
        .negotiated_key_exchange_group()
        .map(|group| format!("{:?}", group.name()));
    info.protocol = match common.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
        _ => "TLSv1.3".into(),
    };
    if let (Some(context), Some(host)) = (client, &info.server_name) {
        info.chain_error = context.chain_error(&chain, host);
    }
    if let Some(check) = client_check {
        info.chain_error = check.chain_error(&chain);
    }
}

/// At the handshake's end: the Finished messages into `info`, and the
/// exporter, from what the handshake logged.
pub(crate) fn conclude(
    captured: &mut Captured,
    tls: &Tls,
    info: &mut HandshakeInfo,
) -> Option<Exporter> {
    let suite = tls.common().negotiated_cipher_suite()?;
    let learned = captured.take_learned(suite, tls.is_client());
    info.finished = learned.finished;
    info.peer_finished = learned.peer_finished;
    info.shared_sigalgs = crate::sigalgs::node_names(&learned.shared_sigalgs);
    captured.take_exporter(suite)
}

/// How many bytes complete the first incomplete record in `buf` (a 5-byte
/// header, then the length it announces): a handshake read never passes the
/// end of the record it is in. An error for a plaintext record too large.
pub fn bytes_to_record_end(buf: &[u8]) -> Result<usize> {
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        if rest.len() < 5 {
            return Ok(5 - rest.len());
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len > MAX_PLAINTEXT_RECORD && rest[0] != sys::CONTENT_APPLICATION_DATA {
            return Err(Error::Tls(rustls::Error::PeerSentOversizedRecord));
        }
        let total = 5 + len;
        if rest.len() < total {
            return Ok(total - rest.len());
        }
        at += total;
    }
}

/// RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes. Handshake,
/// alert and change_cipher_spec records in a handshake are plaintext (those
/// TLS 1.2 encrypts, Finished and alerts, are far smaller).
const MAX_PLAINTEXT_RECORD: usize = 1 << 14;

/// A plaintext fatal `record_overflow` alert, as the handshake's records are.
const RECORD_OVERFLOW_ALERT: [u8; 7] = [sys::CONTENT_ALERT, 3, 3, 0, 2, 2, 22];

fn write_plain(fd: std::os::fd::BorrowedFd<'_>, data: &[u8]) -> Result<WriteOutcome> {
    Ok(match nonblocking(sys::send(fd, data))? {
        Some(n) => WriteOutcome::Written(n),
        None => WriteOutcome::WouldBlock,
    })
}

/// The smallest and largest userspace reads (a TLS record is up to 16 KiB
/// and some; rustls waits for whole records, so small reads only cost calls).
const MIN_READ_CHUNK: usize = 4 * 1024;
const MAX_READ_CHUNK: usize = 64 * 1024;

/// A read that filled its chunk asks for twice as much next; a short one
/// for about what it got.
fn next_read_chunk(chunk: usize, got: usize) -> usize {
    let next = if got >= chunk {
        chunk * 2
    } else {
        got.next_power_of_two()
    };
    next.clamp(MIN_READ_CHUNK, MAX_READ_CHUNK)
}

#[cfg(test)]
mod tests {
    use super::{bytes_to_record_end, next_read_chunk, MAX_READ_CHUNK, MIN_READ_CHUNK};

    fn want(buf: &[u8]) -> usize {
        bytes_to_record_end(buf).unwrap()
    }

    #[test]
    fn reads_header_first() {
        assert_eq!(want(&[]), 5);
        assert_eq!(want(&[22, 3, 3]), 2);
    }

    #[test]
    fn stops_at_the_end_of_the_announced_record() {
        assert_eq!(want(&[22, 3, 3, 0, 10]), 10);
        assert_eq!(want(&[22, 3, 3, 0, 2, 1]), 1);
    }

    #[test]
    fn skips_complete_records() {
        assert_eq!(want(&[22, 3, 3, 0, 1, 9, 23, 3]), 3);
    }

    #[test]
    fn plaintext_records_over_2_14_bytes_are_refused() {
        assert_eq!(want(&[22, 3, 1, 0x40, 0x00]), 1 << 14);
        assert!(bytes_to_record_end(&[22, 3, 1, 0x40, 0x01]).is_err());
        // Encrypted TLS 1.3 records may carry 2^14 + 256 bytes.
        assert_eq!(want(&[23, 3, 3, 0x41, 0x00]), 0x4100);
    }

    #[test]
    fn read_chunks_follow_what_reads_get() {
        assert_eq!(next_read_chunk(MIN_READ_CHUNK, 62), MIN_READ_CHUNK);
        assert_eq!(
            next_read_chunk(MIN_READ_CHUNK, MIN_READ_CHUNK),
            2 * MIN_READ_CHUNK
        );
        assert_eq!(
            next_read_chunk(MAX_READ_CHUNK, MAX_READ_CHUNK),
            MAX_READ_CHUNK
        );
        assert_eq!(next_read_chunk(MAX_READ_CHUNK, 20_000), 32 * 1024);
    }
}
