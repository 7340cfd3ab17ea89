//! A server's first look at the ClientHello, before its configuration is
//! chosen (by SNI, as node:tls's `SNICallback` and `addContext`): the bytes
//! stay in the caller's buffer for the connection built afterwards.

use rustls::server::Acceptor;

use crate::error::{Error, Result};
use crate::sys;

/// A plaintext fatal `handshake_failure` alert: what a server with no
/// certificate to serve answers a ClientHello with, as OpenSSL does.
pub(crate) const HANDSHAKE_FAILURE_ALERT: [u8; 7] = [sys::CONTENT_ALERT, 3, 3, 0, 2, 2, 40];

/// What the bytes received so far hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hello {
    /// The ClientHello is not complete yet.
    Incomplete,
    /// A complete ClientHello, asking for this server name and offering
    /// these ALPN protocols (node:tls's `ALPNCallback` gets them), if any.
    Complete {
        server_name: Option<String>,
        alpn: Option<Vec<String>>,
    },
}

/// Parses the ClientHello at the start of `incoming` (a copy is parsed).
/// On a malformed one, the alert rustls chose is appended to `alert_out`.
pub(crate) fn peek_client_hello(incoming: &[u8], alert_out: &mut Vec<u8>) -> Result<Hello> {
    let mut acceptor = Acceptor::default();
    let mut rest = incoming;
    while !rest.is_empty() {
        if acceptor.read_tls(&mut rest).map_err(Error::Io)? == 0 {
            break;
        }
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => {
            let hello = accepted.client_hello();
            Ok(Hello::Complete {
                server_name: hello.server_name().map(str::to_owned),
                // As node:tls hands them over: each protocol's bytes as ASCII.
                alpn: hello.alpn().map(|protocols| {
                    protocols
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect()
                }),
            })
        }
        Ok(None) => Ok(Hello::Incomplete),
        Err((err, mut alert)) => {
            let _ = alert.write_all(alert_out);
            Err(Error::Tls(err))
        }
    }
}

/// A handshake error over plain HTTP sent to a TLS port becomes
/// `HttpRequest`, told apart as OpenSSL (so node:tls) does: by the method.
/// Applied where a handshake step's error leaves (`Session::handshake`,
/// `StreamSession::advance`), so every path to rustls is covered once.
/// Only a server's input starts so (an HTTP answer starts with `HTTP/`).
pub(crate) fn named_http_request(err: Error, incoming: &[u8]) -> Error {
    let plain_http = [&b"GET "[..], b"POST ", b"HEAD ", b"PUT ", b"CONNE"]
        .iter()
        .any(|method| incoming.starts_with(method));
    match err {
        Error::Tls(_) if plain_http => Error::HttpRequest,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{named_http_request, peek_client_hello, Hello};

    #[test]
    fn a_partial_record_is_incomplete() {
        let mut alert = Vec::new();
        let got = peek_client_hello(&[22, 3, 1, 0, 200, 1, 0], &mut alert).unwrap();
        assert_eq!(got, Hello::Incomplete);
        assert!(alert.is_empty());
    }

    #[test]
    fn junk_is_an_error_with_an_alert() {
        let mut alert = Vec::new();
        let got = peek_client_hello(b"SSH-2.0-OpenSSH_9.6\r\n", &mut alert);
        assert!(matches!(got, Err(crate::Error::Tls(_))));
        assert!(!alert.is_empty(), "the client is told why");
    }

    #[test]
    fn plain_http_is_told_apart() {
        let mut alert = Vec::new();
        let request = b"GET / HTTP/1.1\r\n\r\n";
        let got =
            peek_client_hello(request, &mut alert).map_err(|e| named_http_request(e, request));
        assert!(matches!(got, Err(crate::Error::HttpRequest)));
        assert!(!alert.is_empty(), "the client is told why");
    }
}
