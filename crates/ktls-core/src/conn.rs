//! A uniform face over rustls's unbuffered client and server connections,
//! and the one loop (`pump`) that drives either through its states.

use std::cell::RefCell;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::kernel::KernelConnection;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, UnbufferedStatus, WriteTraffic,
};
use rustls::{CommonState, ExtractedSecrets};

use crate::error::{Error, Result};

/// Byte buffers around a userspace connection.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    /// Ciphertext received and not yet consumed by rustls.
    pub(crate) incoming: Vec<u8>,
    /// Ciphertext waiting to be sent, from `out_pos` on.
    pub(crate) outgoing: Vec<u8>,
    pub(crate) out_pos: usize,
    /// Plaintext decrypted and not yet handed to the reader, from `plain_pos` on.
    pub(crate) plaintext: Vec<u8>,
    pub(crate) plain_pos: usize,
}

impl Buffers {
    pub(crate) fn pending_out(&self) -> &[u8] {
        &self.outgoing[self.out_pos..]
    }

    pub(crate) fn consume_out(&mut self, n: usize) {
        self.out_pos += n;
        if self.out_pos == self.outgoing.len() {
            self.outgoing.clear();
            self.out_pos = 0;
        }
    }

    /// Gives back the memory of empty buffers, so idle connections are small.
    pub(crate) fn release_idle(&mut self) {
        for buf in [&mut self.incoming, &mut self.plaintext, &mut self.outgoing] {
            if buf.is_empty() {
                *buf = Vec::new();
            }
        }
    }

    /// Copies buffered plaintext into `buf`; returns how much.
    pub(crate) fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let available = &self.plaintext[self.plain_pos..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.plain_pos += n;
        if self.plain_pos == self.plaintext.len() {
            self.plaintext.clear();
            self.plain_pos = 0;
        }
        n
    }
}

/// Where `pump` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// rustls needs more ciphertext from the peer.
    NeedInput,
    /// Nothing to do without input; application data may be written
    /// (`encrypted` bytes of the offered plaintext were).
    Idle { encrypted: usize },
    /// The peer sent close_notify.
    PeerClosed,
}

/// What `pump` should do when the connection can take application data.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Offer<'a> {
    Nothing,
    Plaintext(&'a [u8]),
    CloseNotify,
    /// A TLS 1.3 KeyUpdate (rustls asks the peer to update too).
    KeyUpdate,
}

/// Either side's unbuffered connection.
pub(crate) enum Tls {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// Either side's connection after conversion to kernel TLS.
pub(crate) enum Kernel {
    Client(KernelConnection<ClientConnectionData>),
    Server(KernelConnection<ServerConnectionData>),
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Client(_) => "Tls::Client",
            Self::Server(_) => "Tls::Server",
        })
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Client(_) => "Kernel::Client",
            Self::Server(_) => "Kernel::Server",
        })
    }
}

/// The one method both unbuffered connection types share, as a trait so a
/// single loop can drive either.
trait Process {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Process for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Process for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Tls {
    pub(crate) fn common(&self) -> &CommonState {
        match self {
            Self::Client(c) => c,
            Self::Server(c) => c,
        }
    }

    pub(crate) fn is_client(&self) -> bool {
        matches!(self, Self::Client(_))
    }

    /// A server that negotiated TLS 1.3 (it speaks last only to send tickets).
    pub(crate) fn is_tls13_server(&self) -> bool {
        matches!(self, Self::Server(_))
            && self.common().protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
    }

    /// Runs rustls until it needs input or is idle, collecting plaintext
    /// and ciphertext into `bufs`.
    pub(crate) fn pump(&mut self, bufs: &mut Buffers, offer: Offer<'_>) -> Result<Pumped> {
        match self {
            Self::Client(c) => pump_loop(c, bufs, offer),
            Self::Server(c) => pump_loop(c, bufs, offer),
        }
    }

    /// Converts into the kernel's connection object and the traffic secrets.
    pub(crate) fn into_kernel(self) -> Result<(ExtractedSecrets, Kernel)> {
        Ok(match self {
            Self::Client(c) => {
                let (secrets, k) = c.dangerous_into_kernel_connection()?;
                (secrets, Kernel::Client(k))
            }
            Self::Server(c) => {
                let (secrets, k) = c.dangerous_into_kernel_connection()?;
                (secrets, Kernel::Server(k))
            }
        })
    }
}

impl Kernel {
    pub(crate) fn update_rx(&mut self) -> Result<(u64, rustls::ConnectionTrafficSecrets)> {
        Ok(match self {
            Self::Client(k) => k.update_rx_secret()?,
            Self::Server(k) => k.update_rx_secret()?,
        })
    }

    pub(crate) fn update_tx(&mut self) -> Result<(u64, rustls::ConnectionTrafficSecrets)> {
        Ok(match self {
            Self::Client(k) => k.update_tx_secret()?,
            Self::Server(k) => k.update_tx_secret()?,
        })
    }

