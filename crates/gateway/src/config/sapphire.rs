//! `[sapphire]` and its environment variables: Oasis Sapphire/ROFL mode.

use super::{ConfigError, Secret, raw::RawSapphire};
use std::path::PathBuf;
use std::time::Duration;

/// Sapphire testnet, the default chain.
pub const TESTNET_RPC: &str = "https://testnet.sapphire.oasis.io";
pub const TESTNET_CHAIN_ID: u64 = 23295;
/// Where `rofl-appd` listens inside a ROFL container.
pub const DEFAULT_ROFL_SOCKET: &str = "/run/rofl-appd.sock";

/// Where the gateway's X25519 key comes from. Read in every mode: `GET /rofl/public-key` answers
/// whether or not the control plane is configured (an operator registers the key before using it).
#[derive(Debug, Clone)]
pub struct RoflConfig {
    /// `ROFL_SOCKET_PATH`: present means "inside ROFL" and the key comes from the daemon.
    pub socket: PathBuf,
    /// `ROFL_PRIVATE_KEY` (64 hex digits): the key outside ROFL.
    pub private_key: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct SapphireConfig {
    pub rpc_url: String,
    pub chain_id: u64,
    /// `EkaiControlPlane`, 20 bytes.
    pub control_plane: [u8; 20],
    pub cache: Duration,
    pub max_session: Duration,
    pub receipt_batch_size: usize,
    pub receipt_max_backoff: Duration,
    pub receipt_gas_limit: u64,
    /// Reverted `logReceipt` transactions (each burns gas) after which a receipt is given up.
    pub receipt_max_reverts: u32,
    /// `SAPPHIRE_GATEWAY_PRIVATE_KEY` (secp256k1, hex): signs receipts outside ROFL.
    pub gateway_key: Option<Secret>,
}

/// `0x` + 40 hex digits → bytes (the message names `what`).
pub fn parse_address(what: &str, text: &str) -> Result<[u8; 20], ConfigError> {
    let hex = text.strip_prefix("0x").unwrap_or(text);
    let bytes = decode_hex(hex).filter(|b| b.len() == 20).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "{what} must be an EVM address (0x followed by 40 hex digits)"
        ))
    })?;
    let mut out = [0u8; 20];
    out.copy_from_slice(&bytes);
    Ok(out)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A 32-byte private key in hex (`0x` optional); the message never contains the value.
fn check_key32(what: &str, key: &Secret) -> Result<(), ConfigError> {
    let t = key.expose();
    let hex = t.strip_prefix("0x").unwrap_or(t);
    match decode_hex(hex) {
        Some(b) if b.len() == 32 => Ok(()),
        _ => Err(ConfigError::Invalid(format!(
            "{what} must be 32 bytes in hex (64 hex digits, 0x optional)"
        ))),
    }
}

pub(super) fn build_rofl<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<RoflConfig, ConfigError> {
    let private_key = get("ROFL_PRIVATE_KEY").map(Secret::new);
    if let Some(k) = &private_key {
        check_key32("ROFL_PRIVATE_KEY", k)?;
    }
    Ok(RoflConfig {
        socket: PathBuf::from(get("ROFL_SOCKET_PATH").unwrap_or(DEFAULT_ROFL_SOCKET)),
        private_key,
    })
}

