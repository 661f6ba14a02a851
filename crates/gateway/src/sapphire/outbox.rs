//! The receipt sender: reads due receipts from the outbox (written with the ledger rows) and sends
//! `logReceipt` for each — through `rofl-appd` inside ROFL, else as a normal transaction signed with
//! `SAPPHIRE_GATEWAY_PRIVATE_KEY`. A receipt stays pending until its transaction is mined; failures
//! are retried with exponential backoff (1 s, 2 s, 4 s … up to `receipt_max_backoff`). Nothing here
//! is on a request's path: requests only add rows to the outbox, in the ledger's batch.
//!
//! A transaction's hash is stored as soon as it is sent, so after a restart (or `kill -9`) the
//! sender first looks for that transaction's receipt instead of sending a second one; a sent
//! transaction with no receipt after [`RESEND_AFTER`] (a node that lost its mempool) is sent again.

use super::chain::IEkaiControlPlane;
use super::rofl::RoflClient;
use crate::config::SapphireConfig;
use crate::ledger::store::{OutboxRow, Store};
use crate::ledger::time::now_ms;
use alloy_network::{Ethereum, EthereumWallet, Network, TransactionBuilder};
use alloy_primitives::{Address, B256, Bytes};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use std::time::Duration;

/// How often the outbox is read when idle.
pub const POLL: Duration = Duration::from_millis(500);
/// Longest wait for a sent transaction's receipt within one round.
const RECEIPT_WAIT: Duration = Duration::from_secs(30);
/// A sent transaction still without a receipt after this long is sent again.
pub const RESEND_AFTER: Duration = Duration::from_secs(60);

enum Submit {
    Rofl(RoflClient),
    Wallet(DynProvider),
}

pub struct Sender {
    store: Store,
    submit: Submit,
    to: Address,
    gas_limit: u64,
    batch: usize,
    max_backoff: Duration,
}

fn parse_b256(s: &str) -> Option<B256> {
    s.parse().ok()
}

/// The `logReceipt` calldata of an outbox row (None when a stored field is not what it should be).
pub fn calldata(r: &OutboxRow) -> Option<Vec<u8>> {
    let call = IEkaiControlPlane::logReceiptCall {
        requestHash: parse_b256(&r.request_hash)?,
        owner: r.owner.parse().ok()?,
        delegate: r.delegate.parse().ok()?,
        providerId: parse_b256(&r.provider_id)?,
        modelId: parse_b256(&r.model_id)?,
        promptTokens: u32::try_from(r.prompt_tokens).unwrap_or(u32::MAX),
        completionTokens: u32::try_from(r.completion_tokens).unwrap_or(u32::MAX),
    };
    Some(call.abi_encode())
}

