//! Client keys: generation (the OS RNG), keyed hashes (HMAC-SHA256 with the master key) and their
//! constant-time comparison.

use crate::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `ek-` + 40 base62 characters (≈238 bits).
pub const KEY_PREFIX: &str = "ek-";
pub const KEY_RANDOM_CHARS: usize = 40;
/// Characters of a key shown to identify it (`ek-` and the next five).
pub const SHOWN_CHARS: usize = 8;

/// `n` uniformly random base62 characters: bytes ≥ 248 (= 4·62) are rejected so every character is
/// equally likely.
pub fn random_base62(n: usize) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf)?;
        for b in buf {
            if b < 248 && out.len() < n {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

pub fn generate_key() -> Result<String, getrandom::Error> {
    Ok(format!("{KEY_PREFIX}{}", random_base62(KEY_RANDOM_CHARS)?))
}

pub fn new_client_id() -> Result<String, getrandom::Error> {
    Ok(format!("cl_{}", random_base62(16)?))
}

/// The first characters of a key, shown in listings and logs to identify it.
pub fn shown_prefix(key: &str) -> String {
    key.chars().take(SHOWN_CHARS).collect()
}

fn mac(master: &Secret, key: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(master.expose().as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    m.update(key.as_bytes());
    m
}

/// HMAC-SHA256(master, key), lower-case hex: what the database stores.
pub fn hash_key(master: &Secret, key: &str) -> String {
    let out = mac(master, key).finalize().into_bytes();
    let mut s = String::with_capacity(64);
    for b in out {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// Whether `key` hashes to `stored` (hex), compared in constant time.
pub fn verify(master: &Secret, key: &str, stored: &str) -> bool {
    let computed = hash_key(master, key);
    computed.len() == stored.len() && bool::from(computed.as_bytes().ct_eq(stored.as_bytes()))
}

/// Cheap shape check before hashing: `ek-` + 40 base62 characters.
pub fn looks_like_key(key: &str) -> bool {
    key.len() == KEY_PREFIX.len() + KEY_RANDOM_CHARS
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn master() -> Secret {
        Secret::new("0123456789abcdef0123456789abcdef-master")
    }

    #[test]
    fn keys_have_the_documented_shape_and_differ() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert!(looks_like_key(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(shown_prefix(&a).len(), 8);
        assert!(a.starts_with(&shown_prefix(&a)));
        assert!(new_client_id().unwrap().starts_with("cl_"));
        assert!(!looks_like_key("ek-short"));
        assert!(!looks_like_key(&format!("ek-{}", "é".repeat(20))));
    }

    #[test]
    fn hash_is_keyed_hmac_sha256_and_verifies() {
        // RFC 4231 test case 2.
        let h = hash_key(&Secret::new("Jefe"), "what do ya want for nothing?");
        assert_eq!(
            h,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let k = generate_key().unwrap();
        let stored = hash_key(&master(), &k);
        assert!(verify(&master(), &k, &stored));
        assert!(!verify(&master(), &generate_key().unwrap(), &stored));
        assert!(!verify(
            &Secret::new("another master key, 32 chars long!"),
            &k,
            &stored
        ));
        assert!(!verify(&master(), &k, &stored[..10]));
    }
}