pub(super) fn build_sapphire<'a>(
    raw: &RawSapphire,
    get: &impl Fn(&str) -> Option<&'a str>,
    has_ledger: bool,
) -> Result<Option<SapphireConfig>, ConfigError> {
    let (address, source) = match get("EKAI_CONTROL_PLANE_ADDRESS") {
        Some(a) => (a.to_string(), "EKAI_CONTROL_PLANE_ADDRESS"),
        None => match &raw.control_plane_address {
            Some(a) => (a.clone(), "sapphire.control_plane_address"),
            None => return Ok(None),
        },
    };
    let control_plane = parse_address(source, address.trim())?;
    if !has_ledger {
        return Err(ConfigError::Invalid(
            "Sapphire mode (EKAI_CONTROL_PLANE_ADDRESS) needs the ledger database for wallet sessions and the receipt outbox: set DATABASE_URL".into(),
        ));
    }
    let rpc_url = get("SAPPHIRE_RPC_URL")
        .map(str::to_string)
        .or_else(|| raw.rpc_url.clone())
        .unwrap_or_else(|| TESTNET_RPC.to_string());
    if !(rpc_url.starts_with("http://") || rpc_url.starts_with("https://")) {
        return Err(ConfigError::Invalid(
            "SAPPHIRE_RPC_URL must start with http:// or https://".into(),
        ));
    }
    let chain_id = match get("SAPPHIRE_CHAIN_ID") {
        Some(c) => c.parse::<u64>().map_err(|_| {
            ConfigError::Invalid(format!(
                "SAPPHIRE_CHAIN_ID={c:?} is not a chain id (23295 testnet, 23294 mainnet)"
            ))
        })?,
        None => raw.chain_id.unwrap_or(TESTNET_CHAIN_ID),
    };
    let gateway_key = get("SAPPHIRE_GATEWAY_PRIVATE_KEY").map(Secret::new);
    if let Some(k) = &gateway_key {
        check_key32("SAPPHIRE_GATEWAY_PRIVATE_KEY", k)?;
    }
    let batch = raw.receipt_batch_size.unwrap_or(32);
    if !(1..=1000).contains(&batch) {
        return Err(ConfigError::Invalid(
            "sapphire.receipt_batch_size must be between 1 and 1000".into(),
        ));
    }
    let receipt_max_reverts = raw.receipt_max_reverts.unwrap_or(3);
    if !(1..=100).contains(&receipt_max_reverts) {
        return Err(ConfigError::Invalid(
            "sapphire.receipt_max_reverts must be between 1 and 100".into(),
        ));
    }
    Ok(Some(SapphireConfig {
        rpc_url,
        chain_id,
        control_plane,
        cache: Duration::from_millis(raw.cache_ms.unwrap_or(5_000)),
        max_session: Duration::from_secs(raw.max_session_secs.unwrap_or(7 * 24 * 3600).max(60)),
        receipt_batch_size: batch,
        receipt_max_backoff: Duration::from_millis(
            raw.receipt_max_backoff_ms.unwrap_or(60_000).max(100),
        ),
        receipt_gas_limit: raw.receipt_gas_limit.unwrap_or(300_000),
        receipt_max_reverts,
        gateway_key,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sapphire_mode_is_on_with_an_address_and_validated() {
        let c = Config::from_sources(&env(&[]), None, None).unwrap();
        assert!(c.sapphire.is_none());
        assert_eq!(c.rofl.socket.to_str(), Some("/run/rofl-appd.sock"));
        let addr = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
        let c = Config::from_sources(
            &env(&[
                ("EKAI_CONTROL_PLANE_ADDRESS", addr),
                ("SAPPHIRE_CHAIN_ID", "31337"),
                ("ROFL_PRIVATE_KEY", &"11".repeat(32)),
            ]),
            None,
            None,
        )
        .unwrap();
        let s = c.sapphire.as_ref().unwrap();
        assert_eq!(s.chain_id, 31337);
        assert_eq!(s.rpc_url, "https://testnet.sapphire.oasis.io");
        assert_eq!(s.control_plane[0], 0x5f);
        assert!(!format!("{c:?}").contains(&"11".repeat(32)));
        let text = format!(
            "[sapphire]\ncontrol_plane_address = \"{addr}\"\nchain_id = 23294\ncache_ms = 10\n"
        );
        let c = Config::from_sources(&env(&[]), None, Some(&text)).unwrap();
        let s = c.sapphire.unwrap();
        assert_eq!((s.chain_id, s.receipt_max_reverts), (23294, 3));
        let c = Config::from_sources(
            &env(&[]),
            None,
            Some(&format!("{text}receipt_max_reverts = 1\n")),
        )
        .unwrap();
        assert_eq!(c.sapphire.unwrap().receipt_max_reverts, 1);
        let e = Config::from_sources(
            &env(&[]),
            None,
            Some(&format!("{text}receipt_max_reverts = 0\n")),
        )
        .unwrap_err();
        assert!(e.to_string().contains("receipt_max_reverts"), "{e}");
        for (k, v, needle) in [
            (
                "EKAI_CONTROL_PLANE_ADDRESS",
                "0x12",
                "EKAI_CONTROL_PLANE_ADDRESS",
            ),
            ("ROFL_PRIVATE_KEY", "zz", "ROFL_PRIVATE_KEY"),
        ] {
            let e = Config::from_sources(&env(&[(k, v)]), None, None).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
        let e = Config::from_sources(
            &env(&[
                ("EKAI_CONTROL_PLANE_ADDRESS", addr),
                ("DATABASE_URL", "none"),
            ]),
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("DATABASE_URL"), "{e}");
        let e = Config::from_sources(&env(&[]), None, Some("[sapphire]\nrpc = 1\n")).unwrap_err();
        assert!(e.to_string().contains("sapphire"), "{e}");
    }
}
