//! `GET /budget`, `PUT /budget`: the monthly cap, as in the original Ekai Gateway.

use super::AppState;
use super::error::render;
use super::usage::{db_error, ledger_disabled};
use crate::error::GatewayError;
use crate::ledger::Ledger;
use crate::ledger::money::{json_usd, to_nano};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ekai_wire::canonical::Dialect;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::sync::Arc;

fn status_json(ledger: &Ledger) -> Response {
    let s = ledger.budget().status();
    let usd = |d: Decimal| json_usd(to_nano(d));
    axum::Json(json!({
        "amountUsd": s.amount.map(usd),
        "alertOnly": s.alert_only,
        "window": "monthly",
        "spentMonthToDate": usd(s.spent_month_to_date),
        "remaining": s.remaining.map(usd),
    }))
    .into_response()
}

fn bad(param: &str, message: &str) -> Response {
    render(
        Dialect::OpenAiChat,
        &GatewayError::invalid(message).with_param(Some(param.to_string())),
    )
}

pub async fn get_budget(State(state): State<Arc<AppState>>) -> Response {
    match &state.ledger {
        Some(l) => status_json(l),
        None => ledger_disabled(),
    }
}

pub async fn put_budget(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let Some(ledger) = &state.ledger else {
        return ledger_disabled();
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return bad(
                "body",
                "the body must be a JSON object {\"amountUsd\": number|null, \"alertOnly\": bool}",
            );
        }
    };
    let amount = match v.get("amountUsd") {
        None | Some(Value::Null) => None,
        // Through the number's text, so 0.1 stays 0.1 rather than its binary approximation.
        Some(Value::Number(n)) => match n
            .to_string()
            .parse::<Decimal>()
            .ok()
            .or_else(|| n.as_f64().and_then(|f| Decimal::try_from(f).ok()))
        {
            Some(d) if !d.is_sign_negative() && d < Decimal::from(1_000_000_000i64) => Some(d),
            _ => {
                return bad(
                    "amountUsd",
                    "amountUsd must be a non-negative number below 1e9, or null",
                );
            }
        },
        Some(_) => {
            return bad(
                "amountUsd",
                "amountUsd must be a non-negative number or null",
            );
        }
    };
    let alert_only = match v.get("alertOnly") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad("alertOnly", "alertOnly must be a boolean"),
    };
    if let Err(e) = ledger
        .budget()
        .set(ledger.store(), amount, alert_only)
        .await
    {
        return db_error(&e);
    }
    tracing::info!(amount_usd = ?amount.map(|d| d.to_string()), alert_only, "budget updated");
    status_json(ledger)
}
