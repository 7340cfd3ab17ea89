//! node:tls's client sessions (`'session'`, `getSession()`, the `session`
//! option) on rustls, whose session values cannot be serialized: a session
//! is handed out as an opaque token naming the value, kept in this process.
//! A token resumes within the process that issued it, with any context and
//! server name; a TLS 1.3 ticket is used once, as rustls uses it.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, OnceLock};

use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use rustls::NamedGroup;

/// What `'session'` and `getSession()` hand out.
pub type SessionToken = [u8; 16];

/// Tickets a server name keeps, as rustls's own cache does.
const TICKETS_PER_NAME: usize = 8;
/// Sessions the process remembers for their tokens; the oldest go first.
const REMEMBERED: usize = 4096;

enum Stored {
    Tls13(Tls13ClientSessionValue),
    Tls12(Tls12ClientSessionValue),
}

#[derive(Default)]
struct Registry {
    values: HashMap<SessionToken, Stored>,
    /// Each session's ticket (`getTLSTicket()`), kept after a resumption
    /// has used the value, until the token is forgotten.
    tickets: HashMap<SessionToken, Vec<u8>>,
    order: VecDeque<SessionToken>,
}

impl Registry {
    fn remember(&mut self, value: Stored) -> SessionToken {
        let token = new_token();
        if self.order.len() >= REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.values.remove(&old);
                self.tickets.remove(&old);
            }
        }
        let ticket = match &value {
            Stored::Tls13(value) => ticket_shown_by(value),
            Stored::Tls12(value) => ticket_shown_by(value),
        };
        if let Some(ticket) = ticket {
            self.tickets.insert(token, ticket);
        }
        self.values.insert(token, value);
        self.order.push_back(token);
        token
    }
}

/// node:tls's `getTLSTicket()` for the session `token` names.
pub fn session_ticket(token: &[u8]) -> Option<Vec<u8>> {
    let token = SessionToken::try_from(token).ok()?;
    registry().tickets.get(&token).cloned()
}

/// A session value's ticket. rustls has no accessor for it; its `Debug`
/// shows it (`ticket: <hex>`, before the certificates, where formatting is
/// cut short). A change there fails the tests that compare the ticket with
/// the one on the wire (`suites/tickets.mjs`).
fn ticket_shown_by(value: &dyn fmt::Debug) -> Option<Vec<u8>> {
    /// Keeps what is formatted until the ticket's hex has ended.
    struct UpToTicket(String);
    const FIELD: &str = "ticket: ";
    impl fmt::Write for UpToTicket {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.push_str(s);
            let Some(at) = self.0.find(FIELD) else {
                return Ok(());
            };
            let hex = &self.0[at + FIELD.len()..];
            match hex.find(|c: char| !c.is_ascii_hexdigit()) {
                Some(_) => Err(fmt::Error), // the ticket is whole: stop here
                None => Ok(()),
            }
        }
    }
    let mut shown = UpToTicket(String::new());
    let _ = fmt::write(&mut shown, format_args!("{value:?}"));
    let at = shown.0.find(FIELD)? + FIELD.len();
    let hex = &shown.0[at..];
    let hex = &hex[..hex
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(hex.len())];
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()
        .filter(|ticket| !ticket.is_empty())
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn new_token() -> SessionToken {
    let mut token = [0u8; 16];
    // A token only has to be unique in this process; it carries no secret.
    let _ = aws_lc_rs::rand::fill(&mut token);
    token
}

/// What a client connection step did with sessions.
#[derive(Debug, Default)]
pub(crate) struct SessionsSeen {
    /// Sessions rustls stored (new tickets, a TLS 1.2 session).
    pub(crate) stored: Vec<SessionToken>,
    /// The TLS 1.3 ticket and the TLS 1.2 session offered in a ClientHello.
    pub(crate) offered_tls13: Option<SessionToken>,
    pub(crate) offered_tls12: Option<SessionToken>,
}

thread_local! {
    /// What the connection step running on this thread did with sessions.
    static SEEN: RefCell<SessionsSeen> = RefCell::new(SessionsSeen::default());
}

/// Runs one step of a client connection (rustls stores and takes sessions
/// inside its processing, on this thread) and returns what it did.
pub(crate) fn collecting<T>(f: impl FnOnce() -> T) -> (T, SessionsSeen) {
    SEEN.with(|s| *s.borrow_mut() = SessionsSeen::default());
    let out = f();
    (out, SEEN.with(|s| std::mem::take(&mut *s.borrow_mut())))
}

fn announce(token: SessionToken) {
    SEEN.with(|s| s.borrow_mut().stored.push(token));
}

/// A client context's session store: rustls's choices, with every session
/// also remembered under a token.
#[derive(Default)]
pub(crate) struct TokenStore {
    kx_hints: Mutex<HashMap<ServerName<'static>, NamedGroup>>,
    tls12: Mutex<HashMap<ServerName<'static>, (SessionToken, Tls12ClientSessionValue)>>,
    tls13: Mutex<HashMap<ServerName<'static>, VecDeque<SessionToken>>>,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenStore { .. }")
    }
}

impl TokenStore {
    /// The `session` option: the session `token` names is offered to
    /// `server_name` first. False when the token is unknown or used.
    pub(crate) fn import(&self, server_name: &ServerName<'static>, token: &[u8]) -> bool {
        let Ok(token) = SessionToken::try_from(token) else {
            return false;
        };
        let registry = registry();
        match registry.values.get(&token) {
            Some(Stored::Tls13(_)) => {
                let mut tls13 = self.tls13.lock().unwrap_or_else(|e| e.into_inner());
                tls13
                    .entry(server_name.clone())
                    .or_default()
                    .push_back(token);
                true
            }
            Some(Stored::Tls12(value)) => {
                let mut tls12 = self.tls12.lock().unwrap_or_else(|e| e.into_inner());
                tls12.insert(server_name.clone(), (token, value.clone()));
                true
            }
            None => false,
        }
    }
}

impl ClientSessionStore for TokenStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.kx_hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.kx_hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(server_name)
            .copied()
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        let token = registry().remember(Stored::Tls12(value.clone()));
        announce(token);
        self.tls12
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(server_name, (token, value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        let tls12 = self.tls12.lock().unwrap_or_else(|e| e.into_inner());
        let (token, value) = tls12.get(server_name)?;
        SEEN.with(|s| s.borrow_mut().offered_tls12 = Some(*token));
        Some(value.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.tls12
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let token = registry().remember(Stored::Tls13(value));
        announce(token);
        let mut tls13 = self.tls13.lock().unwrap_or_else(|e| e.into_inner());
        let tickets = tls13.entry(server_name).or_default();
        if tickets.len() >= TICKETS_PER_NAME {
            tickets.pop_front();
        }
        tickets.push_back(token);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let mut tls13 = self.tls13.lock().unwrap_or_else(|e| e.into_inner());
        let tickets = tls13.get_mut(server_name)?;
        let mut registry = registry();
        while let Some(token) = tickets.pop_back() {
            if let Some(Stored::Tls13(value)) = registry.values.remove(&token) {
                SEEN.with(|s| s.borrow_mut().offered_tls13 = Some(token));
                return Some(value);
            }
        }
        None
    }
}
