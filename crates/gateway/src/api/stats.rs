//! The dashboard's JSON API under `/admin/stats/*` and its live feed `/admin/stream`.
//!
//! Charts and breakdowns come from the ledger's rollups through `ledger::query` (the same code as
//! `/usage`); the only raw-row reads are the requests table (a page) and the latency percentiles,
//! which use the most recent [`LATENCY_SAMPLE`] rows of the range.

use super::AppState;
use super::usage::{Bad, bad, db_error, ledger_disabled, parse_time, record_json, to_csv};
use crate::accounting::UsageRecord;
use crate::ledger::money::{json_usd, to_nano};
use crate::ledger::query::{self, Filter, GroupBy, ReportRequest, Totals};
use crate::ledger::store::Row;
use crate::ledger::time::{
    DAY_MS, HOUR_MS, civil_from_days, day_start, days_from_civil, format_rfc3339, hour_start,
    month_start, now_ms,
};
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use http::header;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Latency percentiles are computed over at most this many of the range's most recent rows.
pub const LATENCY_SAMPLE: i64 = 2_000;
/// Largest page of `/admin/stats/requests`.
const MAX_LIMIT: i64 = 1_000;
/// Rows examined at most when filtering the requests table by status.
const STATUS_SCAN: i64 = 20_000;
/// Buckets a chart may have (a custom range is bucketed by day when hours would exceed this).
const MAX_HOUR_BUCKETS: i64 = 24 * 7;

