//! A local EVM chain for tests: anvil, the binary npm `@foundry-rs/anvil` ships (installed with
//! `npm_install_cached` into a directory whose `node_modules` holds it), on a free 127.0.0.1 port,
//! killed when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

pub struct Anvil {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: tokio::process::Child,
}

/// The platform binary inside `node_modules` (`@foundry-rs/anvil-<os>-<arch>/bin/anvil`); the
/// package's own `bin.mjs` is a wrapper whose child would outlive a kill.
pub fn binary(dir: &Path) -> Result<PathBuf, String> {
    let scope = dir.join("node_modules/@foundry-rs");
    let entries = std::fs::read_dir(&scope).map_err(|e| format!("read {scope:?}: {e}"))?;
    for e in entries.flatten() {
        let bin = e.path().join("bin/anvil");
        if e.file_name().to_string_lossy().starts_with("anvil-") && bin.is_file() {
            return Ok(bin);
        }
    }
    Err(format!(
        "no anvil binary under {scope:?} (is @foundry-rs/anvil installed for this platform?)"
    ))
}

impl Anvil {
    /// Starts anvil with `chain_id` and waits until it answers JSON-RPC.
    pub async fn start(node_dir: &Path, chain_id: u64) -> Result<Anvil, String> {
        let bin = binary(node_dir)?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let child = tokio::process::Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chain-id", &chain_id.to_string(), "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start {bin:?}: {e}"))?;
        let anvil = Anvil {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if anvil
                .rpc("eth_chainId", serde_json::json!([]))
                .await
                .is_ok()
            {
                return Ok(anvil);
            }
            if Instant::now() > until {
                return Err(format!("anvil did not answer on {} within 20 s", anvil.url));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One JSON-RPC call; Ok(result).
    pub async fn rpc(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        match v.get("result") {
            Some(r) => Ok(r.clone()),
            None => Err(v.to_string()),
        }
    }
}
