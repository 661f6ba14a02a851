//! The HTTP exchange with one upstream: send with the first-byte timeout, read a body with the idle
//! timeout, and turn an upstream failure into a `GatewayError` that says whether another provider
//! should be tried.

use super::codec;
use super::{Ctx, HOP_HEADER};
use crate::error::GatewayError;
use crate::providers::{Operation, Provider};
use bytes::Bytes;
use ekai_wire::canonical::Dialect;
use http::HeaderValue;
use http::header;
use std::time::Duration;

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const HOP: http::HeaderName = http::HeaderName::from_static(HOP_HEADER);

/// An attempt's failure, and whether the next candidate should be tried.
pub struct Failure {
    pub error: GatewayError,
    /// Another provider may succeed: connect/TLS errors, timeouts before the first byte, 408, 409,
    /// 429, 5xx, 529, and 401/403 (our key for THAT provider is bad).
    pub retry: bool,
    /// Counts against the provider's health (a client mistake does not).
    pub provider_fault: bool,
    /// The provider asked us to stay away this long.
    pub hold: Option<Duration>,
}

impl Failure {
    pub fn client(error: GatewayError) -> Self {
        Failure {
            error,
            retry: false,
            provider_fault: false,
            hold: None,
        }
    }

    pub fn transport(error: GatewayError) -> Self {
        Failure {
            error,
            retry: true,
            provider_fault: true,
            hold: None,
        }
    }
}

/// Where a request goes: the dialect spoken to the provider, the operation, and (for URLs that
/// carry them) the model and whether to stream.
pub struct Target<'a> {
    pub dialect: Dialect,
    pub op: Operation,
    pub model: &'a str,
    pub stream: bool,
}

pub fn retryable_status(status: u16) -> bool {
    matches!(status, 401 | 403 | 408 | 409 | 429) || status >= 500
}

#[allow(clippy::too_many_arguments)]
pub async fn send(
    client: &reqwest::Client,
    ctx: &Ctx,
    provider: &Provider,
    target: &Target<'_>,
    body: Bytes,
    extra: &[(&'static str, String)],
    first_byte: Duration,
    instance_id: &str,
) -> Result<reqwest::Response, GatewayError> {
    let url = provider
        .request_url(target.dialect, target.op, target.model, target.stream)
        .map_err(GatewayError::internal)?
        .ok_or_else(|| {
            GatewayError::invalid(format!(
                "provider '{}' does not support this operation",
                provider.name()
            ))
        })?;
    let mut rb = client
        .post(url)
        .header(header::CONTENT_TYPE, APPLICATION_JSON)
        .header(HOP, instance_id)
        .body(body);
    // A client with its own key for this provider: the same headers, with its key.
    if ctx.sealed.is_some()
        && !ctx
            .upstream_keys
            .as_ref()
            .is_some_and(|k| k.contains_key(provider.name()))
    {
        // Sapphire mode never falls back to the gateway's own key.
        return Err(GatewayError::internal(format!(
            "Sapphire mode: no caller key was opened for provider '{}'",
            provider.name()
        )));
    }
    let own = ctx
        .upstream_keys
        .as_ref()
        .and_then(|keys| keys.get(provider.name()))
        .map(|k| {
            Provider::new(crate::config::ProviderConfig {
                api_key: Some(k.clone()),
                ..provider.config.clone()
            })
        });
    let headers = own
        .as_ref()
        .unwrap_or(provider)
        .header_list(
            ctx.anthropic_version.as_deref(),
            ctx.anthropic_beta.as_deref(),
        )
        .map_err(GatewayError::internal)?;
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    for (k, v) in extra {
        rb = rb.header(*k, v.as_str());
    }
    match tokio::time::timeout(first_byte, rb.send()).await {
        Err(_) => Err(GatewayError::upstream_timeout(
            provider.name(),
            "before sending response headers",
        )),
        Ok(Err(e)) if e.is_timeout() => Err(GatewayError::upstream_timeout(
            provider.name(),
            "while connecting",
        )),
        Ok(Err(e)) => Err(GatewayError::upstream_unreachable(
            provider.name(),
            &describe(&e),
        )),
        Ok(Ok(r)) => Ok(r),
    }
}

/// Reads a non-streamed upstream body, allowing at most `idle` between chunks.
pub async fn read_all(
    mut resp: reqwest::Response,
    provider: &Provider,
    idle: Duration,
) -> Result<Bytes, GatewayError> {
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    loop {
        match tokio::time::timeout(idle, resp.chunk()).await {
            Err(_) => {
                return Err(GatewayError::upstream_timeout(
                    provider.name(),
                    "while sending the response body",
                ));
            }
            Ok(Err(e)) => {
                return Err(GatewayError::upstream_unreachable(
                    provider.name(),
                    &describe(&e),
                ));
            }
            Ok(Ok(None)) => break,
            // The common case is a single chunk: keep it without copying.
            Ok(Ok(Some(c))) => match first.take() {
                None if rest.is_empty() => first = Some(c),
                Some(f) => {
                    rest.extend_from_slice(&f);
                    rest.extend_from_slice(&c);
                }
                None => rest.extend_from_slice(&c),
            },
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(rest)))
}

/// Error text for a transport failure. reqwest's own message names the URL; the causes below it
/// say what actually went wrong (refused, reset, DNS) and never carry a header value.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    };
    let mut msg = what.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// `Retry-After` as seconds (the HTTP-date form is rare from LLM APIs; it is ignored).
fn retry_after(resp: &reqwest::Response) -> Option<(String, Duration)> {
    let v = resp.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| (v.to_string(), Duration::from_secs_f64(secs.min(3600.0))))
}

/// An upstream non-2xx: relay its status and message, and say whether to try elsewhere.
pub async fn error_response(
    resp: reqwest::Response,
    provider: &Provider,
    dialect: Dialect,
) -> Failure {
    let status = resp.status().as_u16();
    let after = retry_after(&resp);
    let body = tokio::time::timeout(Duration::from_secs(10), resp.bytes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let message = codec::parse_error(dialect, &body)
        .map(|(_, m)| m)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)])
                .trim()
                .to_string();
            if text.is_empty() {
                format!("upstream returned HTTP {status}")
            } else {
                format!("upstream returned HTTP {status}: {text}")
            }
        });
    let mut error = GatewayError::upstream(status, provider.name(), &message);
    let retry = retryable_status(status);
    if status == 429 || status >= 500 {
        error.retry_after = after.as_ref().map(|(v, _)| v.clone());
    }
    Failure {
        error,
        retry,
        // A rate limit with a stated wait is a hold, not a sign of ill health.
        provider_fault: retry && !(status == 429 && after.is_some()),
        hold: after
            .map(|(_, d)| d)
            .filter(|_| status == 429 || status >= 500),
    }
}