fn check_known(q: &HashMap<String, String>, known: &[&str]) -> Result<(), Bad> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(bad(
            k,
            format!(
                "unknown query parameter {k:?} (known: {})",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// `range` → `[start, end)` and the bucket the chart uses.
fn parse_range(q: &HashMap<String, String>, now: i64) -> Result<(i64, i64, GroupBy), Bad> {
    let range = q.get("range").map(String::as_str).unwrap_or("24h");
    let span = match range {
        "1h" => Some(HOUR_MS),
        "24h" => Some(DAY_MS),
        "7d" => Some(7 * DAY_MS),
        "30d" => Some(30 * DAY_MS),
        "custom" => None,
        other => {
            return Err(bad(
                "range",
                format!("range: {other:?} is not one of 1h, 24h, 7d, 30d, custom"),
            ));
        }
    };
    let (start, end) = match span {
        Some(span) => {
            for p in ["startTime", "endTime"] {
                if q.contains_key(p) {
                    return Err(bad(p, format!("{p} is only accepted with range=custom")));
                }
            }
            (now - span, now)
        }
        None => {
            let start = parse_time(q, "startTime")?.ok_or_else(|| {
                bad(
                    "startTime",
                    "range=custom needs startTime (RFC 3339)".into(),
                )
            })?;
            let end = parse_time(q, "endTime")?.unwrap_or(now);
            (start, end)
        }
    };
    if start >= end {
        return Err(bad("startTime", "startTime must be before endTime".into()));
    }
    let by_hour = (end - start) <= MAX_HOUR_BUCKETS * HOUR_MS && range != "30d";
    Ok((
        start,
        end,
        if by_hour { GroupBy::Hour } else { GroupBy::Day },
    ))
}

fn totals_json(t: &Totals) -> Value {
    json!({
        "requests": t.requests,
        "errors": t.errors,
        "unpriced": t.unpriced,
        "inputTokens": t.input_tokens,
        "outputTokens": t.output_tokens,
        "cacheReadTokens": t.cache_read_tokens,
        "cacheWriteTokens": t.cache_write_tokens,
        "totalTokens": t.total_tokens(),
        "cost": json_usd(t.cost.total),
    })
}

fn named(groups: &[(String, Totals)]) -> Vec<Value> {
    let mut v: Vec<&(String, Totals)> = groups.iter().collect();
    v.sort_by(|a, b| b.1.cost.total.cmp(&a.1.cost.total).then(a.0.cmp(&b.0)));
    v.into_iter()
        .map(|(k, t)| {
            let mut j = totals_json(t);
            if let Some(o) = j.as_object_mut() {
                o.insert("name".into(), Value::String(k.clone()));
            }
            j
        })
        .collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn days_in_month(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)
}

/// `GET /admin/stats/overview?range=1h|24h|7d|30d|custom&startTime&endTime`
pub async fn overview(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(b) = check_known(&q, &["range", "startTime", "endTime"]) {
        return b.render();
    }
    let now = now_ms();
    let (start, end, bucket) = match parse_range(&q, now) {
        Ok(r) => r,
        Err(b) => return b.render(),
    };
    let Some(ledger) = &state.ledger else {
        return ledger_disabled();
    };
    let req = ReportRequest {
        filter: Filter {
            start_ms: start,
            end_ms: end,
            ..Filter::default()
        },
        group_by: Some(bucket),
        limit: 0,
        offset: 0,
    };
    let report = match query::report(ledger.store(), &req).await {
        Ok(r) => r,
        Err(e) => return db_error(&e),
    };
    let sample = match ledger.store().records(&req.filter, LATENCY_SAMPLE, 0).await {
        Ok(rows) => rows,
        Err(e) => return db_error(&e),
    };
    let mut lat: Vec<i64> = sample.iter().map(|r| r.total_ms).collect();
    lat.sort_unstable();

    // The series, with empty buckets filled in so the chart's x axis is linear.
    let (unit, first) = match bucket {
        GroupBy::Day => (DAY_MS, day_start(start)),
        _ => (HOUR_MS, hour_start(start)),
    };
    let groups: HashMap<i64, Totals> = report
        .groups
        .as_ref()
        .map(|(_, g)| {
            g.iter()
                .filter_map(|(k, t)| k.parse::<i64>().ok().map(|k| (k, *t)))
                .collect()
        })
        .unwrap_or_default();
    let mut series = Vec::new();
    let mut t = first;
    while t < end {
        let c = groups.get(&t).copied().unwrap_or_default();
        series.push(json!({
            "t": format_rfc3339(t),
            "requests": c.requests,
            "errors": c.errors,
            "tokens": c.total_tokens(),
            "cost": json_usd(c.cost.total),
        }));
        t += unit;
    }

    let totals = &report.totals;
    let span_days = (end - start) as f64 / DAY_MS as f64;
    let burn_nano = (totals.cost.total as f64 / span_days).round() as i64;
    let budget = ledger.budget().status();
    let mtd = to_nano(budget.spent_month_to_date);
    let month_end = month_start(now) + days_in_month(now) * DAY_MS;
    let days_left = (month_end - now) as f64 / DAY_MS as f64;
    let projected = mtd + (burn_nano as f64 * days_left).round() as i64;
    let error_rate = if totals.requests > 0 {
        totals.errors as f64 / totals.requests as f64
    } else {
        0.0
    };
    axum::Json(json!({
        "range": q.get("range").map(String::as_str).unwrap_or("24h"),
        "startTime": format_rfc3339(start),
        "endTime": format_rfc3339(end),
        "bucket": if bucket == GroupBy::Day { "day" } else { "hour" },
        "totals": totals_json(totals),
        "series": series,
        "costByProvider": named(&report.by_provider),
        "costByModel": named(&report.by_model),
        "burnRatePerDay": json_usd(burn_nano),
        "monthToDate": json_usd(mtd),
        "projectedMonth": json_usd(projected),
        "errorRate": error_rate,
        "latency": {
            "p50Ms": percentile(&lat, 50.0),
            "p95Ms": percentile(&lat, 95.0),
            "sample": lat.len(),
            "source": format!("the range's most recent {} ledger rows at most", LATENCY_SAMPLE),
        },
    }))
    .into_response()
}

#[derive(Clone, Copy, PartialEq)]
enum StatusFilter {
    Ok,
    Error,
    Code(i32),
}

impl StatusFilter {
    fn matches(self, r: &Row) -> bool {
        match self {
            StatusFilter::Ok => !r.is_error(),
            StatusFilter::Error => r.is_error(),
            StatusFilter::Code(c) => r.status == c,
        }
    }
}

fn parse_page(q: &HashMap<String, String>, name: &str, default: i64, max: i64) -> Result<i64, Bad> {
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

/// `GET /admin/stats/requests?limit&offset&provider&model&status&startTime&endTime&format=csv`
pub async fn requests(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    const KNOWN: [&str; 8] = [
        "limit",
        "offset",
        "provider",
        "model",
        "status",
        "startTime",
        "endTime",
        "format",
    ];
    let parsed = (|| {
        check_known(&q, &KNOWN)?;
        let now = now_ms();
        let end = parse_time(&q, "endTime")?.unwrap_or(now + 1);
        let start = parse_time(&q, "startTime")?.unwrap_or(0);
        let limit = parse_page(&q, "limit", 50, MAX_LIMIT)?;
        let offset = parse_page(&q, "offset", 0, STATUS_SCAN)?;
        let status = match q.get("status").map(String::as_str) {
            None | Some("") | Some("all") => None,
            Some("ok") => Some(StatusFilter::Ok),
            Some("error") => Some(StatusFilter::Error),
            Some(s) => match s.parse::<i32>() {
                Ok(c) if (100..600).contains(&c) => Some(StatusFilter::Code(c)),
                _ => {
                    return Err(bad(
                        "status",
                        format!("status: {s:?} is not ok, error or an HTTP status code"),
                    ));
                }
            },
        };
        let csv = match q.get("format").map(String::as_str) {
            None | Some("json") => false,
            Some("csv") => true,
            Some(o) => return Err(bad("format", format!("format: {o:?} is not json or csv"))),
        };
        let nonempty = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
        let filter = Filter {
            start_ms: start,
            end_ms: end,
            provider: nonempty("provider"),
            model: nonempty("model"),
            key: None,
        };
        Ok((filter, limit, offset, status, csv))
    })();
    let (filter, limit, offset, status, csv) = match parsed {
        Ok(p) => p,
        Err(b) => return b.render(),
    };
    let Some(ledger) = &state.ledger else {
        return ledger_disabled();
    };
    let rows = match status {
        None => ledger.store().records(&filter, limit, offset).await,
        Some(s) => {
            // The ledger's records query has no status column filter: page through at most
            // STATUS_SCAN rows and keep the matching ones.
            let mut out = Vec::new();
            let mut skipped = 0;
            let mut scanned = 0;
            let page = 500;
            loop {
                let rows = match ledger.store().records(&filter, page, scanned).await {
                    Ok(r) => r,
                    Err(e) => return db_error(&e),
                };
                let n = rows.len() as i64;
                scanned += n;
                for r in rows.into_iter().filter(|r| s.matches(r)) {
                    if skipped < offset {
                        skipped += 1;
                    } else if (out.len() as i64) < limit {
                        out.push(r);
                    }
                }
                if n < page || out.len() as i64 >= limit || scanned >= STATUS_SCAN {
                    break;
                }
            }
            Ok(out)
        }
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return db_error(&e),
    };
    if csv {
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"requests.csv\"",
                ),
            ],
            to_csv(&rows),
        )
            .into_response();
    }
    axum::Json(json!({
        "limit": limit,
        "offset": offset,
        "records": rows.iter().map(record_json).collect::<Vec<_>>(),
    }))
    .into_response()
}

fn price_json(p: &crate::catalog::Price) -> Value {
    json!({
        "input": p.input.to_string(),
        "output": p.output.to_string(),
        "cacheRead": p.cache_read.map(|d| d.to_string()),
        "cacheWrite": p.cache_write.map(|d| d.to_string()),
    })
}

/// `GET /admin/stats/providers`: configured providers with their health and models.
pub async fn providers(State(state): State<Arc<AppState>>) -> Response {
    let router = &state.proxy.router;
    let list: Vec<Value> = router
        .health()
        .filter(|(p, _)| p.config.is_configured())
        .map(|(p, h)| {
            let mut models: Vec<String> = router
                .catalog()
                .for_provider(p.name())
                .map(|e| e.id.clone())
                .collect();
            for m in &p.models {
                if !models.contains(m) {
                    models.push(m.clone());
                }
            }
            json!({
                "name": p.name(),
                "dialect": p.dialect().as_str(),
                "circuit": h.circuit.as_str(),
                "latencyMs": h.latency_ms.map(|l| (l * 100.0).round() / 100.0),
                "errorRate": h.error_rate,
                "recentRequests": h.recent_requests,
                "models": models,
            })
        })
        .collect();
    axum::Json(json!({ "providers": list })).into_response()
}

/// `GET /admin/stats/models`: the catalog with prices (USD per 1M tokens, as decimal strings).
pub async fn models(State(state): State<Arc<AppState>>) -> Response {
    let router = &state.proxy.router;
    let configured: Vec<&str> = router
        .providers()
        .iter()
        .filter(|p| p.config.is_configured())
        .map(|p| p.name())
        .collect();
    let list: Vec<Value> = router
        .catalog()
        .entries()
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "provider": e.provider,
                "upstream": e.upstream,
                "aliases": e.aliases,
                "price": e.price.as_ref().map(price_json),
                "contextWindow": e.context_window,
                "maxOutput": e.max_output,
                "configured": configured.contains(&e.provider.as_str()),
            })
        })
        .collect();
    axum::Json(json!({ "models": list })).into_response()
}

