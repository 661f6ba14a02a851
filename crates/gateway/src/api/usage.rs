//! `GET /usage`: the original Ekai Gateway's report (`totalRequests`, `totalCost`, `totalTokens`,
//! `costByProvider`, `costByModel`, `records`) plus filters, `groupBy`, paging and CSV.

use super::AppState;
use super::error::render;
use crate::error::{GatewayError, Origin};
use crate::ledger::money::json_usd;
use crate::ledger::query::{self, Filter, GroupBy, ReportRequest, Totals};
use crate::ledger::store::Row;
use crate::ledger::time::{DAY_MS, format_rfc3339, now_ms, parse_rfc3339};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use ekai_wire::canonical::{Dialect, ErrorKind};
use http::{StatusCode, header};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;

/// A rejected parameter: (name, message). Rendered by the handler, in OpenAI's error shape.
pub(super) struct Bad(pub String, pub String);

pub(super) fn bad(param: &str, message: String) -> Bad {
    Bad(param.to_string(), message)
}

impl Bad {
    pub(super) fn render(self) -> Response {
        render(
            Dialect::OpenAiChat,
            &GatewayError::invalid(self.1).with_param(Some(self.0)),
        )
    }
}

pub(super) fn ledger_disabled() -> Response {
    render(
        Dialect::OpenAiChat,
        &GatewayError {
            kind: ErrorKind::Api,
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the usage ledger is disabled (DATABASE_URL=none); set DATABASE_URL to sqlite://PATH or postgres://… and restart".into(),
            param: None,
            code: Some("ledger_disabled"),
            retry_after: None,
            token_limit: None,
            origin: Origin::Client,
        },
    )
}

pub(super) fn db_error(e: &sqlx::Error) -> Response {
    render(
        Dialect::OpenAiChat,
        &GatewayError::internal(format!("usage ledger query failed: {e}")),
    )
}

pub(super) fn parse_time(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Bad> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => parse_rfc3339(v).map(Some).ok_or_else(|| {
            bad(
                name,
                format!("{name}: {v:?} is not an RFC 3339 timestamp (e.g. 2025-01-01T00:00:00Z)"),
            )
        }),
    }
}

fn parse_int(q: &HashMap<String, String>, name: &str, default: i64, max: i64) -> Result<i64, Bad> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (0..=max).contains(&n) => Ok(n),
            _ => Err(bad(
                name,
                format!("{name} must be an integer between 0 and {max}"),
            )),
        },
    }
}

fn parse_request(q: &HashMap<String, String>) -> Result<(ReportRequest, bool), Bad> {
    const KNOWN: [&str; 10] = [
        "startTime",
        "endTime",
        "provider",
        "model",
        "key",
        "groupBy",
        "limit",
        "offset",
        "format",
        "timezone",
    ];
    if let Some(k) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(
            k,
            format!(
                "unknown query parameter {k:?} (known: {})",
                KNOWN.join(", ")
            ),
        ));
    }
    let end = parse_time(q, "endTime")?.unwrap_or_else(now_ms);
    let start = parse_time(q, "startTime")?.unwrap_or(end - 7 * DAY_MS);
    if start >= end {
        return Err(bad("startTime", "startTime must be before endTime".into()));
    }
    let group_by = match q.get("groupBy") {
        None => None,
        Some(g) => Some(GroupBy::parse(g).ok_or_else(|| {
            bad(
                "groupBy",
                format!("groupBy: {g:?} is not one of hour, day, provider, model, key"),
            )
        })?),
    };
    let csv = match q.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(bad(
                "format",
                format!("format: {other:?} is not json or csv"),
            ));
        }
    };
    if let Some(tz) = q
        .get("timezone")
        .filter(|tz| !tz.eq_ignore_ascii_case("utc"))
    {
        return Err(bad(
            "timezone",
            format!("timezone: only UTC is supported (got {tz:?})"),
        ));
    }
    let nonempty = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    Ok((
        ReportRequest {
            filter: Filter {
                start_ms: start,
                end_ms: end,
                provider: nonempty("provider"),
                model: nonempty("model"),
                key: q.get("key").cloned(),
            },
            group_by,
            limit: parse_int(q, "limit", DEFAULT_LIMIT, MAX_LIMIT)?,
            offset: parse_int(q, "offset", 0, i64::MAX / 2)?,
        },
        csv,
    ))
}

pub async fn get_usage(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(ledger) = &state.ledger else {
        return ledger_disabled();
    };
    let (req, csv) = match parse_request(&q) {
        Ok(r) => r,
        Err(bad) => return bad.render(),
    };
    let report = match query::report(ledger.store(), &req).await {
        Ok(r) => r,
        Err(e) => return db_error(&e),
    };
    if csv {
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"usage.csv\"",
                ),
            ],
            to_csv(&report.records),
        )
            .into_response();
    }
    let by = |groups: &[(String, Totals)]| -> Map<String, Value> {
        groups
            .iter()
            .map(|(k, t)| (k.clone(), json_usd(t.cost.total)))
            .collect()
    };
    let t = &report.totals;
    let mut body = json!({
        "totalRequests": t.requests,
        "totalCost": json_usd(t.cost.total),
        "totalTokens": t.total_tokens(),
        "costByProvider": by(&report.by_provider),
        "costByModel": by(&report.by_model),
        "records": report.records.iter().map(record_json).collect::<Vec<_>>(),
        "startTime": format_rfc3339(req.filter.start_ms),
        "endTime": format_rfc3339(req.filter.end_ms),
        "errorRequests": t.errors,
        "unpricedRequests": t.unpriced,
        "limit": req.limit,
        "offset": req.offset,
    });
    if let (Some((g, groups)), Some(obj)) = (&report.groups, body.as_object_mut()) {
        let key = |k: &str| match g {
            GroupBy::Hour | GroupBy::Day => Value::String(
                k.parse::<i64>()
                    .map(format_rfc3339)
                    .unwrap_or_else(|_| k.to_string()),
            ),
            _ => Value::String(k.to_string()),
        };
        obj.insert(
            "groups".into(),
            Value::Array(
                groups
                    .iter()
                    .map(|(k, t)| {
                        json!({
                            "key": key(k),
                            "requests": t.requests,
                            "errors": t.errors,
                            "unpriced": t.unpriced,
                            "inputTokens": t.input_tokens,
                            "outputTokens": t.output_tokens,
                            "cacheReadTokens": t.cache_read_tokens,
                            "cacheWriteTokens": t.cache_write_tokens,
                            "reasoningTokens": t.reasoning_tokens,
                            "totalTokens": t.total_tokens(),
                            "cost": json_usd(t.cost.total),
                            "avgLatencyMs": if t.requests > 0 { t.total_ms / t.requests } else { 0 },
                        })
                    })
                    .collect(),
            ),
        );
    }
    axum::Json(body).into_response()
}