fn backoff(attempts: i32, max: Duration) -> i64 {
    let exp = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    let d = Duration::from_secs(1)
        .saturating_mul(2u32.saturating_pow(exp))
        .min(max);
    now_ms() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Sender {
    /// None (with a log line saying why) when receipts cannot be sent from this process.
    pub fn new(
        store: Store,
        cfg: &SapphireConfig,
        inside_rofl: Option<RoflClient>,
        http: reqwest::Client,
    ) -> Option<Sender> {
        let submit = match (inside_rofl, &cfg.gateway_key) {
            (Some(c), _) => Submit::Rofl(c),
            (None, Some(k)) => {
                let t = k.expose();
                let signer: PrivateKeySigner = match t.parse() {
                    Ok(s) => s,
                    Err(_) => {
                        tracing::error!(
                            "SAPPHIRE_GATEWAY_PRIVATE_KEY is not a secp256k1 key; receipts stay in the outbox"
                        );
                        return None;
                    }
                };
                tracing::info!("receipts are sent from {}", signer.address());
                let url = reqwest::Url::parse(&cfg.rpc_url).ok()?;
                let provider = ProviderBuilder::new()
                    .wallet(EthereumWallet::from(signer))
                    .connect_reqwest(http, url)
                    .erased();
                Submit::Wallet(provider)
            }
            (None, None) => {
                tracing::warn!(
                    "Sapphire mode outside ROFL without SAPPHIRE_GATEWAY_PRIVATE_KEY: receipts are kept in the outbox, not sent"
                );
                return None;
            }
        };
        Some(Sender {
            store,
            submit,
            to: Address::from(cfg.control_plane),
            gas_limit: cfg.receipt_gas_limit,
            batch: cfg.receipt_batch_size,
            max_backoff: cfg.receipt_max_backoff,
        })
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let sent = match self.store.outbox_due(now_ms(), self.batch).await {
                Ok(rows) if rows.is_empty() => 0,
                Ok(rows) => {
                    let n = rows.len();
                    self.round(rows).await;
                    n
                }
                Err(e) => {
                    tracing::warn!("receipt outbox: reading failed: {e}");
                    0
                }
            };
            // A full batch: more may be due at once.
            if sent >= self.batch {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
        }
    }

    async fn round(&self, rows: Vec<OutboxRow>) {
        match &self.submit {
            Submit::Rofl(c) => {
                for r in rows {
                    self.send_rofl(c, &r).await;
                }
            }
            Submit::Wallet(p) => self.send_wallet(p, rows).await,
        }
    }

    async fn fail(&self, r: &OutboxRow, why: &str, forget_tx: bool) {
        tracing::warn!(
            request_id = %r.request_id,
            attempts = r.attempts + 1,
            "receipt not sent yet: {why}"
        );
        if let Err(e) = self
            .store
            .outbox_failed(r.id, why, backoff(r.attempts, self.max_backoff), forget_tx)
            .await
        {
            tracing::warn!("receipt outbox: recording a failure failed: {e}");
        }
    }

    async fn mined(&self, r: &OutboxRow, tx: Option<B256>) {
        let hash = tx.map(|h| format!("{h:#x}"));
        match self
            .store
            .outbox_mined(r.id, hash.as_deref(), now_ms())
            .await
        {
            Ok(()) => tracing::debug!(request_id = %r.request_id, tx = ?hash, "receipt mined"),
            Err(e) => tracing::warn!("receipt outbox: marking mined failed: {e}"),
        }
    }

    async fn send_rofl(&self, c: &RoflClient, r: &OutboxRow) {
        let Some(data) = calldata(r) else {
            self.fail(r, "unreadable outbox row", false).await;
            return;
        };
        match c
            .sign_submit_eth(&self.to.into_array(), &data, self.gas_limit)
            .await
        {
            Ok(()) => self.mined(r, None).await,
            Err(e) => self.fail(r, &e.to_string(), false).await,
        }
    }

    async fn send_wallet(&self, p: &DynProvider, rows: Vec<OutboxRow>) {
        // First the rows sent before (by this process or one that died): their receipt decides.
        let mut to_send = Vec::new();
        for r in rows {
            let Some(hash) = r.tx_hash.as_deref().and_then(parse_b256) else {
                to_send.push(r);
                continue;
            };
            match p.get_transaction_receipt(hash).await {
                Ok(Some(rc)) if rc.status() => self.mined(&r, Some(hash)).await,
                Ok(Some(_)) => self.fail(&r, "logReceipt reverted", true).await,
                Ok(None) if now_ms() - r.sent_at.unwrap_or(0) > RESEND_AFTER.as_millis() as i64 => {
                    to_send.push(r)
                }
                Ok(None) => {
                    // Still pending: look again in a little while.
                    let _ = self
                        .store
                        .outbox_failed(r.id, "transaction pending", now_ms() + 2_000, false)
                        .await;
                }
                Err(e) => {
                    self.fail(&r, &format!("receipt lookup failed: {e}"), false)
                        .await
                }
            }
        }
        // Then send the batch back to back, and wait for their receipts.
        let mut pending = Vec::new();
        let mut down: Option<String> = None;
        for r in to_send {
            if let Some(why) = &down {
                // The node refused the previous one: the rest waits (with backoff) too.
                self.fail(&r, why, true).await;
                continue;
            }
            let Some(data) = calldata(&r) else {
                self.fail(&r, "unreadable outbox row", false).await;
                continue;
            };
            let tx = <Ethereum as Network>::TransactionRequest::default()
                .with_to(self.to)
                .with_input(Bytes::from(data))
                .with_gas_limit(self.gas_limit);
            match p.send_transaction(tx).await {
                Ok(pt) => {
                    let hash = *pt.tx_hash();
                    if let Err(e) = self.store.outbox_sent(r.id, &format!("{hash:#x}")).await {
                        tracing::warn!("receipt outbox: recording a sent transaction failed: {e}");
                    }
                    pending.push((r, pt));
                }
                Err(e) => {
                    let why = format!("sending failed: {e}");
                    self.fail(&r, &why, true).await;
                    down = Some(why);
                }
            }
        }
        for (r, pt) in pending {
            let hash = *pt.tx_hash();
            match pt.with_timeout(Some(RECEIPT_WAIT)).get_receipt().await {
                Ok(rc) if rc.status() => self.mined(&r, Some(hash)).await,
                Ok(_) => self.fail(&r, "logReceipt reverted", true).await,
                // Not forgotten: the next round looks the hash up again.
                Err(e) => {
                    self.fail(&r, &format!("waiting for the receipt: {e}"), false)
                        .await
                }
            }
        }
    }
}