/// `GET /admin/stream`: `event: usage` with one record (the `/usage` record shape) per finished
/// attempt, as it finishes. A subscriber that lags skips the records it missed and is told so with
/// `event: lagged`. Ends when the server shuts down.
pub async fn stream(State(state): State<Arc<AppState>>) -> Response {
    let Some(live) = &state.live else {
        return bad(
            "stream",
            "the live feed is not enabled in this process".into(),
        )
        .render();
    };
    let rx = live.subscribe();
    let stop = state.stopping.subscribe();
    Sse::new(events(rx, stop))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn events(
    rx: tokio::sync::broadcast::Receiver<Arc<UsageRecord>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let hello = Event::default().event("hello").data("{}");
    let first = futures_util::stream::once(async move { Ok(hello) });
    let rest = futures_util::stream::unfold((rx, stop), |(mut rx, mut stop)| async move {
        if *stop.borrow() {
            return None;
        }
        let next = tokio::select! {
            r = rx.recv() => r,
            _ = stop.changed() => return None,
        };
        let ev = match next {
            Ok(rec) => Event::default()
                .event("usage")
                .data(record_json(&Row::from_record(&rec)).to_string()),
            Err(RecvError::Lagged(n)) => Event::default()
                .event("lagged")
                .data(json!({ "skipped": n }).to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(ev), (rx, stop)))
    });
    futures_util::StreamExt::chain(first, rest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ranges_pick_their_bucket_and_bad_ones_name_the_parameter() {
        let now = 100 * DAY_MS;
        let (s, e, g) = parse_range(&q(&[]), now).ok().unwrap();
        assert_eq!((e - s, g), (DAY_MS, GroupBy::Hour));
        let (_, _, g) = parse_range(&q(&[("range", "30d")]), now).ok().unwrap();
        assert_eq!(g, GroupBy::Day);
        let Err(Bad(p, _)) = parse_range(&q(&[("range", "2w")]), now) else {
            panic!()
        };
        assert_eq!(p, "range");
        let Err(Bad(p, _)) = parse_range(&q(&[("range", "custom")]), now) else {
            panic!()
        };
        assert_eq!(p, "startTime");
        let c = q(&[
            ("range", "custom"),
            ("startTime", "1970-01-02T00:00:00Z"),
            ("endTime", "1970-01-20T00:00:00Z"),
        ]);
        let (s, e, g) = parse_range(&c, now).ok().unwrap();
        assert_eq!((s, e, g), (DAY_MS, 19 * DAY_MS, GroupBy::Day));
    }

    #[test]
    fn percentiles_and_month_length() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(days_in_month(days_from_civil(2024, 2, 10) * DAY_MS), 29);
        assert_eq!(days_in_month(days_from_civil(2025, 12, 31) * DAY_MS), 31);
    }
}
