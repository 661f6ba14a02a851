//! Reads of the `EkaiControlPlane` contract over EVM JSON-RPC (alloy), each cached for a short,
//! configurable time so a burst of requests does not hit the chain per request. Only answers are
//! cached: an RPC failure is retried by the next request.

use alloy_network::{Ethereum, Network, TransactionBuilder};
use alloy_primitives::{Address, B256, Bytes};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_sol_types::{SolCall, sol};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

sol! {
    /// The control plane as the gateway sees it (the test contract implements the same ABI).
    interface IEkaiControlPlane {
        function isPaused() external view returns (bool);
        function isDelegatePermitted(address owner, address delegate) external view returns (bool);
        function isModelPermitted(address owner, bytes32 providerId, bytes32 modelId) external view returns (bool);
        function getSecretCiphertext(address owner, bytes32 providerId) external view returns (bytes ciphertext, uint64 secretVersion, bool exists, uint64 roflKeyVersion);
        function logReceipt(bytes32 requestHash, address owner, address delegate, bytes32 providerId, bytes32 modelId, uint32 promptTokens, uint32 completionTokens) external;
    }
}

/// A sealed secret as stored on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub ciphertext: Vec<u8>,
    pub version: u64,
    pub rofl_key_version: u64,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Paused,
    Delegate(Address, Address),
    Model(Address, B256, B256),
    Secret(Address, B256),
}

#[derive(Clone)]
enum Val {
    Bool(bool),
    Secret(Option<SealedSecret>),
}

/// The RPC could not be asked or answered nonsense (the message names the cause, not the URL).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RpcError(pub String);

pub struct ControlPlane {
    provider: DynProvider,
    pub address: Address,
    ttl: Duration,
    cache: Mutex<HashMap<Key, (Instant, Val)>>,
}

impl ControlPlane {
    pub fn new(
        http: reqwest::Client,
        rpc_url: &str,
        address: Address,
        ttl: Duration,
    ) -> Result<ControlPlane, RpcError> {
        let url = reqwest::Url::parse(rpc_url)
            .map_err(|e| RpcError(format!("SAPPHIRE_RPC_URL is not a URL: {e}")))?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_reqwest(http, url)
            .erased();
        Ok(ControlPlane {
            provider,
            address,
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    fn cached(&self, k: &Key) -> Option<Val> {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match c.get(k) {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                c.remove(k);
                None
            }
            None => None,
        }
    }

    fn store(&self, k: Key, v: Val) {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: expired entries go when the map grows large.
        if c.len() > 10_000 {
            let ttl = self.ttl;
            c.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        c.insert(k, (Instant::now(), v));
    }

    async fn call<C: SolCall>(&self, call: C) -> Result<C::Return, RpcError> {
        let tx = <Ethereum as Network>::TransactionRequest::default()
            .with_to(self.address)
            .with_input(Bytes::from(call.abi_encode()));
        let out = self
            .provider
            .call(tx)
            .await
            .map_err(|e| RpcError(format!("eth_call {} failed: {e}", C::SIGNATURE)))?;
        C::abi_decode_returns(&out).map_err(|e| {
            RpcError(format!(
                "{} returned data that does not decode (is EKAI_CONTROL_PLANE_ADDRESS the control plane?): {e}",
                C::SIGNATURE
            ))
        })
    }

    async fn bool_read<C: SolCall<Return = bool>>(
        &self,
        key: Key,
        call: C,
    ) -> Result<bool, RpcError> {
        if let Some(Val::Bool(b)) = self.cached(&key) {
            return Ok(b);
        }
        let b = self.call(call).await?;
        self.store(key, Val::Bool(b));
        Ok(b)
    }

    pub async fn is_paused(&self) -> Result<bool, RpcError> {
        self.bool_read(Key::Paused, IEkaiControlPlane::isPausedCall {})
            .await
    }

    pub async fn is_delegate_permitted(
        &self,
        owner: Address,
        delegate: Address,
    ) -> Result<bool, RpcError> {
        self.bool_read(
            Key::Delegate(owner, delegate),
            IEkaiControlPlane::isDelegatePermittedCall { owner, delegate },
        )
        .await
    }

    pub async fn is_model_permitted(
        &self,
        owner: Address,
        provider_id: B256,
        model_id: B256,
    ) -> Result<bool, RpcError> {
        self.bool_read(
            Key::Model(owner, provider_id, model_id),
            IEkaiControlPlane::isModelPermittedCall {
                owner,
                providerId: provider_id,
                modelId: model_id,
            },
        )
        .await
    }

    /// None when the owner stored no secret for this provider.
    pub async fn secret(
        &self,
        owner: Address,
        provider_id: B256,
    ) -> Result<Option<SealedSecret>, RpcError> {
        let key = Key::Secret(owner, provider_id);
        if let Some(Val::Secret(s)) = self.cached(&key) {
            return Ok(s);
        }
        let r = self
            .call(IEkaiControlPlane::getSecretCiphertextCall {
                owner,
                providerId: provider_id,
            })
            .await?;
        let s = (r.exists && !r.ciphertext.is_empty()).then(|| SealedSecret {
            ciphertext: r.ciphertext.to_vec(),
            version: r.secretVersion,
            rofl_key_version: r.roflKeyVersion,
        });
        self.store(key, Val::Secret(s.clone()));
        Ok(s)
    }
}
