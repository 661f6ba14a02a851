//! The receipt sender: reads due receipts from the outbox (written with the ledger rows) and sends
//! `logReceipt` for each — through `rofl-appd` inside ROFL, else as a normal transaction signed with
//! `SAPPHIRE_GATEWAY_PRIVATE_KEY`. A receipt stays pending until its transaction is mined; failures
//! are retried with exponential backoff (1 s, 2 s, 4 s … up to `receipt_max_backoff`). Nothing here
//! is on a request's path: requests only add rows to the outbox, in the ledger's batch.
//!
//! A transaction's hash is stored as soon as it is sent, so after a restart (or `kill -9`) the
//! sender first looks for that transaction's receipt instead of sending a second one; a sent
//! transaction with no receipt after [`RESEND_AFTER`] (a node that lost its mempool) is sent again.
//!
//! A transaction that reverted burnt gas and will almost surely revert again (the contract refuses
//! this receipt): after `receipt_max_reverts` reverts the receipt is given up, logged as an error and
//! kept in the outbox (and its usage row in the ledger), never sent again. Failures that cost nothing
//! (node down, daemon unreachable) are retried for as long as they last.

use super::chain::IEkaiControlPlane;
use super::rofl::{RoflClient, RoflError};
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
    max_reverts: u32,
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
                // The nonce is asked of the node for every transaction ("pending" count), never
                // cached: a send that failed during an outage must not leave a gap that strands
                // every later receipt in the mempool.
                let provider = ProviderBuilder::new()
                    .disable_recommended_fillers()
                    .with_gas_estimation()
                    .with_simple_nonce_management()
                    .with_chain_id(cfg.chain_id)
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
            max_reverts: cfg.receipt_max_reverts,
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

    /// A transaction for `r` reverted: counted; given up at the `max_reverts`th.
    async fn reverted(&self, r: &OutboxRow, why: &str) {
        let next = backoff(r.attempts, self.max_backoff);
        match self
            .store
            .outbox_reverted(r.id, why, next, self.max_reverts)
            .await
        {
            Ok(true) => tracing::error!(
                request_id = %r.request_id,
                reverts = r.reverts + 1,
                "receipt given up: its logReceipt transaction reverted {} times ({why}); it stays in the outbox, unsent",
                r.reverts + 1
            ),
            Ok(false) => tracing::warn!(
                request_id = %r.request_id,
                reverts = r.reverts + 1,
                "receipt not sent yet: {why}"
            ),
            Err(e) => tracing::warn!("receipt outbox: recording a revert failed: {e}"),
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
            Err(e @ RoflError::CallFailed { .. }) => self.reverted(r, &e.to_string()).await,
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
                Ok(Some(_)) => self.reverted(&r, "logReceipt reverted").await,
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
                Ok(_) => self.reverted(&r, "logReceipt reverted").await,
                // Not forgotten: the next round looks the hash up again.
                Err(e) => {
                    self.fail(&r, &format!("waiting for the receipt: {e}"), false)
                        .await
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::accounting::{Parties, UsageRecord};
    use crate::ledger::store::Row;
    use crate::sapphire::rofl::fake;
    use ekai_wire::canonical::{Dialect, Usage};

    fn record(id: &str) -> UsageRecord {
        UsageRecord {
            request_id: id.into(),
            attempt: 1,
            started_at: std::time::SystemTime::now(),
            client_key_id: None,
            client_dialect: Dialect::OpenAiChat,
            requested_model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            upstream_model: "gpt-4o-mini".into(),
            status: 200,
            error_kind: None,
            error: None,
            usage: Usage {
                input_tokens: 21,
                output_tokens: 7,
                ..Usage::default()
            },
            usage_estimated: false,
            cost: None,
            streamed: false,
            client_disconnected: false,
            first_byte: None,
            total: Duration::from_millis(5),
            payment_method: "api_key",
            payment: None,
            receipt: Some(Parties {
                owner: [0xaa; 20],
                delegate: [0xbb; 20],
            }),
        }
    }

    fn config() -> SapphireConfig {
        SapphireConfig {
            rpc_url: "http://127.0.0.1:9".into(),
            chain_id: 31337,
            control_plane: [0xcc; 20],
            cache: Duration::from_millis(10),
            max_session: Duration::from_secs(3600),
            receipt_batch_size: 8,
            receipt_max_backoff: Duration::from_secs(1),
            receipt_gas_limit: 123_456,
            receipt_max_reverts: 2,
            gateway_key: None,
        }
    }

    #[tokio::test]
    async fn inside_rofl_receipts_go_through_sign_submit() {
        let appd = fake::start().await;
        let dir = appd.socket.parent().unwrap().to_path_buf();
        let store = Store::open(&format!("sqlite://{}/outbox.db", dir.display()))
            .await
            .unwrap();
        let add = |id: &'static str| {
            let store = store.clone();
            async move {
                let r = record(id);
                let o = OutboxRow::from_record(&r).unwrap();
                store
                    .insert_batch_with_receipts(&[Row::from_record(&r)], &[o])
                    .await
                    .unwrap();
            }
        };
        add("req_1").await;
        let rofl = RoflClient::new(&appd.socket).unwrap();
        let sender = Sender::new(store.clone(), &config(), Some(rofl), reqwest::Client::new())
            .expect("a sender inside ROFL");
        sender
            .round(store.outbox_due(now_ms(), 8).await.unwrap())
            .await;
        let rows = store.outbox_all().await.unwrap();
        assert!(rows[0].mined_at.is_some(), "{rows:?}");
        let seen = appd.seen.lock().unwrap().clone();
        let (what, body) = &seen[0];
        assert_eq!(what, "tx/sign-submit");
        assert_eq!(body["encrypt"], true);
        assert_eq!(body["tx"]["kind"], "eth");
        let data = &body["tx"]["data"];
        assert_eq!(data["to"], "cc".repeat(20));
        assert_eq!(data["gas_limit"], 123_456);
        assert_eq!(data["value"], 0);
        let calldata = alloy_primitives::hex::decode(data["data"].as_str().unwrap()).unwrap();
        let call = IEkaiControlPlane::logReceiptCall::abi_decode(&calldata).unwrap();
        assert_eq!(call.owner, Address::repeat_byte(0xaa));
        assert_eq!(call.delegate, Address::repeat_byte(0xbb));
        assert_eq!(call.providerId, crate::sapphire::ids::provider_id("openai"));
        assert_eq!(call.modelId, crate::sapphire::ids::model_id("gpt-4o-mini"));
        assert_eq!((call.promptTokens, call.completionTokens), (21, 7));
        assert_eq!(format!("{:#x}", call.requestHash), rows[0].request_hash);

        // A failed call stays pending, with the daemon's reason and a later retry.
        *appd.sign_submit_reply.lock().unwrap() = "a1646661696ca364636f646508666d6f64756c656365766d676d6573736167657272657665727465643a20614a416f4c773d3d".into();
        add("req_2").await;
        sender
            .round(store.outbox_due(now_ms(), 8).await.unwrap())
            .await;
        let rows = store.outbox_all().await.unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[1].mined_at.is_none());
        assert_eq!(rows[1].attempts, 1);
        assert!(rows[1].last_error.as_deref().unwrap().contains("reverted"));
        assert!(rows[1].next_attempt_at > now_ms());
        assert_eq!((rows[1].reverts, rows[1].given_up_at), (1, None));
        assert!(store.outbox_due(now_ms(), 8).await.unwrap().is_empty());

        // The second revert (the cap in `config()`) gives it up: each one burnt gas.
        let later = now_ms() + 3_600_000;
        sender
            .round(store.outbox_due(later, 8).await.unwrap())
            .await;
        let rows = store.outbox_all().await.unwrap();
        assert_eq!((rows[1].reverts, rows[1].attempts), (2, 2));
        assert!(rows[1].given_up_at.is_some());
        assert!(store.outbox_due(later, 8).await.unwrap().is_empty());
        assert_eq!(appd.seen.lock().unwrap().len(), 3);

        // A daemon that cannot be reached costs nothing: retried, never counted as a revert.
        add("req_3").await;
        let gone = RoflClient::new(&dir.join("no-such.sock")).unwrap();
        let cut_off = Sender::new(store.clone(), &config(), Some(gone), reqwest::Client::new())
            .expect("a sender inside ROFL");
        for _ in 0..3 {
            cut_off
                .round(store.outbox_due(now_ms() + 3_600_000, 8).await.unwrap())
                .await;
        }
        let rows = store.outbox_all().await.unwrap();
        assert_eq!((rows[2].attempts, rows[2].reverts), (3, 0));
        assert!(rows[2].given_up_at.is_none() && rows[2].mined_at.is_none());
        assert_eq!(store.outbox_counts().await.unwrap(), (1, 1, 1));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let now = now_ms();
        let d = |a| backoff(a, Duration::from_secs(60)) - now;
        assert!((1000..1100).contains(&d(0)));
        assert!((4000..4100).contains(&d(2)));
        assert!((60_000..60_100).contains(&d(20)));
    }
}
