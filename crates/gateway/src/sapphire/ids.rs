//! The identifiers the control plane keys its records by.
//!
//! - `providerId = keccak256(UTF-8(UPPERCASE(providerName)))`, e.g. `keccak256("OPENAI")`: the
//!   gateway's provider name (`openai`, `anthropic`, `gemini`, `xai`, `openrouter`, or a provider
//!   declared in the config file) in ASCII upper case.
//! - `modelId = keccak256(UTF-8(modelName))`, the model name exactly as the client sent it
//!   (`gpt-4o-mini`, no case change, no provider prefix added).
//! - `requestHash = keccak256(abi.encodePacked(owner, delegate, providerId, modelId, uint64
//!   timestampMs))`: 20 + 20 + 32 + 32 + 8 = 112 bytes hashed.
//!
//! The original gateway's three tools disagreed on these encodings; these are the ones to use.

use alloy_primitives::{Address, B256, keccak256};

pub fn provider_id(provider: &str) -> B256 {
    keccak256(provider.to_ascii_uppercase().as_bytes())
}

pub fn model_id(model: &str) -> B256 {
    keccak256(model.as_bytes())
}

pub fn request_hash(
    owner: Address,
    delegate: Address,
    provider_id: B256,
    model_id: B256,
    timestamp_ms: u64,
) -> B256 {
    let mut packed = Vec::with_capacity(112);
    packed.extend_from_slice(owner.as_slice());
    packed.extend_from_slice(delegate.as_slice());
    packed.extend_from_slice(provider_id.as_slice());
    packed.extend_from_slice(model_id.as_slice());
    packed.extend_from_slice(&timestamp_ms.to_be_bytes());
    keccak256(&packed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256};
    use alloy_sol_types::SolValue;

    #[test]
    fn provider_and_model_ids() {
        // The e2e test checks the same ids against the Solidity contract's own keccak256.
        assert_eq!(provider_id("openai"), keccak256(b"OPENAI"));
        assert_eq!(provider_id("OpenAI"), provider_id("openai"));
        assert_eq!(
            keccak256(b""),
            b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        );
        assert_eq!(model_id("gpt-4o-mini"), keccak256(b"gpt-4o-mini"));
        assert_ne!(model_id("GPT-4o-mini"), model_id("gpt-4o-mini"));
    }

    #[test]
    fn request_hash_is_keccak_of_encode_packed() {
        let owner = address!("1111111111111111111111111111111111111111");
        let delegate = address!("2222222222222222222222222222222222222222");
        let (p, m) = (provider_id("openai"), model_id("gpt-4o-mini"));
        let ts = 1_763_800_000_123u64;
        // alloy's own encodePacked of the same tuple.
        let packed = (owner, delegate, p, m, ts).abi_encode_packed();
        assert_eq!(packed.len(), 112);
        assert_eq!(request_hash(owner, delegate, p, m, ts), keccak256(&packed));
    }
}
