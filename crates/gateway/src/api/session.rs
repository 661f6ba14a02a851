//! Dashboard sign-in. The admin token is presented once, to `POST /admin/login`, and exchanged for a
//! random session id in an httpOnly, SameSite=Strict cookie: the page's script never holds the
//! token, it never appears in a URL (the live feed's `EventSource` sends the cookie), and signing
//! out ends the session on the server.
//!
//! Sessions live in memory: a restart signs everyone out, which is the safe failure for an admin
//! console. The table keeps SHA-256 digests of the ids, so neither a lookup's timing nor a memory
//! dump of the map yields a usable cookie.

use super::AppState;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "ekai_session";
/// How long a sign-in lasts.
pub const TTL: Duration = Duration::from_secs(12 * 3600);
/// Live sessions kept at most; beyond it the oldest is dropped (a sign-in flood cannot grow memory).
const MAX_SESSIONS: usize = 1024;

#[derive(Default)]
pub struct Sessions {
    /// SHA-256(session id) → expiry.
    live: Mutex<HashMap<[u8; 32], Instant>>,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// A new session id (256 bits from the OS RNG, hex), or None when the RNG fails.
    pub fn create(&self) -> Option<String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).ok()?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, exp| *exp > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, exp)| **exp).map(|(k, _)| *k)
        {
            live.remove(&oldest);
        }
        live.insert(digest(&id), now + TTL);
        Some(id)
    }

    pub fn is_valid(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(&digest(id))
            .is_some_and(|exp| *exp > Instant::now())
    }

    pub fn end(&self, id: &str) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.remove(&digest(id));
    }
}

/// The session id in the request's `Cookie` header(s), if any.
pub fn from_headers(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then_some(value)
        })
}

/// `Set-Cookie` for a new session. No `Secure`: the gateway usually serves plain HTTP on loopback,
/// where browsers would drop a Secure cookie; behind TLS the proxy in front may add it.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        TTL.as_secs()
    )
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether the caller is the admin: `Authorization: Bearer <EKAI_ADMIN_TOKEN>` (compared in
/// constant time) or a live sign-in cookie. Always false when no admin token is configured.
pub fn is_admin(state: &AppState, headers: &http::HeaderMap) -> bool {
    let Some(token) = &state.admin_token else {
        return false;
    };
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(given) = bearer {
        return given.len() == token.expose().len()
            && bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()));
    }
    from_headers(headers).is_some_and(|id| state.sessions.is_valid(id))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_random_valid_until_ended() {
        let s = Sessions::default();
        let a = s.create().unwrap();
        let b = s.create().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.is_valid(&a) && s.is_valid(&b));
        assert!(!s.is_valid("0000"));
        s.end(&a);
        assert!(!s.is_valid(&a) && s.is_valid(&b));
    }

    #[test]
    fn the_table_is_bounded() {
        let s = Sessions::default();
        let first = s.create().unwrap();
        for _ in 0..MAX_SESSIONS {
            s.create().unwrap();
        }
        assert!(!s.is_valid(&first), "the oldest session makes room");
        assert_eq!(s.live.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn reads_the_cookie_among_others() {
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=1; ekai_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(from_headers(&h), Some("abc"));
        let mut h = http::HeaderMap::new();
        h.append(http::header::COOKIE, "ekai_session=".parse().unwrap());
        assert_eq!(from_headers(&h), None);
        assert!(set_cookie("x").contains("HttpOnly; SameSite=Strict"));
    }
}
