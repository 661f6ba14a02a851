//! x402 pay-per-request, client side (protocol v1 and v2): read a relay's 402, check the spend
//! controls, reserve the amount in the spend book, sign an EIP-3009 `TransferWithAuthorization`
//! with the wallet, and build the payment header for the replayed request; afterwards read the
//! settlement header and settle or release the reservation.
//!
//! Nothing here does HTTP: the proxy sends the requests (`proxy::pay`). The wallet key lives in a
//! `PrivateKeySigner` and never appears in a log, an error or the database.

pub mod eip3009;
mod spend;
pub mod wire;

pub use spend::MemoryBook;

use crate::accounting::{Payment, SpendBook, SpendEntry, SpendRefused};
use crate::config::{Secret, X402Config};
use alloy_primitives::{Address, U256};
use alloy_signer_local::PrivateKeySigner;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use eip3009::TransferWithAuthorization;
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use wire::{Authorization, Requirements};

/// Seconds of clock skew allowed before now in `validAfter` (as the reference client does).
const VALID_AFTER_SKEW: u64 = 600;
/// Validity when a requirement states no `maxTimeoutSeconds`.
const DEFAULT_TIMEOUT: u64 = 60;
/// Atomic units per USD of a 6-decimal stablecoin.
const ATOMIC_PER_USD: u64 = 1_000_000;

/// The wallet that pays. Debug shows its address only.
pub struct Wallet(PrivateKeySigner);

impl Wallet {
    pub fn new(key: &Secret) -> Result<Wallet, String> {
        let hex = key.expose().trim();
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        hex.parse::<PrivateKeySigner>()
            .map(Wallet)
            // The parser's message could quote the input: say only what is wrong.
            .map_err(|_| "the x402 wallet key is not a valid secp256k1 private key".to_string())
    }

    pub fn address(&self) -> Address {
        self.0.address()
    }

    pub fn signer(&self) -> &PrivateKeySigner {
        &self.0
    }
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wallet({})", self.address())
    }
}

/// One way to pay offered by a 402: the server's JSON (echoed in v2) and its parsed fields.
#[derive(Debug)]
pub struct Offer {
    pub raw: Box<RawValue>,
    pub req: Requirements,
}

impl Offer {
    /// The amount asked, in atomic units (`amount` in v2, `maxAmountRequired` in v1).
    pub fn amount(&self) -> Option<U256> {
        let text = self
            .req
            .amount
            .as_deref()
            .or(self.req.max_amount_required.as_deref())?;
        U256::from_str_radix(text.trim(), 10).ok()
    }
}

/// A relay's 402, parsed.
#[derive(Debug)]
pub struct Challenge {
    pub version: u8,
    pub error: Option<String>,
    pub resource: Option<Box<RawValue>>,
    pub offers: Vec<Offer>,
}

fn decode_b64_json<T: serde::de::DeserializeOwned>(v: &[u8]) -> Result<T, String> {
    let bytes = B64
        .decode(v.trim_ascii())
        .map_err(|e| format!("not base64: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not the expected JSON: {e}"))
}

