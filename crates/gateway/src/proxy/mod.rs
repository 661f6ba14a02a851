//! One client request through one upstream: route, then passthrough (same dialect: bytes with the
//! model rewritten) or translation (client dialect → canonical → provider dialect), and back.
//!
//! This module never renders an error: it returns `GatewayError` and `api` renders it.

pub mod body;
mod codec;
mod relay;

use crate::accounting::{Record, Sink, UsageRecord};
use crate::config::Timeouts;
use crate::error::GatewayError;
use crate::providers::{Operation, Provider};
use crate::router::Router;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use ekai_wire::canonical::{Dialect, Request as CanonicalRequest};
use ekai_wire::dialect::anthropic;
use http::{HeaderValue, StatusCode, header};
use relay::{Mode, Relay};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Header the gateway puts on every upstream request; seeing its own value come back in means the
/// request has looped.
pub const HOP_HEADER: &str = "x-ekai-hop";

/// What the proxy needs from the running gateway.
pub struct Proxy {
    pub router: Router,
    pub client: reqwest::Client,
    pub timeouts: Timeouts,
    /// Random per process; the value of `HOP_HEADER`.
    pub instance_id: String,
    pub sink: Arc<dyn Sink>,
}

/// Per-request facts gathered by the HTTP layer, and what the proxy learned (for response headers).
pub struct Ctx {
    pub dialect: Dialect,
    pub request_id: String,
    pub anthropic_version: Option<String>,
    pub anthropic_beta: Option<String>,
    pub started: Instant,
    /// Filled once routed: (provider, upstream model).
    pub served: Option<(String, String)>,
    /// The model the client asked for, once read.
    pub requested_model: Option<String>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The best 400 for a body that could not even be peeked: the dialect parser names the field.
fn bad_body(d: Dialect, body: &[u8]) -> GatewayError {
    match codec::parse_request(d, body) {
        Err(e) => e.into(),
        Ok(_) => GatewayError::invalid("request body must be a JSON object with a string `model`")
            .with_param(Some("model".into())),
    }
}

impl Proxy {
    /// `POST /v1/chat/completions` and `POST /v1/messages`.
    pub async fn generate(&self, ctx: &mut Ctx, body: Bytes) -> Result<Response, GatewayError> {
        let (model, stream, system_in_messages) = match body::peek(&body) {
            Some(p) if p.looks_valid(ctx.dialect == Dialect::Anthropic) => (
                p.model.to_string(),
                p.stream,
                ctx.dialect == Dialect::Anthropic && p.may_have_system_message(),
            ),
            _ => return Err(bad_body(ctx.dialect, &body)),
        };
        ctx.requested_model = Some(model.clone());
        let route = self.router.resolve(&model)?;
        let provider = Arc::clone(&route.provider);
        ctx.served = Some((provider.name().to_string(), route.upstream_model.clone()));

        let (upstream_body, mode) = if provider.dialect() == ctx.dialect && system_in_messages {
            // Same dialect, but the request needs normalising (system messages hoisted into
            // `system`); the response is still relayed untouched.
            let mut req = codec::parse_request(ctx.dialect, &body)?;
            req.model.clone_from(&route.upstream_model);
            (self.translate_request(&provider, &req)?, Mode::Raw)
        } else if provider.dialect() == ctx.dialect {
            let force_usage = stream && ctx.dialect == Dialect::OpenAiChat;
            let rw = body::rewrite(&body, &route.upstream_model, force_usage)
                .ok_or_else(|| bad_body(ctx.dialect, &body))?;
            let mode = if force_usage && !rw.client_wants_usage {
                Mode::StripUsage
            } else {
                Mode::Raw
            };
            (rw.body, mode)
        } else {
            let mut req = codec::parse_request(ctx.dialect, &body)?;
            req.model.clone_from(&route.upstream_model);
            let include_usage = req.stream_include_usage;
            let out = self.translate_request(&provider, &req)?;
            let mode = Mode::Translate {
                decoder: codec::decoder(provider.dialect()),
                encoder: codec::encoder(ctx.dialect, now_secs(), include_usage),
            };
            (out, mode)
        };

        let mut record = Record::new(
            UsageRecord {
                request_id: ctx.request_id.clone(),
                attempt: 1,
                started_at: SystemTime::now(),
                client_key_id: None,
                client_dialect: ctx.dialect,
                requested_model: model.clone(),
                provider: provider.name().to_string(),
                upstream_model: route.upstream_model.clone(),
                status: 200,
                error_kind: None,
                error: None,
                usage: Default::default(),
                usage_estimated: false,
                cost: None,
                streamed: stream,
                client_disconnected: false,
                first_byte: None,
                total: Default::default(),
                payment_method: "api_key",
            },
            None,
            Arc::clone(&self.sink),
            ctx.started,
        );
        let resp = match self
            .send(ctx, &provider, Operation::Generate, upstream_body)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                return Err(e);
            }
        };
        if !resp.status().is_success() {
            let e = upstream_error(resp, &provider).await;
            record.fail(e.status.as_u16(), e.kind.name(), &e.message);
            return Err(e);
        }

