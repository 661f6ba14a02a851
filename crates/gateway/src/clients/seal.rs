//! Client upstream keys at rest: ChaCha20-Poly1305 with a key derived from the master key
//! (HMAC-SHA256(master, label)), a fresh random 96-bit nonce per value, stored as hex(nonce ‖
//! ciphertext ‖ tag). The client id is the associated data, so a sealed value copied onto another
//! client does not open.

use crate::config::Secret;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const LABEL: &[u8] = b"ekai-gateway upstream keys v1";

fn cipher(master: &Secret) -> ChaCha20Poly1305 {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(master.expose().as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    m.update(LABEL);
    let k = m.finalize().into_bytes();
    ChaCha20Poly1305::new(Key::from_slice(&k))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Encrypts `plain` for client `client_id`.
pub fn seal(master: &Secret, client_id: &str, plain: &str) -> Result<String, String> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| format!("random nonce: {e}"))?;
    let ct = cipher(master)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain.as_bytes(),
                aad: client_id.as_bytes(),
            },
        )
        .map_err(|_| "encryption failed".to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(hex(&out))
}

/// Decrypts a sealed value; None when it was sealed with another master key or client, or altered.
pub fn open(master: &Secret, client_id: &str, sealed: &str) -> Option<Secret> {
    let raw = unhex(sealed)?;
    if raw.len() < 12 + 16 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    let plain = cipher(master)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: client_id.as_bytes(),
            },
        )
        .ok()?;
    String::from_utf8(plain).ok().map(Secret::new)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_master_and_client() {
        let m = Secret::new("0123456789abcdef0123456789abcdef-master");
        let a = seal(&m, "cl_a", "sk-upstream-secret").unwrap();
        let b = seal(&m, "cl_a", "sk-upstream-secret").unwrap();
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("sk-upstream"));
        assert_eq!(open(&m, "cl_a", &a).unwrap().expose(), "sk-upstream-secret");
        assert!(open(&m, "cl_b", &a).is_none());
        assert!(
            open(
                &Secret::new("another master key that is 32+ chars"),
                "cl_a",
                &a
            )
            .is_none()
        );
        let mut tampered = a.clone();
        tampered.replace_range(30..32, if &a[30..32] == "00" { "01" } else { "00" });
        assert!(open(&m, "cl_a", &tampered).is_none());
        assert!(open(&m, "cl_a", "zz").is_none());
    }
}