/// The 402's payment requirements: the `PAYMENT-REQUIRED` header (v2) or the JSON body (v1).
pub fn parse_challenge(headers: &http::HeaderMap, body: &[u8]) -> Result<Challenge, String> {
    let pr: wire::PaymentRequired = match headers.get(wire::V2_REQUIRED_HEADER) {
        Some(h) => decode_b64_json(h.as_bytes())
            .map_err(|e| format!("unreadable PAYMENT-REQUIRED header: {e}"))?,
        None => serde_json::from_slice(body).map_err(|e| {
            format!("the 402 has neither a PAYMENT-REQUIRED header nor an x402 JSON body ({e})")
        })?,
    };
    if !matches!(pr.x402_version, 1 | 2) {
        return Err(format!(
            "x402 version {} is not supported (1 and 2 are)",
            pr.x402_version
        ));
    }
    let offers: Vec<Offer> = pr
        .accepts
        .into_iter()
        .filter_map(|raw| {
            let req = serde_json::from_str::<Requirements>(raw.get()).ok()?;
            Some(Offer { raw, req })
        })
        .collect();
    if offers.is_empty() {
        return Err(format!(
            "the 402 offers no readable payment requirements{}",
            pr.error.map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    }
    Ok(Challenge {
        version: pr.x402_version,
        error: pr.error,
        resource: pr.resource,
        offers,
    })
}

/// The settlement the relay reported on the paid answer (either version's header).
pub fn read_settlement(headers: &http::HeaderMap) -> Option<wire::SettleResponse> {
    let h = headers
        .get(wire::V2_RESPONSE_HEADER)
        .or_else(|| headers.get(wire::V1_RESPONSE_HEADER))?;
    decode_b64_json(h.as_bytes()).ok()
}

/// The 65-byte signature as 0x-hex.
fn sig_hex(sig: &[u8]) -> String {
    format!("0x{}", alloy_primitives::hex::encode(sig))
}

/// Signs `auth` for the token `offer` designates. Fails when the requirement lacks what the
/// EIP-712 domain needs.
pub fn sign_offer(wallet: &Wallet, offer: &Offer, auth: &Authorization) -> Result<String, String> {
    let (domain, msg) = typed_data(offer, auth)?;
    eip3009::sign(wallet.signer(), &msg, &domain).map(|s| sig_hex(&s))
}

/// The EIP-712 domain and message of `auth` under `offer`.
pub fn typed_data(
    offer: &Offer,
    auth: &Authorization,
) -> Result<(alloy_sol_types::Eip712Domain, TransferWithAuthorization), String> {
    let r = &offer.req;
    let chain = eip3009::chain_id(&r.network)
        .ok_or_else(|| format!("network {:?} is not an EVM network", r.network))?;
    let extra = r.extra.as_ref();
    let name = extra
        .and_then(|e| e.name.as_deref())
        .ok_or("the requirement has no extra.name (the token's EIP-712 domain name)".to_string())?;
    let version = extra.and_then(|e| e.version.as_deref()).ok_or(
        "the requirement has no extra.version (the token's EIP-712 domain version)".to_string(),
    )?;
    let token: Address = r
        .asset
        .parse()
        .map_err(|_| format!("asset {:?} is not an address", r.asset))?;
    let addr = |s: &str, what: &str| {
        s.parse::<Address>()
            .map_err(|_| format!("{what} {s:?} is not an address"))
    };
    let num = |s: &str, what: &str| {
        U256::from_str_radix(s, 10).map_err(|_| format!("{what} {s:?} is not a number"))
    };
    let nonce: alloy_primitives::B256 = auth
        .nonce
        .parse()
        .map_err(|_| "the nonce is not 32 bytes of hex".to_string())?;
    let msg = TransferWithAuthorization {
        from: addr(&auth.from, "from")?,
        to: addr(&auth.to, "payTo")?,
        value: num(&auth.value, "value")?,
        validAfter: num(&auth.valid_after, "validAfter")?,
        validBefore: num(&auth.valid_before, "validBefore")?,
        nonce,
    };
    Ok((eip3009::domain(name, version, chain, token), msg))
}

/// The payment header for a signed authorization: (name, base64 value).
pub fn payment_header(
    ch: &Challenge,
    offer: &Offer,
    auth: Authorization,
    signature: String,
) -> Result<(&'static str, String), String> {
    let json = if ch.version == 1 {
        serde_json::to_vec(&wire::PaymentPayloadV1 {
            x402_version: 1,
            scheme: offer.req.scheme.clone(),
            network: offer.req.network.clone(),
            payload: wire::ExactPayloadV1 {
                signature,
                authorization: auth,
            },
        })
    } else {
        serde_json::to_vec(&wire::PaymentPayloadV2 {
            x402_version: 2,
            payload: wire::ExactPayloadV2 {
                authorization: auth,
                signature,
            },
            resource: ch.resource.as_deref(),
            accepted: &offer.raw,
        })
    }
    .map_err(|e| format!("cannot encode the payment: {e}"))?;
    let name = if ch.version == 1 {
        wire::V1_PAYMENT_HEADER
    } else {
        wire::V2_PAYMENT_HEADER
    };
    Ok((name, B64.encode(json)))
}

/// Why the gateway would not pay.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub message: String,
    /// The spend book could not be read or written (not the client's doing).
    pub internal: bool,
}

impl Refusal {
    fn policy(message: impl Into<String>) -> Self {
        Refusal {
            message: message.into(),
            internal: false,
        }
    }
}

/// A signed payment not yet settled or released. Dropped unfinished, its reservation keeps
/// counting against the caps (the relay may still settle it until `validBefore`).
#[derive(Debug)]
pub struct Authorized {
    pub header: (&'static str, String),
    pub payment: Payment,
    id: String,
}

/// Pays relays from one wallet within the configured limits.
pub struct Payer {
    wallet: Wallet,
    cfg: X402Config,
    book: Arc<dyn SpendBook>,
}

fn usd(atomic: U256) -> Option<Decimal> {
    let n = u64::try_from(atomic).ok()?;
    Some(Decimal::from(n) / Decimal::from(ATOMIC_PER_USD))
}

fn fmt_usd(d: Decimal) -> String {
    d.round_dp(6).normalize().to_string()
}

fn nano_usd(n: i64) -> String {
    fmt_usd(Decimal::from(n) / Decimal::from(1_000_000_000u64))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Payer {
    pub fn new(wallet: Wallet, cfg: X402Config, book: Arc<dyn SpendBook>) -> Payer {
        Payer { wallet, cfg, book }
    }

    pub fn address(&self) -> Address {
        self.wallet.address()
    }

    /// The spend controls that need no database, for one offer: Ok(amount in atomic units and
    /// nano-USD) or why not.
    fn check(&self, offer: &Offer, expected: Option<Decimal>) -> Result<(U256, i64), String> {
        let r = &offer.req;
        if r.scheme != "exact" {
            return Err(format!(
                "scheme {:?} is not supported (only \"exact\")",
                r.scheme
            ));
        }
        let chain = eip3009::chain_id(&r.network)
            .ok_or_else(|| format!("network {:?} is not an EVM network", r.network))?;
        if !self.cfg.chain_ids.contains(&chain) {
            return Err(format!(
                "network {:?} is not allowed (x402.networks)",
                r.network
            ));
        }
        if !self.cfg.assets.contains(&r.asset.to_ascii_lowercase()) {
            return Err(format!(
                "asset {} on {} is not allowed (x402.assets)",
                r.asset, r.network
            ));
        }
        let amount = offer
            .amount()
            .ok_or_else(|| "the requirement states no readable amount".to_string())?;
        let asked = usd(amount);
        let asked_text = asked
            .map(|d| format!("{} USD", fmt_usd(d)))
            .unwrap_or_else(|| format!("{amount} atomic units"));
        match asked {
            Some(d) if d <= self.cfg.max_per_request => {}
            _ => {
                return Err(format!(
                    "the relay asks {asked_text}, above the per-request limit of {} USD (x402.max_per_request_usd)",
                    fmt_usd(self.cfg.max_per_request)
                ));
            }
        }
        let asked = asked.unwrap_or_default();
        if let Some(e) = expected {
            let allowed =
                (e * (Decimal::ONE + self.cfg.estimate_tolerance)).max(self.cfg.min_charge);
            if asked > allowed {
                return Err(format!(
                    "the relay asks {asked_text}, more than this request should cost by the catalog (about {} USD; at most {} USD allowed by x402.estimate_tolerance and x402.min_charge_usd)",
                    fmt_usd(e),
                    fmt_usd(allowed)
                ));
            }
        }
        let atomic = u64::try_from(amount).unwrap_or(u64::MAX);
        let nano = i64::try_from(atomic.saturating_mul(1000)).unwrap_or(i64::MAX);
        Ok((amount, nano))
    }

    /// Picks the first offer the spend controls allow, reserves its amount, and signs it.
    pub async fn authorize(
        &self,
        ch: &Challenge,
        expected: Option<Decimal>,
        request_id: &str,
    ) -> Result<Authorized, Refusal> {
        let mut reasons = Vec::new();
        let mut chosen = None;
        for offer in &ch.offers {
            match self.check(offer, expected) {
                Ok(a) => {
                    chosen = Some((offer, a));
                    break;
                }
                Err(why) => reasons.push(why),
            }
        }
        let Some((offer, (amount, nano))) = chosen else {
            return Err(Refusal::policy(format!(
                "x402: the gateway refused to pay: {}",
                reasons.join("; ")
            )));
        };
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|e| Refusal {
            message: format!("x402: no randomness for the payment nonce: {e}"),
            internal: true,
        })?;
        let now = now_secs();
        let timeout = offer.req.max_timeout_seconds.unwrap_or(DEFAULT_TIMEOUT);
        let from = self.wallet.address().to_string();
        let auth = Authorization {
            from: from.clone(),
            to: offer.req.pay_to.clone(),
            value: amount.to_string(),
            valid_after: now.saturating_sub(VALID_AFTER_SKEW).to_string(),
            valid_before: now.saturating_add(timeout).to_string(),
            nonce: format!("0x{}", alloy_primitives::hex::encode(nonce)),
        };
        // Everything that can fail without spending is checked before the reservation.
        let (domain, msg) = typed_data(offer, &auth).map_err(Refusal::policy)?;
        let payment = Payment {
            amount_atomic: amount.to_string(),
            amount_nano: nano,
            asset: offer.req.asset.clone(),
            network: offer.req.network.clone(),
            payer: from,
            payee: offer.req.pay_to.clone(),
            tx_hash: None,
            version: ch.version,
        };
        let entry = SpendEntry {
            id: auth.nonce.clone(),
            request_id: request_id.to_string(),
            amount_nano: nano,
            payment,
        };
        let day = self.cfg.max_per_day.map(to_nano);
        let month = self.cfg.max_per_month.map(to_nano);
        let now_ms = i64::try_from(now.saturating_mul(1000)).unwrap_or(i64::MAX);
        match self.book.reserve(&entry, day, month, now_ms).await {
            Ok(Ok(())) => {}
            Ok(Err(r)) => {
                let (what, key, cap, spent) = match r {
                    SpendRefused::Day {
                        cap_nano,
                        spent_nano,
                    } => ("daily", "max_per_day_usd", cap_nano, spent_nano),
                    SpendRefused::Month {
                        cap_nano,
                        spent_nano,
                    } => ("monthly", "max_per_month_usd", cap_nano, spent_nano),
                };
                return Err(Refusal::policy(format!(
                    "x402: the gateway refused to pay {} USD: the {what} x402 spend limit of {} USD (x402.{key}) would be exceeded ({} USD already spent or reserved)",
                    nano_usd(nano),
                    nano_usd(cap),
                    nano_usd(spent)
                )));
            }
            Err(e) => {
                return Err(Refusal {
                    message: format!("x402: cannot record the payment reservation: {e}"),
                    internal: true,
                });
            }
        }
        let signed = eip3009::sign(self.wallet.signer(), &msg, &domain)
            .map(|s| sig_hex(&s))
            .and_then(|sig| payment_header(ch, offer, auth, sig));
        match signed {
            Ok(header) => Ok(Authorized {
                header,
                payment: entry.payment,
                id: entry.id,
            }),
            Err(e) => {
                self.release(&entry.id).await;
                Err(Refusal {
                    message: format!("x402: {e}"),
                    internal: true,
                })
            }
        }
    }

    async fn release(&self, id: &str) {
        if let Err(e) = self.book.finish(id, false, None).await {
            tracing::error!("x402: cannot release a payment reservation: {e}");
        }
    }

    /// After the paid request: settled when the relay says so (or, without a settlement header,
    /// when it delivered the answer); otherwise released, as no money moved.
    pub async fn finish(
        &self,
        a: &mut Authorized,
        settlement: Option<&wire::SettleResponse>,
        delivered: bool,
    ) -> bool {
        let settled = settlement.map_or(delivered, |s| s.success);
        if let Some(s) = settlement.filter(|s| s.success && !s.transaction.is_empty()) {
            a.payment.tx_hash = Some(s.transaction.clone());
        }
        if let Err(e) = self
            .book
            .finish(&a.id, settled, a.payment.tx_hash.as_deref())
            .await
        {
            tracing::error!("x402: cannot record the payment's settlement: {e}");
        }
        settled
    }

    /// The paid request never reached the relay: release.
    pub async fn abandon(&self, a: Authorized) {
        self.release(&a.id).await;
    }
}

fn to_nano(d: Decimal) -> i64 {
    crate::ledger::money::to_nano(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
