//! A local EVM chain for tests: anvil (npm `@foundry-rs/anvil`, which ships its binary) on a free
//! 127.0.0.1 port, contracts compiled with solc-js (npm `solc`) and deployed with alloy. Both
//! packages are installed once into a cache under the target directory (`tests/chain/package.json`
//! and its lock file). Set `EKAI_SKIP_CHAIN=1` to skip the tests that need it (they print why).

use super::{INSTALL_TIMEOUT, npm_install_cached};
use alloy_network::{Ethereum, EthereumWallet, Network, TransactionBuilder};
use alloy_primitives::{Address, Bytes, U256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_signer_local::PrivateKeySigner;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// anvil's default chain id.
pub const CHAIN_ID: u64 = 31337;

/// `crates/gateway/tests/chain`: the package manifest, lock file and compile script.
pub fn chain_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chain")
}

/// True (after printing why) when chain tests are switched off.
pub fn skipped(test: &str) -> bool {
    if std::env::var("EKAI_SKIP_CHAIN").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: EKAI_SKIP_CHAIN=1 (needs anvil and solc from npm)");
        return true;
    }
    false
}

/// Installs anvil and solc-js (once per lock file); returns the install directory.
pub async fn tools() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("test-tools/chain");
    let dir = npm_install_cached(&chain_src(), &dir)
        .await
        .unwrap_or_else(|e| {
            panic!("installing anvil and solc from npm failed (EKAI_SKIP_CHAIN=1 skips): {e}")
        });
    std::fs::copy(chain_src().join("compile.mjs"), dir.join("compile.mjs")).unwrap();
    dir
}

/// The platform binary inside `node_modules` (`@foundry-rs/anvil-<os>-<arch>/bin/anvil`); the
/// package's own `bin.mjs` is a wrapper whose child would outlive a kill.
pub fn anvil_bin(node_dir: &Path) -> PathBuf {
    let scope = node_dir.join("node_modules/@foundry-rs");
    let found = std::fs::read_dir(&scope).ok().and_then(|entries| {
        entries.flatten().find_map(|e| {
            let bin = e.path().join("bin/anvil");
            (e.file_name().to_string_lossy().starts_with("anvil-") && bin.is_file()).then_some(bin)
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "no anvil binary under {scope:?} (is @foundry-rs/anvil installed for this platform?)"
        )
    })
}

/// A compiled contract.
pub struct Compiled {
    pub abi: serde_json::Value,
    pub bytecode: Vec<u8>,
}

/// Compiles `sol` with solc-js: contract name → ABI and creation bytecode.
pub async fn compile(tools: &Path, sol: &Path) -> HashMap<String, Compiled> {
    let out = tokio::time::timeout(
        INSTALL_TIMEOUT,
        tokio::process::Command::new("node")
            .arg(tools.join("compile.mjs"))
            .arg(sol)
            .current_dir(tools)
            .output(),
    )
    .await
    .expect("solc timed out")
    .expect("run node");
    assert!(
        out.status.success(),
        "solc failed on {sol:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(name, c)| {
            let hex = c["bytecode"].as_str().unwrap();
            (
                name.clone(),
                Compiled {
                    abi: c["abi"].clone(),
                    bytecode: alloy_primitives::hex::decode(hex).unwrap(),
                },
            )
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running anvil. Its state is kept in a file, so `stop` + `start_again` is a node restart
/// that keeps the chain (contracts, balances) but loses the mempool, like a real outage.
pub struct Anvil {
    child: Option<Child>,
    bin: PathBuf,
    chain_id: u64,
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    state: PathBuf,
    log: PathBuf,
}

impl Anvil {
    /// anvil from the chain tools (`tools()`), with its default chain id.
    pub async fn start(tools: &Path) -> Anvil {
        Anvil::start_with(anvil_bin(tools), CHAIN_ID).await
    }

    /// The anvil binary `bin` with `chain_id`.
    pub async fn start_with(bin: PathBuf, chain_id: u64) -> Anvil {
        let dir = super::scratch_dir();
        let port = free_port();
        let mut a = Anvil {
            child: None,
            bin,
            chain_id,
            port,
            url: format!("http://127.0.0.1:{port}"),
            state: dir.join("anvil-state.json"),
            log: dir.join("anvil.log"),
        };
        a.start_again().await;
        a
    }

    /// Starts anvil (again) on the same port with the saved state.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "anvil is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--chain-id", &self.chain_id.to_string()])
            .arg("--state")
            .arg(&self.state)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("start anvil {:?}: {e}", self.bin));
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if self.rpc("eth_chainId", serde_json::json!([])).await.is_ok() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "anvil did not answer on {}: {}",
                self.url,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops anvil gracefully (SIGTERM: it writes its state file) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// A raw JSON-RPC call.
    pub async fn rpc(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp = super::client()
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        match v.get("error") {
            Some(e) => Err(e.to_string()),
            None => Ok(v["result"].clone()),
        }
    }

    /// Gives `addr` `eth` ether (anvil_setBalance).
    pub async fn fund(&self, addr: Address, eth: u64) {
        let wei = U256::from(eth) * U256::from(10u64).pow(U256::from(18u64));
        self.rpc(
            "anvil_setBalance",
            serde_json::json!([format!("{addr:#x}"), format!("{wei:#x}")]),
        )
        .await
        .unwrap();
    }

    /// A provider that signs with `signer` (nonce, gas and chain id filled in).
    pub fn provider(&self, signer: PrivateKeySigner) -> DynProvider {
        let _ = rustls::crypto::ring::default_provider().install_default();
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_reqwest(super::client(), reqwest::Url::parse(&self.url).unwrap())
            .erased()
    }

    /// Deploys `code` followed by the ABI-encoded constructor arguments; returns the address.
    pub async fn deploy(&self, p: &DynProvider, code: &[u8], ctor_args: &[u8]) -> Address {
        let mut init = code.to_vec();
        init.extend_from_slice(ctor_args);
        let tx = <Ethereum as Network>::TransactionRequest::default()
            .with_deploy_code(Bytes::from(init));
        let r = p
            .send_transaction(tx)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "deployment reverted");
        r.contract_address.expect("no contract address")
    }

    /// Sends a call to `to` and waits for it to be mined; panics when it reverts.
    pub async fn send(&self, p: &DynProvider, to: Address, data: Vec<u8>) {
        let tx = <Ethereum as Network>::TransactionRequest::default()
            .with_to(to)
            .with_input(Bytes::from(data));
        let r = p
            .send_transaction(tx)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "transaction to {to} reverted");
    }

    /// A read-only call.
    pub async fn call(&self, p: &DynProvider, to: Address, data: Vec<u8>) -> Vec<u8> {
        let tx = <Ethereum as Network>::TransactionRequest::default()
            .with_to(to)
            .with_input(Bytes::from(data));
        p.call(tx).await.unwrap().to_vec()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
