//! Session tickets sealed with keys the application holds (node:tls's
//! `ticketKeys`, `getTicketKeys()`/`setTicketKeys()`): servers that share the
//! keys (cluster workers, a fleet) resume each other's sessions, and those
//! sessions are offloaded like full handshakes.

use std::fmt;
use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

use crate::error::{Error, Result};

/// Node's layout: a 16-byte key name, then 32 bytes of secret (here one
/// AES-256-GCM key; Node's OpenSSL splits them into HMAC and AES keys).
pub const TICKET_KEYS_LEN: usize = 48;
const NAME_LEN: usize = 16;

/// node:tls's default `sessionTimeout`, in seconds.
pub const DEFAULT_SESSION_TIMEOUT: u32 = 300;

/// The keys, replaceable while connections use them.
pub struct TicketKeys {
    current: RwLock<SealingKey>,
}

struct SealingKey {
    bytes: [u8; TICKET_KEYS_LEN],
    aead: LessSafeKey,
}

impl SealingKey {
    fn new(bytes: &[u8]) -> Result<Self> {
        let bytes: [u8; TICKET_KEYS_LEN] = bytes.try_into().map_err(|_| {
            Error::InvalidArgument(format!(
                "ticketKeys: must be exactly {TICKET_KEYS_LEN} bytes"
            ))
        })?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes[NAME_LEN..])
            .map_err(|_| Error::InvalidArgument("ticketKeys: unusable key".into()))?;
        Ok(Self {
            bytes,
            aead: LessSafeKey::new(key),
        })
    }

    fn name(&self) -> &[u8] {
        &self.bytes[..NAME_LEN]
    }
}

impl Drop for SealingKey {
    fn drop(&mut self) {
        self.bytes.fill(0);
    }
}

impl TicketKeys {
    /// Fresh random keys, as node:tls makes for every server.
    pub fn random() -> Result<Arc<Self>> {
        let mut bytes = [0u8; TICKET_KEYS_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::InvalidArgument("no randomness for ticketKeys".into()))?;
        let keys = Self::from_bytes(&bytes);
        bytes.fill(0);
        keys
    }

    /// Keys the application gave (48 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            current: RwLock::new(SealingKey::new(bytes)?),
        }))
    }

    /// `setTicketKeys`: tickets sealed with the old keys no longer resume.
    pub fn replace(&self, bytes: &[u8]) -> Result<()> {
        let next = SealingKey::new(bytes)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// `getTicketKeys`.
    pub fn bytes(&self) -> [u8; TICKET_KEYS_LEN] {
        self.current.read().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketKeys { .. }")
    }
}

/// rustls's view: tickets are `name || nonce || AES-256-GCM(issued || plain)`,
/// the name bound in as associated data; `issued` (seconds since the epoch)
/// enforces `sessionTimeout` (rustls takes the lifetime as a hint only).
#[derive(Debug)]
pub(crate) struct Ticketer {
    pub(crate) keys: Arc<TicketKeys>,
    pub(crate) lifetime: u32,
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let key = self.keys.current.read().ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut sealed = [&now().to_be_bytes()[..], plain].concat();
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.name()),
                &mut sealed,
            )
            .ok()?;
        Some([key.name(), &nonce, &sealed].concat())
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let key = self.keys.current.read().ok()?;
        let (name, rest) = ticket.split_at_checked(NAME_LEN)?;
        if name != key.name() {
            return None;
        }
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let opened = key
            .aead
            .open_in_place(nonce, Aad::from(name), &mut buf)
            .ok()?;
        let (issued, plain) = opened.split_at_checked(8)?;
        let issued = u64::from_be_bytes(issued.try_into().ok()?);
        let age = now().checked_sub(issued)?;
        (age <= u64::from(self.lifetime)).then(|| plain.to_vec())
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticketer(keys: &Arc<TicketKeys>) -> Ticketer {
        Ticketer {
            keys: keys.clone(),
            lifetime: DEFAULT_SESSION_TIMEOUT,
        }
    }

    #[test]
    fn servers_sharing_keys_open_each_others_tickets() {
        let bytes = [7u8; TICKET_KEYS_LEN];
        let a = ticketer(&TicketKeys::from_bytes(&bytes).unwrap());
        let b = ticketer(&TicketKeys::from_bytes(&bytes).unwrap());
        let ticket = a.encrypt(b"session state").unwrap();
        assert_eq!(b.decrypt(&ticket).unwrap(), b"session state");
    }

    #[test]
    fn other_or_replaced_keys_open_nothing() {
        let keys = TicketKeys::from_bytes(&[7u8; TICKET_KEYS_LEN]).unwrap();
        let t = ticketer(&keys);
        let ticket = t.encrypt(b"state").unwrap();
        let other = ticketer(&TicketKeys::random().unwrap());
        assert!(other.decrypt(&ticket).is_none());
        keys.replace(&[8u8; TICKET_KEYS_LEN]).unwrap();
        assert!(t.decrypt(&ticket).is_none());
        assert_eq!(keys.bytes(), [8u8; TICKET_KEYS_LEN]);
    }

    #[test]
    fn forged_and_short_tickets_open_nothing() {
        let t = ticketer(&TicketKeys::random().unwrap());
        let mut ticket = t.encrypt(b"state").unwrap();
        *ticket.last_mut().unwrap() ^= 1;
        assert!(t.decrypt(&ticket).is_none());
        assert!(t.decrypt(&ticket[..20]).is_none());
        assert!(t.decrypt(&[]).is_none());
    }

    #[test]
    fn keys_must_be_48_bytes() {
        assert!(TicketKeys::from_bytes(&[0u8; 47]).is_err());
    }
}