/// One record in the original's snake_case shape (costs null when unpriced), plus this gateway's
/// extra columns.
pub(super) fn record_json(r: &Row) -> Value {
    let cost = |f: fn(&crate::ledger::store::NanoCost) -> i64| {
        r.cost
            .as_ref()
            .map(|c| json_usd(f(c)))
            .unwrap_or(Value::Null)
    };
    json!({
        "id": r.id,
        "request_id": r.request_id,
        "attempt": r.attempt,
        "provider": r.provider,
        "model": r.upstream_model,
        "requested_model": r.requested_model,
        "timestamp": format_rfc3339(r.started_at),
        "client_key_id": r.client_key_id,
        "client_dialect": r.client_dialect,
        "status": r.status,
        "error_kind": r.error_kind,
        "error": r.error,
        "input_tokens": r.input_tokens,
        "cache_write_input_tokens": r.cache_write_tokens,
        "cache_read_input_tokens": r.cache_read_tokens,
        "output_tokens": r.output_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "total_tokens": r.input_tokens + r.output_tokens,
        "input_cost": cost(|c| c.input),
        "cache_write_cost": cost(|c| c.cache_write),
        "cache_read_cost": cost(|c| c.cache_read),
        "output_cost": cost(|c| c.output),
        "total_cost": cost(|c| c.total),
        "currency": "USD",
        "priced": r.cost.is_some(),
        "usage_estimated": r.usage_estimated,
        "streamed": r.streamed,
        "client_disconnected": r.client_disconnected,
        "first_byte_ms": r.first_byte_ms,
        "total_ms": r.total_ms,
        "payment_method": r.payment_method,
        "x402": r.x402.as_ref().map(|p| json!({
            "amount_atomic": p.amount_atomic,
            "amount_usd": json_usd(p.amount_nano),
            "asset": p.asset,
            "network": p.network,
            "payer": p.payer,
            "payee": p.payee,
            "tx_hash": p.tx_hash,
        })),
    })
}

fn csv_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

pub(super) fn to_csv(rows: &[Row]) -> String {
    const HEADER: &str = "request_id,attempt,timestamp,provider,model,requested_model,client_key_id,status,error_kind,input_tokens,cache_read_input_tokens,cache_write_input_tokens,output_tokens,reasoning_tokens,total_tokens,input_cost,cache_read_cost,cache_write_cost,output_cost,total_cost,priced,usage_estimated,streamed,client_disconnected,first_byte_ms,total_ms,payment_method,x402_amount_atomic,x402_amount_usd,x402_asset,x402_network,x402_payer,x402_payee,x402_tx_hash\n";
    let mut out = String::from(HEADER);
    let usd = |n: i64| crate::ledger::money::from_nano(n).to_string();
    for r in rows {
        let c = r.cost;
        let cost = |f: fn(&crate::ledger::store::NanoCost) -> i64| {
            c.as_ref().map(|c| usd(f(c))).unwrap_or_default()
        };
        let x = |f: fn(&crate::ledger::store::X402Paid) -> String| {
            r.x402.as_ref().map(f).unwrap_or_default()
        };
        let fields = [
            r.request_id.clone(),
            r.attempt.to_string(),
            format_rfc3339(r.started_at),
            r.provider.clone(),
            r.upstream_model.clone(),
            r.requested_model.clone(),
            r.client_key_id.clone().unwrap_or_default(),
            r.status.to_string(),
            r.error_kind.clone().unwrap_or_default(),
            r.input_tokens.to_string(),
            r.cache_read_tokens.to_string(),
            r.cache_write_tokens.to_string(),
            r.output_tokens.to_string(),
            r.reasoning_tokens.to_string(),
            (r.input_tokens + r.output_tokens).to_string(),
            cost(|c| c.input),
            cost(|c| c.cache_read),
            cost(|c| c.cache_write),
            cost(|c| c.output),
            cost(|c| c.total),
            c.is_some().to_string(),
            r.usage_estimated.to_string(),
            r.streamed.to_string(),
            r.client_disconnected.to_string(),
            r.first_byte_ms.map(|v| v.to_string()).unwrap_or_default(),
            r.total_ms.to_string(),
            r.payment_method.clone(),
            x(|p| p.amount_atomic.clone()),
            x(|p| crate::ledger::money::from_nano(p.amount_nano).to_string()),
            x(|p| p.asset.clone()),
            x(|p| p.network.clone()),
            x(|p| p.payer.clone()),
            x(|p| p.payee.clone()),
            x(|p| p.tx_hash.clone().unwrap_or_default()),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, f);
        }
        out.push('\n');
    }
    out
}
