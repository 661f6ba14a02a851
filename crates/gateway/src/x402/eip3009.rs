//! EIP-3009 `TransferWithAuthorization` as EIP-712 typed data: what an x402 `exact` EVM payment signs.
//! The token contract (`verifyingContract`) later checks this signature when the facilitator calls
//! `transferWithAuthorization`, so every field must be exactly what the token expects.

use alloy_primitives::{Address, B256, Signature, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{Eip712Domain, SolStruct, sol};
use std::borrow::Cow;

sol! {
    /// The EIP-3009 message type (its type string is part of the signed hash).
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The EVM chain an x402 network name designates: v1 short names, or v2 CAIP-2 `eip155:<id>`.
pub use crate::config::x402_chain_id as chain_id;

/// The token's domain: `name`/`version` from the requirement's `extra`, the chain, the token address.
pub fn domain(name: &str, version: &str, chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(Cow::Owned(name.to_string())),
        Some(Cow::Owned(version.to_string())),
        Some(U256::from(chain_id)),
        Some(token),
        None,
    )
}

/// The digest a wallet signs for this authorization under this domain.
pub fn signing_hash(msg: &TransferWithAuthorization, domain: &Eip712Domain) -> B256 {
    msg.eip712_signing_hash(domain)
}

/// 65-byte `r‖s‖v` signature (v = 27/28), as EIP-3009 tokens and x402 expect it.
pub fn sign(
    signer: &PrivateKeySigner,
    msg: &TransferWithAuthorization,
    domain: &Eip712Domain,
) -> Result<[u8; 65], String> {
    signer
        .sign_hash_sync(&signing_hash(msg, domain))
        .map(|s| s.as_bytes())
        .map_err(|e| format!("signing failed: {e}"))
}

/// The address that signed `sig` over this authorization (what a facilitator or token checks).
pub fn recover(
    msg: &TransferWithAuthorization,
    domain: &Eip712Domain,
    sig: &[u8],
) -> Result<Address, String> {
    let sig = Signature::try_from(sig).map_err(|e| format!("bad signature: {e}"))?;
    sig.recover_address_from_prehash(&signing_hash(msg, domain))
        .map_err(|e| format!("cannot recover the signer: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn networks_map_to_chain_ids() {
        assert_eq!(chain_id("base"), Some(8453));
        assert_eq!(chain_id("base-sepolia"), Some(84532));
        assert_eq!(chain_id("eip155:8453"), Some(8453));
        assert_eq!(chain_id("eip155:31337"), Some(31337));
        assert_eq!(chain_id("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"), None);
        assert_eq!(chain_id("eip155:x"), None);
    }
}
