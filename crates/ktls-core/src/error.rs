//! The one error type of the crate. Every variant maps to a stable `code`
//! string that the Node binding passes on unchanged.

use std::fmt;
use std::io;

/// Why a connection or an operation failed.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// rustls rejected the handshake (peer misbehaviour, unsupported
    /// parameters, garbage instead of TLS) or, on the userspace path, a record.
    Tls(rustls::Error),
    /// The peer sent a fatal alert; the name is the alert's description.
    AlertReceived(rustls::AlertDescription),
    /// The kernel could not decrypt or authenticate a record (`EBADMSG`).
    BadRecord,
    /// After the handshake the peer broke the record protocol (a record too
    /// large, an empty or truncated alert, a misplaced KeyUpdate...); `alert`
    /// is what RFC 8446 says to answer with, and was sent.
    Violation {
        /// The alert RFC 8446 names for this violation.
        alert: rustls::AlertDescription,
        /// What was wrong, for the message.
        reason: &'static str,
    },
    /// rustls rejected a record after the handshake (userspace path).
    Record(rustls::Error),
    /// The peer asked for a TLS 1.3 key update and this kernel cannot rekey
    /// (Linux before 6.14).
    KeyUpdateUnsupported,
    /// Kernel TLS was required but this kernel (or this socket) cannot do it.
    Unavailable(String),
    /// The ULP was attached but a direction could not be offloaded, or the
    /// read-back disagreed with what was set. The socket must not be used.
    OffloadFailed(String),
    /// The caller used the API wrongly (bad PEM, bad option).
    InvalidArgument(String),
    /// A server was sent plain HTTP instead of a ClientHello.
    HttpRequest,
    /// The private key is not the one of the certificate it came with.
    KeyMismatch,
    /// The operation does not fit the connection's state or protocol.
    InvalidState(&'static str),
    /// The peer reset the connection.
    ConnectionReset,
    /// The connection ended in the middle of the handshake.
    HandshakeEof,
    /// Any other socket error.
    Io(io::Error),
}

impl Error {
    /// Stable code for JavaScript; follows Node's names where Node has one.
    pub fn code(&self) -> String {
        match self {
            Self::Tls(err) => tls_code(err),
            Self::AlertReceived(alert) => alert_code(*alert),
            Self::BadRecord => "ERR_KTLS_BAD_RECORD".into(),
            Self::Violation { .. } => "ERR_KTLS_BAD_RECORD".into(),
            Self::Record(rustls::Error::AlertReceived(alert)) => alert_code(*alert),
            Self::Record(_) => "ERR_KTLS_BAD_RECORD".into(),
            Self::KeyUpdateUnsupported => "ERR_KTLS_KEY_UPDATE_UNSUPPORTED".into(),
            Self::Unavailable(_) => "ERR_KTLS_UNAVAILABLE".into(),
            Self::OffloadFailed(_) => "ERR_KTLS_OFFLOAD_FAILED".into(),
            Self::InvalidArgument(_) => "ERR_INVALID_ARG_VALUE".into(),
            Self::HttpRequest => "ERR_SSL_HTTP_REQUEST".into(),
            // node:tls's (OpenSSL 3's) code for the same `key`/`cert` pair.
            Self::KeyMismatch => "ERR_OSSL_X509_KEY_VALUES_MISMATCH".into(),
            Self::InvalidState(_) => "ERR_TLS_INVALID_STATE".into(),
            Self::ConnectionReset => "ECONNRESET".into(),
            Self::HandshakeEof => "ECONNRESET".into(),
            Self::Io(err) => io_code(err),
        }
    }
}

fn tls_code(err: &rustls::Error) -> String {
    match err {
        rustls::Error::AlertReceived(alert) => alert_code(*alert),
        // The same code the kernel path gives for EBADMSG.
        rustls::Error::DecryptError => "ERR_KTLS_BAD_RECORD".into(),
        // requestCert with rejectUnauthorized: node:tls's code for it.
        rustls::Error::NoCertificatesPresented => {
            "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE".into()
        }
        // `sigalgs` left nothing in common: node:tls's (OpenSSL's) code.
        rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoSignatureSchemesInCommon) => {
            "ERR_SSL_NO_SHARED_SIGNATURE_ALGORITHMS".into()
        }
        // A server that shares no ALPN protocol with its client: node:tls's code.
        rustls::Error::NoApplicationProtocol => "ERR_SSL_NO_APPLICATION_PROTOCOL".into(),
        // Not a TLS record at all (an HTTP answer, a banner): node:tls's code.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "ERR_SSL_WRONG_VERSION_NUMBER".into()
        }
        _ => "ERR_KTLS_HANDSHAKE".into(),
    }
}

