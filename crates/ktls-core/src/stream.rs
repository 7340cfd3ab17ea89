//! A TLS connection over a transport that is not a descriptor (a JavaScript
//! `Duplex`, a TLS socket inside another): ciphertext comes in and goes out
//! as bytes the caller moves. Nothing can be offloaded, so the whole
//! connection stays in rustls; reading ahead is harmless here.

use std::io;
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;

use crate::config::{take_resolved_hello, ClientChainCheck, ClientContext, ServerContext};
use crate::conn::{Buffers, Offer, Pumped, Tls};
use crate::error::{Error, Result};
use crate::exporter::{Captured, Exporter};
use crate::hello::{named_http_request, peek_client_hello, Hello, HANDSHAKE_FAILURE_ALERT};
use crate::session::{capture_info, conclude, no_exporter, HandshakeInfo};

/// Where a connection stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamState {
    /// The handshake is over: `info()` is final and data may flow.
    pub secure: bool,
    /// The peer sent close_notify.
    pub peer_closed: bool,
    /// A `server_choosing` connection has the ClientHello: call `accept_with`.
    pub client_hello: bool,
}

/// One connection whose records the caller carries.
pub struct StreamSession {
    /// None while a server waits for the ClientHello to choose its configuration.
    tls: Option<Tls>,
    hello_name: Option<String>,
    /// The ALPN protocols that ClientHello offered.
    hello_alpn: Option<Vec<String>>,
    bufs: Buffers,
    client: Option<Arc<ClientContext>>,
    /// A server with `requestCert`: how the client's chain is judged.
    client_check: Option<Arc<ClientChainCheck>>,
    captured: Captured,
    exporter: Option<Exporter>,
    info: HandshakeInfo,
    handshaking: bool,
    peer_closed: bool,
    close_sent: bool,
}

impl std::fmt::Debug for StreamSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSession")
            .field("handshaking", &self.handshaking)
            .finish_non_exhaustive()
    }
}

const CHUNK: usize = 256 * 1024;