        if stream {
            record.data.first_byte = Some(ctx.started.elapsed());
            let relay = Relay::new(
                resp,
                mode,
                ctx.dialect,
                provider.dialect(),
                self.timeouts.keepalive,
                self.timeouts.idle,
                record,
            );
            let mut out = Response::new(Body::from_stream(relay.into_stream()));
            let h = out.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return Ok(out);
        }

        let bytes = match self.read_all(resp, &provider).await {
            Ok(b) => b,
            Err(e) => {
                record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                return Err(e);
            }
        };
        record.data.first_byte = Some(ctx.started.elapsed());
        let out_bytes = match mode {
            Mode::Translate { .. } => {
                let mut canon = match codec::parse_response(provider.dialect(), &bytes) {
                    Ok(c) => c,
                    Err(e) => {
                        let e = GatewayError::upstream_invalid(provider.name(), &e.message);
                        record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                        return Err(e);
                    }
                };
                canon.created.get_or_insert_with(now_secs);
                record.set_usage(canon.usage, false);
                let json = codec::response_to_json(ctx.dialect, &canon);
                Bytes::from(serde_json::to_vec(&json).map_err(|e| {
                    GatewayError::internal(format!("cannot serialize response: {e}"))
                })?)
            }
            _ => {
                if let Some(u) = codec::usage_from_response(provider.dialect(), &bytes) {
                    record.set_usage(u, false);
                }
                bytes
            }
        };
        record.finish();
        let mut out = Response::new(Body::from(out_bytes));
        out.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(out)
    }

    /// `POST /v1/messages/count_tokens`: asked of Anthropic when it serves the model, otherwise
    /// estimated locally (OpenAI-dialect upstreams have no counting endpoint).
    pub async fn count_tokens(&self, ctx: &mut Ctx, body: Bytes) -> Result<Response, GatewayError> {
        let req = anthropic::count_tokens_request(&body)?;
        ctx.requested_model = Some(req.model.clone());
        let route = self.router.resolve(&req.model)?;
        let provider = Arc::clone(&route.provider);
        ctx.served = Some((provider.name().to_string(), route.upstream_model.clone()));
        if provider.dialect() == Dialect::Anthropic {
            let rw = body::rewrite(&body, &route.upstream_model, false)
                .ok_or_else(|| bad_body(Dialect::Anthropic, &body))?;
            let resp = self
                .send(ctx, &provider, Operation::CountTokens, rw.body)
                .await?;
            if !resp.status().is_success() {
                return Err(upstream_error(resp, &provider).await);
            }
            let bytes = self.read_all(resp, &provider).await?;
            let mut out = Response::new(Body::from(bytes));
            out.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return Ok(out);
        }
        let n = anthropic::estimate_input_tokens(&req);
        let mut out = Response::new(Body::from(
            serde_json::to_vec(&anthropic::count_tokens_json(n)).unwrap_or_default(),
        ));
        out.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(out)
    }

    fn translate_request(
        &self,
        provider: &Provider,
        req: &CanonicalRequest,
    ) -> Result<Vec<u8>, GatewayError> {
        let mut json = codec::request_to_json(provider.dialect(), req)?;
        if let Some(obj) = json.as_object_mut() {
            provider.adapt(&req.model, obj);
        }
        serde_json::to_vec(&json)
            .map_err(|e| GatewayError::internal(format!("cannot serialize request: {e}")))
    }

    async fn send(
        &self,
        ctx: &Ctx,
        provider: &Provider,
        op: Operation,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, GatewayError> {
        let url = provider.url(op).ok_or_else(|| {
            GatewayError::invalid(format!(
                "provider '{}' does not support this operation",
                provider.name()
            ))
        })?;
        let mut rb = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(HOP_HEADER, &self.instance_id)
            .body(body);
        for (k, v) in provider.headers(
            ctx.anthropic_version.as_deref(),
            ctx.anthropic_beta.as_deref(),
        ) {
            rb = rb.header(k, v);
        }
        match tokio::time::timeout(self.timeouts.first_byte, rb.send()).await {
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
    async fn read_all(
        &self,
        mut resp: reqwest::Response,
        provider: &Provider,
    ) -> Result<Bytes, GatewayError> {
        let mut first: Option<Bytes> = None;
        let mut rest: Vec<u8> = Vec::new();
        loop {
            match tokio::time::timeout(self.timeouts.idle, resp.chunk()).await {
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

/// An upstream non-2xx: relay its status and message.
async fn upstream_error(resp: reqwest::Response, provider: &Provider) -> GatewayError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), resp.bytes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let message = codec::parse_error(provider.dialect(), &body)
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
    let mut e = GatewayError::upstream(status, provider.name(), &message);
    if status == StatusCode::TOO_MANY_REQUESTS.as_u16() || status >= 500 {
        e.retry_after = retry_after;
    }
    e
}
