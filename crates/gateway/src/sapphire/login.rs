//! Wallet login: an EIP-712 signed `Login` message proves an address.
//!
//! Domain `{name: "Ekai Gateway", version: "1", chainId}` (no verifying contract: the gateway, not
//! a contract, checks it). Message type:
//!
//! ```text
//! Login(address wallet,string nonce,uint64 issuedAt,uint64 expiresAt)
//! ```
//!
//! `issuedAt` and `expiresAt` are unix seconds. The gateway accepts a message issued within
//! [`MAX_SKEW_SECS`] of its clock, not yet expired, asking for at most the configured session
//! length, with a nonce of 8–128 characters `[A-Za-z0-9_-]` never used before by that wallet (the
//! session table remembers it: a replayed login is refused).

use alloy_primitives::{Address, Signature};
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain, sol};

sol! {
    #[derive(Debug, PartialEq, Eq)]
    struct Login {
        address wallet;
        string nonce;
        uint64 issuedAt;
        uint64 expiresAt;
    }
}

/// How far `issuedAt` may be from the gateway's clock.
pub const MAX_SKEW_SECS: u64 = 300;

pub fn domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "Ekai Gateway",
        version: "1",
        chain_id: chain_id,
    }
}

/// Why a login is refused: the message is for the client (it names the field, never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the signature does not recover to `wallet` (signed another message, domain or chain id?)"
    )]
    BadSignature,
    #[error("{0}")]
    Expired(String),
}

/// Checks a login and returns the proven address and the session expiry (unix seconds).
pub fn verify(
    msg: &Login,
    signature_hex: &str,
    chain_id: u64,
    now_secs: u64,
    max_session_secs: u64,
) -> Result<(Address, u64), LoginError> {
    let n = &msg.nonce;
    if !(8..=128).contains(&n.len())
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(LoginError::Invalid(
            "message.nonce must be 8 to 128 characters of A-Z, a-z, 0-9, '-' or '_'".into(),
        ));
    }
    if msg.issuedAt > now_secs + MAX_SKEW_SECS || msg.issuedAt + MAX_SKEW_SECS < now_secs {
        return Err(LoginError::Expired(format!(
            "message.issuedAt must be within {MAX_SKEW_SECS} s of the gateway's clock (now {now_secs}); sign a fresh message"
        )));
    }
    if msg.expiresAt <= now_secs || msg.expiresAt <= msg.issuedAt {
        return Err(LoginError::Expired(
            "message.expiresAt is in the past".into(),
        ));
    }
    if msg.expiresAt - msg.issuedAt > max_session_secs {
        return Err(LoginError::Invalid(format!(
            "message.expiresAt - issuedAt is longer than this gateway's longest session ({max_session_secs} s)"
        )));
    }
    let sig_hex = signature_hex.strip_prefix("0x").unwrap_or(signature_hex);
    let raw = alloy_primitives::hex::decode(sig_hex)
        .map_err(|_| LoginError::Invalid("signature must be hex (65 bytes, r‖s‖v)".into()))?;
    let sig = Signature::from_raw(&raw)
        .map_err(|_| LoginError::Invalid("signature must be 65 bytes (r‖s‖v)".into()))?;
    let hash = msg.eip712_signing_hash(&domain(chain_id));
    let who = sig
        .recover_address_from_prehash(&hash)
        .map_err(|_| LoginError::BadSignature)?;
    if who != msg.wallet {
        return Err(LoginError::BadSignature);
    }
    Ok((who, msg.expiresAt))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;

    fn signed(signer: &PrivateKeySigner, msg: &Login, chain: u64) -> String {
        let sig = signer.sign_typed_data_sync(msg, &domain(chain)).unwrap();
        format!("0x{}", alloy_primitives::hex::encode(sig.as_bytes()))
    }

    #[test]
    fn a_signed_login_proves_the_address_and_tampering_does_not() {
        let signer = PrivateKeySigner::random();
        let now = 1_763_800_000;
        let msg = Login {
            wallet: signer.address(),
            nonce: "n0nce-abcdef".into(),
            issuedAt: now,
            expiresAt: now + 3600,
        };
        let sig = signed(&signer, &msg, 23295);
        assert_eq!(
            verify(&msg, &sig, 23295, now + 10, 86400),
            Ok((signer.address(), now + 3600))
        );
        // Another chain id, another wallet claimed, another expiry: refused.
        assert_eq!(
            verify(&msg, &sig, 23294, now, 86400),
            Err(LoginError::BadSignature)
        );
        let mut other = msg.clone();
        other.wallet = Address::repeat_byte(7);
        assert_eq!(
            verify(&other, &sig, 23295, now, 86400),
            Err(LoginError::BadSignature)
        );
        let mut longer = msg.clone();
        longer.expiresAt += 1;
        assert_eq!(
            verify(&longer, &sig, 23295, now, 86400),
            Err(LoginError::BadSignature)
        );
        // Clock and length rules.
        assert!(matches!(
            verify(&msg, &sig, 23295, now + 4000, 86400),
            Err(LoginError::Expired(_))
        ));
        assert!(matches!(
            verify(&msg, &sig, 23295, now + 400, 86400),
            Err(LoginError::Expired(_))
        ));
        assert!(matches!(
            verify(&msg, &sig, 23295, now, 600),
            Err(LoginError::Invalid(_))
        ));
        assert!(matches!(
            verify(&msg, "0x1234", 23295, now, 86400),
            Err(LoginError::Invalid(_))
        ));
        let mut bad_nonce = msg.clone();
        bad_nonce.nonce = "short".into();
        assert!(matches!(
            verify(&bad_nonce, &sig, 23295, now, 86400),
            Err(LoginError::Invalid(_))
        ));
    }

    #[test]
    fn the_type_string_is_the_documented_one() {
        assert_eq!(
            Login::eip712_encode_type(),
            "Login(address wallet,string nonce,uint64 issuedAt,uint64 expiresAt)"
        );
    }
}
