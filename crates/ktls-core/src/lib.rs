//! Kernel TLS for rustls connections, with no Node.js dependency.
//!
//! rustls performs the handshake over a non-blocking TCP descriptor
//! ([`Session`]); the traffic secrets and sequence numbers then go to the
//! kernel (`TCP_ULP "tls"`, `TLS_TX`, `TLS_RX`), verified by reading them
//! back. When the kernel cannot take a connection it stays on rustls in
//! userspace, behind the same API; [`StreamSession`] runs it over a transport
//! that is not a descriptor. [`Reactor`] reports socket readiness,
//! from its own thread or through the host's libuv loop ([`LoopWatch`]).

mod config;
mod conn;
mod control;
mod crypto_info;
mod error;
mod exporter;
mod hello;
mod host_loop;
mod offload;
mod outcome;
mod probe;
mod random;
mod reactor;
mod record;
mod sendfile;
mod session;
mod sessions;
mod sigalgs;
mod stream;
pub mod sys;
mod tickets;
mod transcript;
mod wiping_alloc;
mod x509;

pub use config::{
    ClientContext, ClientOptions, CommonOptions, Identity, ServerContext, ServerOptions,
    DEFAULT_CIPHERS,
};
/// The post-handshake record rules, exposed for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub use control::{ControlParser, PostHandshake, Step, MAX_POST_HANDSHAKE_MESSAGE};
pub use crypto_info::{CryptoInfo, KernelCipher};
pub use error::{Error, Result};
pub use host_loop::LoopWatch;
pub use offload::{KtlsMode, OffloadStatus};
pub use outcome::{ControlOutcome, Progress, ReadOutcome, WriteOutcome};
pub use probe::{capabilities, offload_with_fixed_key, Capabilities};
pub use reactor::{Interest, Reactor, READABLE, WRITABLE};
pub use sendfile::{FileSend, Sent};
/// The handshake's record-exact read size, exposed for the fuzz targets.
#[doc(hidden)]
pub use session::bytes_to_record_end;
pub use session::{HandshakeInfo, Session};
pub use sessions::{session_ticket, SessionToken};
pub use stream::{StreamSession, StreamState};
pub use tickets::{TicketKeys, DEFAULT_SESSION_TIMEOUT, TICKET_KEYS_LEN};
pub use wiping_alloc::WipingAllocator;
