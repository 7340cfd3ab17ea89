//! `createSecureContext`: rustls configurations built once and shared.

use std::sync::Arc;

use ktls_core::{
    ClientContext, ClientOptions, CommonOptions, Identity, ServerContext, ServerOptions,
};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::to_js_error;

#[napi(object)]
pub struct ContextOptions {
    pub alpn_protocols: Option<Vec<Buffer>>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub ciphers: Option<String>,
    /// Key exchange groups by rustls's names, in preference order.
    pub groups: Option<Vec<String>>,
    /// `sigalgs`, as node:tls takes it.
    pub sigalgs: Option<String>,
    /// `process.versions.openssl`: whose default sigalgs node:tls shares.
    pub openssl_version: Option<String>,
    pub ca: Option<Vec<Buffer>>,
    /// Certificate chains (PEM), paired by index with `key`.
    pub cert: Option<Vec<Buffer>>,
    /// Private keys (PEM), paired by index with `cert`.
    pub key: Option<Vec<Buffer>>,
    pub honor_cipher_order: Option<bool>,
    pub request_cert: Option<bool>,
    pub reject_unauthorized: Option<bool>,
    /// Server: 48 bytes session tickets are sealed with (random if absent).
    pub ticket_keys: Option<Buffer>,
    /// Server: the lifetime tickets announce, in seconds (default 300).
    pub session_timeout: Option<u32>,
}

fn common(options: &ContextOptions) -> CommonOptions {
    CommonOptions {
        alpn_protocols: options
            .alpn_protocols
            .iter()
            .flatten()
            .map(|p| p.to_vec())
            .collect(),
        min_version: options.min_version.clone(),
        max_version: options.max_version.clone(),
        ciphers: options.ciphers.clone(),
        groups: options.groups.clone().unwrap_or_default(),
        sigalgs: options.sigalgs.clone(),
        openssl_version: options.openssl_version.clone(),
    }
}

#[napi]
pub struct ClientSecureContext {
    pub(crate) inner: Arc<ClientContext>,
}

#[napi]
impl ClientSecureContext {
    #[napi(constructor)]
    pub fn new(options: ContextOptions) -> napi::Result<Self, String> {
        let first = |b: &Option<Vec<Buffer>>| {
            b.as_ref()
                .and_then(|v| v.first())
                .map(|b| b.to_vec())
                .unwrap_or_default()
        };
        let options = ClientOptions {
            common: common(&options),
            ca: options.ca.iter().flatten().map(|c| c.to_vec()).collect(),
            cert: first(&options.cert),
            key: first(&options.key),
        };
        let inner = ClientContext::new(&options).map_err(to_js_error)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }
}

#[napi]
pub struct ServerSecureContext {
    pub(crate) inner: Arc<ServerContext>,
}

#[napi]
impl ServerSecureContext {
    #[napi(constructor)]
    pub fn new(options: ContextOptions) -> napi::Result<Self, String> {
        let certs = options.cert.iter().flatten();
        let keys = options.key.iter().flatten();
        let identities = certs
            .zip(keys)
            .map(|(cert, key)| Identity {
                cert: cert.to_vec(),
                key: key.to_vec(),
            })
            .collect();
        let options = ServerOptions {
            common: common(&options),
            identities,
            // node:tls servers default to their own order.
            honor_cipher_order: options.honor_cipher_order.unwrap_or(true),
            request_cert: options.request_cert.unwrap_or(false),
            // As node:tls: a server rejects unless told not to.
            reject_unauthorized: options.reject_unauthorized.unwrap_or(true),
            ca: options.ca.iter().flatten().map(|c| c.to_vec()).collect(),
            ticket_keys: options.ticket_keys.as_ref().map(|k| k.to_vec()),
            session_timeout: options.session_timeout.unwrap_or(0),
        };
        let inner = ServerContext::new(&options).map_err(to_js_error)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }
}

#[napi]
impl ServerSecureContext {
    /// `getTicketKeys()`: the 48 bytes tickets are sealed with now.
    #[napi]
    pub fn ticket_keys(&self) -> Buffer {
        self.inner.ticket_keys.bytes().to_vec().into()
    }

    /// `setTicketKeys(keys)`: later tickets use these; earlier ones no longer resume.
    #[napi]
    pub fn set_ticket_keys(&self, keys: Buffer) -> napi::Result<(), String> {
        self.inner.ticket_keys.replace(&keys).map_err(to_js_error)
    }
}