/// node:tls's code for a received alert: OpenSSL's reason name for it
/// (`ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE`, `ERR_SSL_TLSV1_ALERT_UNKNOWN_CA`).
fn alert_code(alert: rustls::AlertDescription) -> String {
    let code = match u8::from(alert) {
        10 => "ERR_SSL_SSLV3_ALERT_UNEXPECTED_MESSAGE",
        20 => "ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC",
        21 => "ERR_SSL_TLSV1_ALERT_DECRYPTION_FAILED",
        22 => "ERR_SSL_TLSV1_ALERT_RECORD_OVERFLOW",
        30 => "ERR_SSL_SSLV3_ALERT_DECOMPRESSION_FAILURE",
        40 => "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE",
        41 => "ERR_SSL_SSLV3_ALERT_NO_CERTIFICATE",
        42 => "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE",
        43 => "ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        44 => "ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED",
        45 => "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED",
        46 => "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        47 => "ERR_SSL_SSLV3_ALERT_ILLEGAL_PARAMETER",
        48 => "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
        49 => "ERR_SSL_TLSV1_ALERT_ACCESS_DENIED",
        50 => "ERR_SSL_TLSV1_ALERT_DECODE_ERROR",
        51 => "ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR",
        60 => "ERR_SSL_TLSV1_ALERT_EXPORT_RESTRICTION",
        70 => "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION",
        71 => "ERR_SSL_TLSV1_ALERT_INSUFFICIENT_SECURITY",
        80 => "ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR",
        86 => "ERR_SSL_TLSV1_ALERT_INAPPROPRIATE_FALLBACK",
        90 => "ERR_SSL_TLSV1_ALERT_USER_CANCELLED",
        100 => "ERR_SSL_TLSV1_ALERT_NO_RENEGOTIATION",
        109 => "ERR_SSL_TLSV13_ALERT_MISSING_EXTENSION",
        110 => "ERR_SSL_TLSV1_ALERT_UNSUPPORTED_EXTENSION",
        111 => "ERR_SSL_TLSV1_CERTIFICATE_UNOBTAINABLE",
        112 => "ERR_SSL_TLSV1_UNRECOGNIZED_NAME",
        113 => "ERR_SSL_TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE",
        114 => "ERR_SSL_TLSV1_BAD_CERTIFICATE_HASH_VALUE",
        115 => "ERR_SSL_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY",
        116 => "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
        120 => "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL",
        // Alerts OpenSSL has no name for: rustls's, in the same shape.
        _ => return format!("ERR_SSL_TLSV1_ALERT_{}", screaming(&format!("{alert:?}"))),
    };
    code.into()
}

/// `BadRecordMac` -> `BAD_RECORD_MAC`.
fn screaming(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

fn io_code(err: &io::Error) -> String {
    let Some(errno) = err.raw_os_error() else {
        return "ERR_KTLS_IO".into();
    };
    match nix::errno::Errno::from_raw(errno) {
        nix::errno::Errno::UnknownErrno => "ERR_KTLS_IO".into(),
        known => format!("{known:?}"),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tls(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType,
                // node:tls's (OpenSSL's) text for these two, which programs match on.
            )) => f.write_str("error:0A00010B:SSL routines::wrong version number"),
            Self::Tls(err) => write!(f, "TLS error: {err}"),
            Self::AlertReceived(alert) => write!(f, "peer sent fatal alert {alert:?}"),
            Self::BadRecord => f.write_str("kernel failed to decrypt a record (EBADMSG)"),
            Self::Violation { alert, reason } => {
                write!(
                    f,
                    "peer broke the record protocol ({reason}); sent {alert:?}"
                )
            }
            Self::Record(err) => write!(f, "bad record: {err}"),
            Self::KeyUpdateUnsupported => f.write_str(
                "peer requested a TLS 1.3 key update; this kernel cannot rekey (needs Linux 6.14+)",
            ),
            Self::Unavailable(why) => write!(f, "kernel TLS unavailable: {why}"),
            Self::OffloadFailed(why) => write!(f, "kernel TLS offload failed: {why}"),
            Self::InvalidArgument(why) => f.write_str(why),
            Self::HttpRequest => f.write_str("error:0A00009C:SSL routines::http request"),
            // node:tls's message, which programs match on.
            Self::KeyMismatch => {
                f.write_str("error:05800074:x509 certificate routines::key values mismatch")
            }
            Self::InvalidState(why) => f.write_str(why),
            Self::ConnectionReset => f.write_str("connection reset by peer"),
            Self::HandshakeEof => f.write_str(
                "Client network socket disconnected before secure TLS connection was established",
            ),
            Self::Io(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The fatal alert our side owes the peer for this error, if any: the
    /// kernel path builds it itself (rustls queues its own on the userspace path).
    pub(crate) fn alert_to_send(&self) -> Option<rustls::AlertDescription> {
        match self {
            Self::BadRecord => Some(rustls::AlertDescription::BadRecordMac),
            Self::Violation { alert, .. } => Some(*alert),
            // We cannot follow the peer's key change: say so rather than vanish.
            Self::KeyUpdateUnsupported => Some(rustls::AlertDescription::InternalError),
            _ => None,
        }
    }

    pub(crate) fn violation(alert: rustls::AlertDescription, reason: &'static str) -> Self {
        Self::Violation { alert, reason }
    }
}

impl From<rustls::Error> for Error {
    fn from(err: rustls::Error) -> Self {
        match err {
            rustls::Error::AlertReceived(alert) => Self::AlertReceived(alert),
            other => Self::Tls(other),
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionReset => Self::ConnectionReset,
            _ => Self::Io(err),
        }
    }
}

impl From<nix::errno::Errno> for Error {
    fn from(errno: nix::errno::Errno) -> Self {
        io::Error::from(errno).into()
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_codes_are_node_tls_codes() {
        let err = Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(err.code(), "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE");
        let err = Error::from(rustls::Error::AlertReceived(
            rustls::AlertDescription::BadRecordMac,
        ));
        assert_eq!(err.code(), "ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC");
        let err = Error::AlertReceived(rustls::AlertDescription::UnknownCA);
        assert_eq!(err.code(), "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA");
        let err = Error::AlertReceived(rustls::AlertDescription::EncryptedClientHelloRequired);
        assert_eq!(
            err.code(),
            "ERR_SSL_TLSV1_ALERT_ENCRYPTED_CLIENT_HELLO_REQUIRED"
        );
    }

    #[test]
    fn io_errors_use_errno_names() {
        let err = Error::from(io::Error::from_raw_os_error(libc::EPIPE));
        assert_eq!(err.code(), "EPIPE");
        let err = Error::from(io::Error::from_raw_os_error(libc::ECONNRESET));
        assert_eq!(err.code(), "ECONNRESET");
    }
}