    pub(crate) fn version(&self) -> rustls::ProtocolVersion {
        match self {
            Self::Client(k) => k.protocol_version(),
            Self::Server(k) => k.protocol_version(),
        }
    }

    /// A NewSessionTicket's body: stored by a client, a protocol error for a server.
    pub(crate) fn new_session_ticket(&mut self, body: &[u8]) -> Result<()> {
        match self {
            Self::Client(k) => Ok(k.handle_new_session_ticket(body)?),
            Self::Server(_) => Err(Error::violation(
                rustls::AlertDescription::UnexpectedMessage,
                "client sent a NewSessionTicket",
            )),
        }
    }
}

fn pump_loop<C: Process>(conn: &mut C, bufs: &mut Buffers, mut offer: Offer<'_>) -> Result<Pumped> {
    loop {
        let UnbufferedStatus { discard, state } = conn.process(&mut bufs.incoming);
        let outcome = match state? {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    bufs.plaintext.extend_from_slice(record?.payload);
                }
                None
            }
            ConnectionState::EncodeTlsData(mut data) => {
                encode(&mut data, &mut bufs.outgoing)?;
                None
            }
            // Sent later by the caller's flush, in order, exactly once.
            ConnectionState::TransmitTlsData(transmit) => {
                transmit.done();
                None
            }
            ConnectionState::BlockedHandshake => Some(Pumped::NeedInput),
            ConnectionState::PeerClosed | ConnectionState::Closed => Some(Pumped::PeerClosed),
            ConnectionState::WriteTraffic(traffic) if matches!(offer, Offer::KeyUpdate) => {
                // Queues the KeyUpdate; the next round encodes it.
                traffic.refresh_traffic_keys()?;
                offer = Offer::Nothing;
                None
            }
            ConnectionState::WriteTraffic(mut traffic) => {
                let encrypted = apply_offer(&mut traffic, offer, &mut bufs.outgoing)?;
                offer = Offer::Nothing;
                Some(Pumped::Idle { encrypted })
            }
            ConnectionState::ReadEarlyData(_) => {
                return Err(Error::violation(
                    rustls::AlertDescription::UnexpectedMessage,
                    "unexpected early data",
                ));
            }
            _ => {
                return Err(Error::violation(
                    rustls::AlertDescription::InternalError,
                    "unexpected rustls state",
                ))
            }
        };
        bufs.incoming.drain(..discard);
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
    }
}

fn apply_offer<Data>(
    traffic: &mut WriteTraffic<'_, Data>,
    offer: Offer<'_>,
    outgoing: &mut Vec<u8>,
) -> Result<usize> {
    match offer {
        Offer::Nothing | Offer::KeyUpdate => Ok(0),
        Offer::Plaintext(data) => {
            append(outgoing, sealed_len(data.len()), |out| {
                traffic.encrypt(data, out)
            })?;
            Ok(data.len())
        }
        Offer::CloseNotify => {
            append(outgoing, 64, |out| traffic.queue_close_notify(out))?;
            Ok(0)
        }
    }
}

/// Upper bound of ciphertext for `n` plaintext bytes: per 16 KiB record a
/// 5-byte header, a content-type byte and a 16-byte tag.
fn sealed_len(n: usize) -> usize {
    n + (n / 16384 + 1) * 22
}

fn append(
    outgoing: &mut Vec<u8>,
    room: usize,
    mut write: impl FnMut(&mut [u8]) -> std::result::Result<usize, EncryptError>,
) -> Result<()> {
    let start = outgoing.len();
    outgoing.resize(start + room, 0);
    match write(&mut outgoing[start..]) {
        Ok(n) => {
            outgoing.truncate(start + n);
            Ok(())
        }
        Err(EncryptError::InsufficientSize(size)) => {
            outgoing.resize(start + size.required_size, 0);
            let n = write(&mut outgoing[start..]).map_err(encrypt_error)?;
            outgoing.truncate(start + n);
            Ok(())
        }
        Err(err) => {
            outgoing.truncate(start);
            Err(encrypt_error(err))
        }
    }
}

fn encrypt_error(err: EncryptError) -> Error {
    Error::Tls(rustls::Error::General(err.to_string()))
}

thread_local! {
    /// Where handshake messages are encoded before joining `outgoing`: kept
    /// initialised, so a message costs a copy of its length instead of
    /// zeroing room for the largest one. It only ever holds wire bytes.
    static ENCODE_SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 4096]);
}

fn encode<Data>(data: &mut EncodeTlsData<'_, Data>, outgoing: &mut Vec<u8>) -> Result<()> {
    ENCODE_SCRATCH.with_borrow_mut(|scratch| {
        let written = match data.encode(scratch) {
            Err(EncodeError::InsufficientSize(size)) => {
                scratch.resize(size.required_size, 0);
                data.encode(scratch)
            }
            other => other,
        };
        let n = written.map_err(|e| Error::Tls(rustls::Error::General(e.to_string())))?;
        outgoing.extend_from_slice(&scratch[..n]);
        Ok(())
    })
}