impl StreamSession {
    /// A client connection to `server_name` (a DNS name or an IP address).
    pub fn client(context: Arc<ClientContext>, server_name: &str) -> Result<Self> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| Error::InvalidArgument(format!("servername: invalid {server_name:?}")))?;
        let conn = UnbufferedClientConnection::new(context.config.clone(), name)?;
        let mut session = Self::new(Some(Tls::Client(conn)));
        session.info.server_name = Some(server_name.to_owned());
        session.captured.our_sigalgs = context.sigalgs.clone();
        session.client = Some(context);
        Ok(session)
    }

    /// A server connection.
    pub fn server(context: &ServerContext) -> Result<Self> {
        let conn = UnbufferedServerConnection::new(context.config.clone())?;
        let mut session = Self::new(Some(Tls::Server(conn)));
        session.client_check = context.client_check.clone();
        session.captured.our_sigalgs = context.sigalgs.clone();
        Ok(session)
    }

    /// A server connection whose configuration is chosen once the
    /// ClientHello is in (`client_hello` in the state, then `accept_with`).
    pub fn server_choosing() -> Self {
        Self::new(None)
    }

    /// Continues a `server_choosing` connection with `context`.
    pub fn accept_with(&mut self, context: &ServerContext) -> Result<StreamState> {
        if self.tls.is_some() {
            return Err(Error::InvalidArgument(
                "no ClientHello is waiting for a context".into(),
            ));
        }
        let conn = UnbufferedServerConnection::new(context.config.clone())?;
        self.tls = Some(Tls::Server(conn));
        self.client_check = context.client_check.clone();
        self.captured.our_sigalgs = context.sigalgs.clone();
        self.advance()
    }

    /// Refuses a `server_choosing` connection's ClientHello (no certificate
    /// to serve): a fatal `handshake_failure` alert is the output.
    pub fn refuse_hello(&mut self) -> Result<()> {
        if self.tls.is_some() {
            return Err(Error::InvalidArgument(
                "no ClientHello is waiting for a context".into(),
            ));
        }
        self.bufs
            .outgoing
            .extend_from_slice(&HANDSHAKE_FAILURE_ALERT);
        Ok(())
    }

    /// The server name the ClientHello asked for.
    pub fn requested_server_name(&self) -> Option<&str> {
        self.hello_name.as_deref()
    }

    /// The ALPN protocols the ClientHello offered (known with the server name).
    pub fn offered_alpn(&self) -> Option<&[String]> {
        self.hello_alpn.as_deref()
    }

    fn new(tls: Option<Tls>) -> Self {
        Self {
            tls,
            hello_name: None,
            hello_alpn: None,
            bufs: Buffers::default(),
            client: None,
            client_check: None,
            captured: Captured::default(),
            exporter: None,
            info: HandshakeInfo::default(),
            handshaking: true,
            peer_closed: false,
            close_sent: false,
        }
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

    /// Keying material, as `Session::export_keying_material`.
    pub fn export_keying_material(
        &self,
        length: usize,
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let exporter = self.exporter.as_ref().ok_or_else(no_exporter)?;
        exporter.export(length, label, context)
    }

    /// What the handshake negotiated (final once `secure`).
    pub fn info(&self) -> &HandshakeInfo {
        &self.info
    }

    /// Takes ciphertext the transport delivered and runs rustls over it.
    /// On error, the alert rustls queued is left in the output.
    pub fn receive(&mut self, ciphertext: &[u8]) -> Result<StreamState> {
        self.bufs.incoming.extend_from_slice(ciphertext);
        self.advance()
    }

    /// Runs rustls on what it has (a client's first flight needs no input).
    pub fn advance(&mut self) -> Result<StreamState> {
        let result = self
            .step()
            .map_err(|err| named_http_request(err, &self.bufs.incoming));
        if result.is_err() {
            // rustls encodes the alert for the error on the next turn.
            if let Some(tls) = self.tls.as_mut() {
                let _ = tls.pump(&mut self.bufs, Offer::Nothing);
            }
        }
        result
    }

    fn step(&mut self) -> Result<StreamState> {
        if self.peer_closed {
            return Ok(self.state());
        }
        let Some(tls) = self.tls.as_mut() else {
            // Waiting for the ClientHello: nothing is sent before a context is chosen.
            let hello = peek_client_hello(&self.bufs.incoming, &mut self.bufs.outgoing)?;
            if let Hello::Complete { server_name, alpn } = hello {
                self.hello_name = server_name;
                self.hello_alpn = alpn;
                return Ok(StreamState {
                    client_hello: true,
                    ..self.state()
                });
            }
            return Ok(self.state());
        };
        let pumped = self.captured.pump(tls, &mut self.bufs);
        if let Some(hello) = take_resolved_hello() {
            self.info.note_hello(hello);
        }
        if pumped? == Pumped::PeerClosed {
            if self.handshaking {
                return Err(Error::HandshakeEof);
            }
            self.peer_closed = true;
        }
        if self.handshaking && !tls.common().is_handshaking() {
            self.handshaking = false;
            capture_info(
                &mut self.info,
                tls,
                self.client.as_deref(),
                self.client_check.as_deref(),
            );
            self.exporter = conclude(&mut self.captured, tls, &mut self.info);
        }
        Ok(self.state())
    }

    fn state(&self) -> StreamState {
        StreamState {
            secure: !self.handshaking,
            peer_closed: self.peer_closed,
            client_hello: false,
        }
    }

    /// Seals application data into records, queued as output.
    pub fn encrypt(&mut self, data: &[u8]) -> Result<()> {
        let tls = match self.tls.as_mut() {
            Some(tls) if !self.close_sent && !self.handshaking => tls,
            _ => return Err(Error::Io(io::Error::from(io::ErrorKind::BrokenPipe))),
        };
        for chunk in data.chunks(CHUNK) {
            match tls.pump(&mut self.bufs, Offer::Plaintext(chunk))? {
                Pumped::Idle { encrypted } if encrypted == chunk.len() => {}
                _ => return Err(Error::Io(io::Error::from(io::ErrorKind::BrokenPipe))),
            }
        }
        Ok(())
    }

    /// Queues close_notify (once); the read side stays open.
    pub fn close_notify(&mut self) -> Result<()> {
        let tls = match self.tls.as_mut() {
            Some(tls) if !self.close_sent && !self.handshaking => tls,
            _ => return Ok(()),
        };
        tls.pump(&mut self.bufs, Offer::CloseNotify)?;
        self.close_sent = true;
        Ok(())
    }

    /// Decrypted application data not handed out yet.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        // Handed out whole, so the position is always 0 here.
        std::mem::take(&mut self.bufs.plaintext)
    }

    /// Ciphertext for the transport to send, in order.
    pub fn take_output(&mut self) -> Vec<u8> {
        // Handed out whole, so the position is always 0 here.
        std::mem::take(&mut self.bufs.outgoing)
    }
}
