//! An x402 relay answered 402: have `crate::x402` check the spend controls, reserve and sign, then
//! replay the exact same body with the payment header and hand the paid answer back to the attempt
//! (JSON or stream alike: only its headers are read here). The money logic is in `crate::x402`;
//! this file only moves bytes and maps outcomes to `Failure`s.
//!
//! Nothing is ever paid twice for one attempt: a refused or failed payment is never retried, and a
//! paid attempt that fails is not retried elsewhere.

use super::Ctx;
use super::attempt::Attempt;
use super::upstream::{self, Failure, Target};
use crate::accounting::Record;
use crate::error::GatewayError;
use crate::x402;
use bytes::Bytes;
use std::time::Duration;

/// Longest wait for a 402's body (a few hundred bytes of JSON).
const CHALLENGE_READ: Duration = Duration::from_secs(10);

/// Largest 402 body read (requirements are a few hundred bytes; a relay cannot make us buffer more).
const CHALLENGE_MAX: usize = 64 * 1024;

/// A 402's body, at most `CHALLENGE_MAX` bytes within `CHALLENGE_READ` (empty on error).
async fn read_small(mut resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            out.extend_from_slice(&chunk);
            if out.len() >= CHALLENGE_MAX {
                out.truncate(CHALLENGE_MAX);
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CHALLENGE_READ, read).await;
    out
}

fn no_retry(error: GatewayError) -> Failure {
    Failure {
        error,
        retry: false,
        provider_fault: true,
        hold: None,
    }
}

/// The reason a relay gave for refusing a payment: settlement header, v2 header, or v1 body.
fn refusal_reason(
    headers: &http::HeaderMap,
    body: &[u8],
    settlement: Option<&x402::wire::SettleResponse>,
) -> String {
    if let Some(r) = settlement.and_then(|s| s.error_reason.clone()) {
        return r;
    }
    if let Ok(ch) = x402::parse_challenge(headers, body)
        && let Some(e) = ch.error
    {
        return e;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_string();
    if text.is_empty() {
        "no reason given".into()
    } else {
        text
    }
}

pub(super) async fn pay(
    attempt: &Attempt<'_>,
    ctx: &Ctx,
    target: &Target<'_>,
    body: Bytes,
    challenge: reqwest::Response,
    first_byte: Duration,
    record: &mut Record,
) -> Result<reqwest::Response, Failure> {
    let provider = &attempt.cand.provider;
    let Some(payer) = attempt.proxy.x402.as_ref() else {
        return Err(Failure::client(GatewayError::internal(
            "x402: the relay asked for payment but no wallet is loaded",
        )));
    };
    let headers = challenge.headers().clone();
    let text = read_small(challenge).await;
    let ch = x402::parse_challenge(&headers, &text)
        .map_err(|m| Failure::transport(GatewayError::upstream_invalid(provider.name(), &m)))?;
    let mut auth = payer
        .authorize(&ch, attempt.cand.expected_cost, &ctx.request_id)
        .await
        .map_err(|r| {
            Failure::client(if r.internal {
                GatewayError::internal(r.message)
            } else {
                GatewayError::payment_refused(&r.message)
            })
        })?;
    tracing::info!(
        request_id = %ctx.request_id,
        amount = %auth.payment.amount_atomic,
        asset = %auth.payment.asset,
        network = %auth.payment.network,
        payee = %auth.payment.payee,
        version = auth.payment.version,
        "x402: paying the relay"
    );
    record.data.payment_method = "x402";
    let extra = [(auth.header.0, std::mem::take(&mut auth.header.1))];
    let resp = match upstream::send(
        &attempt.proxy.client,
        ctx,
        provider,
        target,
        body,
        &extra,
        first_byte,
        &attempt.proxy.instance_id,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            // The relay may have received (and may still settle) the authorization: it keeps
            // counting against the caps until it expires, and it is not paid again elsewhere.
            record.data.payment = Some(Box::new(auth.payment.clone()));
            return Err(no_retry(e));
        }
    };
    let settlement = x402::read_settlement(resp.headers());
    if resp.status() == http::StatusCode::PAYMENT_REQUIRED {
        let settled = payer.finish(&mut auth, settlement.as_ref(), false).await;
        let headers = resp.headers().clone();
        let text = read_small(resp).await;
        if settled {
            record.data.payment = Some(Box::new(auth.payment.clone()));
        }
        let reason = refusal_reason(&headers, &text, settlement.as_ref());
        return Err(no_retry(GatewayError::payment_failed(&format!(
            "x402: the relay did not accept the payment: {reason}"
        ))));
    }
    let delivered = resp.status().is_success();
    if payer
        .finish(&mut auth, settlement.as_ref(), delivered)
        .await
    {
        record.data.payment = Some(Box::new(auth.payment));
    }
    Ok(resp)
}
