//! One attempt: one candidate provider, one upstream request, one accounting record.

use super::relay::{Mode, Relay};
use super::upstream::{self, Failure};
use super::{Ctx, Inbound, Proxy, bad_body, codec, json_response, now_secs, sse_response};
use crate::accounting::{Hold, Record, UsageRecord};
use crate::config::ProviderKind;
use crate::error::GatewayError;
use crate::providers::{Operation, Provider};
use crate::router::Candidate;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use ekai_wire::canonical::{Dialect, Request as CanonicalRequest, Usage};
use ekai_wire::sse::SseParser;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub(crate) struct Attempt<'a> {
    pub proxy: &'a Proxy,
    pub cand: &'a Candidate,
    /// 1-based.
    pub number: u32,
    pub deadline: Instant,
}

/// Rough token counts for a provider that reported none: about four bytes a token.
fn estimate_usage(input_tokens: u64, output_bytes: usize) -> Usage {
    Usage {
        input_tokens,
        output_tokens: (output_bytes / 4) as u64,
        ..Usage::default()
    }
}

impl Attempt<'_> {
    pub async fn run(
        &self,
        ctx: &Ctx,
        inbound: &mut Inbound,
        hold: &mut Option<Box<dyn Hold>>,
    ) -> Result<Response, Failure> {
        let provider = &self.cand.provider;
        let dialect = provider.dialect_for(ctx.dialect);
        let (body, mode, dropped) = self
            .prepare(ctx, inbound, dialect)
            .map_err(Failure::client)?;
        let started = Instant::now();
        let mut record = self.record(ctx, inbound, started);
        let body = Bytes::from(body);
        let first_byte = self
            .proxy
            .timeouts
            .first_byte
            .min(self.deadline.saturating_duration_since(started));
        let target = upstream::Target {
            dialect,
            op: Operation::Generate,
            model: &self.cand.upstream_model,
            stream: inbound.stream,
        };
        let resp = match upstream::send(
            &self.proxy.client,
            ctx,
            provider,
            &target,
            body.clone(),
            &[],
            first_byte,
            &self.proxy.instance_id,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                return Err(Failure::transport(e));
            }
        };
        let resp = if resp.status() == http::StatusCode::PAYMENT_REQUIRED
            && provider.config.kind == ProviderKind::X402
        {
            let remaining = first_byte.saturating_sub(started.elapsed());
            match super::pay::pay(self, ctx, &target, body, resp, remaining, &mut record).await {
                Ok(r) => r,
                Err(f) => {
                    record.fail(
                        f.error.status.as_u16(),
                        f.error.kind.name(),
                        &f.error.message,
                    );
                    return Err(f);
                }
            }
        } else {
            resp
        };
        if !resp.status().is_success() {
            let f = upstream::error_response(resp, provider, dialect).await;
            record.fail(
                f.error.status.as_u16(),
                f.error.kind.name(),
                &f.error.message,
            );
            return Err(f);
        }
        let mut out = if inbound.stream {
            let remaining = first_byte.saturating_sub(started.elapsed());
            self.stream(ctx, inbound, resp, mode, record, remaining, hold, dialect)
                .await?
        } else {
            self.json(ctx, inbound, resp, mode, record, hold, dialect)
                .await?
        };
        // Tools the target has no equivalent of were left out: say so.
        if let Some(v) = dropped.and_then(|d| http::HeaderValue::from_str(&d).ok()) {
            out.headers_mut().insert("x-ekai-dropped-tools", v);
        }
        Ok(out)
    }

    /// The upstream body for this candidate, how its answer goes back to the client, and the
    /// request's tools the target cannot take (comma-separated), if any.
    fn prepare(
        &self,
        ctx: &Ctx,
        inbound: &mut Inbound,
        dialect: Dialect,
    ) -> Result<(Vec<u8>, Mode, Option<String>), GatewayError> {
        let provider = &self.cand.provider;
        let model = &self.cand.upstream_model;
        // A Responses request continuing a conversation the gateway keeps needs it put back in,
        // even for OpenAI (which does not know the gateway's response ids).
        let continues_kept = ctx.dialect == Dialect::OpenAiResponses
            && match &inbound.turn {
                Some(turn) => turn.reply.previous_response_id.is_some(),
                None => super::responses::continues_kept(
                    &self.proxy.conversations,
                    ctx.client_key_id.as_deref(),
                    &inbound.body,
                ),
            };
        if dialect == ctx.dialect && !inbound.needs_normalising && !continues_kept {
            let force_usage = inbound.stream && ctx.dialect == Dialect::OpenAiChat;
            let rw = super::body::rewrite(&inbound.body, model, force_usage)
                .ok_or_else(|| bad_body(ctx.dialect, &inbound.body))?;
            let mode = if force_usage && !rw.client_wants_usage {
                Mode::StripUsage
            } else {
                Mode::Raw
            };
            let body = if provider.adapts_passthrough() {
                adapt_passthrough(provider, model, rw.body)
            } else {
                rw.body
            };
            return Ok((body, mode, None));
        }
        // Parsed once per request, whichever attempt needs it first.
        let req = match &mut inbound.canonical {
            Some(r) => r,
            None => {
                let mut r = codec::parse_request(ctx.dialect, &inbound.body, &inbound.model)?;
                if ctx.dialect == Dialect::OpenAiResponses {
                    // Before the policy's prefix: it is not part of the kept conversation.
                    inbound.turn = Some(super::responses::begin(
                        &mut r,
                        &self.proxy.conversations,
                        ctx.client_key_id.as_deref(),
                    )?);
                }
                if let Some(prefix) = &ctx.system_prefix {
                    r.system.insert(
                        0,
                        ekai_wire::canonical::TextPart {
                            text: prefix.to_string(),
                            cache_control: None,
                        },
                    );
                }
                inbound.canonical.insert(r)
            }
        };
        req.model.clone_from(model);
        // Gemini clients say "stream" in the URL, not the body.
        req.stream = inbound.stream;
        // A client tuned for one vendor (Claude Code asks for up to 128k) must not exceed another
        // model's output limit.
        let requested = req.max_tokens;
        if let (Some(limit), Some(asked)) = (self.cand.max_output, requested) {
            req.max_tokens = Some(asked.min(limit));
        }
        let body = translate_request(provider, dialect, req);
        // The next candidate may allow more: give it the client's own figure.
        req.max_tokens = requested;
        let body = body?;
        let dropped = super::responses::dropped_tools(req, dialect);
        let dropped = (!dropped.is_empty()).then(|| {
            let list = dropped.join(",");
            tracing::debug!(
                provider = provider.name(),
                tools = %list,
                "tools the provider has no equivalent of were left out"
            );
            list
        });
        let reply = inbound.turn.as_ref().map(|t| &t.reply);
        let mode = if dialect == ctx.dialect {
            // Same dialect, only the request needed normalising: relay the answer untouched.
            Mode::Raw
        } else {
            Mode::Translate {
                decoder: codec::decoder(dialect),
                encoder: codec::encoder_for(
                    ctx.dialect,
                    now_secs(),
                    req.stream_include_usage,
                    reply,
                ),
            }
        };
        Ok((body, mode, dropped))
    }

    fn record(&self, ctx: &Ctx, inbound: &Inbound, started: Instant) -> Record {
        Record::new(
            UsageRecord {
                request_id: ctx.request_id.clone(),
                attempt: self.number,
                started_at: SystemTime::now(),
                client_key_id: ctx.client_key_id.clone(),
                client_dialect: ctx.dialect,
                requested_model: inbound.model.clone(),
                provider: self.cand.provider.name().to_string(),
                upstream_model: self.cand.upstream_model.clone(),
                status: 200,
                error_kind: None,
                error: None,
                usage: Usage::default(),
                usage_estimated: false,
                cost: None,
                streamed: inbound.stream,
                client_disconnected: false,
                first_byte: None,
                total: Default::default(),
                payment_method: "api_key",
                receipt: ctx
                    .sealed
                    .as_ref()
                    .map(|(_, c)| crate::accounting::Parties {
                        owner: c.owner.into_array(),
                        delegate: c.delegate.into_array(),
                    }),
                payment: None,
            },
            self.cand.price.clone(),
            Arc::clone(&self.proxy.sink),
            started,
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &self,
        ctx: &Ctx,
        inbound: &Inbound,
        mut resp: reqwest::Response,
        mode: Mode,
        mut record: Record,
        first_byte: std::time::Duration,
        hold: &mut Option<Box<dyn Hold>>,
        dialect: Dialect,
    ) -> Result<Response, Failure> {
        let provider = &self.cand.provider;
        let started = record.started();
        // Nothing has reached the client yet: wait for the first upstream bytes before committing
        // to this provider, so a stream that dies at once can still fall back.
        let first = match tokio::time::timeout(first_byte, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => {
                let e = GatewayError::upstream_invalid(provider.name(), "empty stream");
                record.fail(502, e.kind.name(), &e.message);
                return Err(Failure::transport(e));
            }
            Ok(Err(_)) => {
                let e = GatewayError::upstream_unreachable(
                    provider.name(),
                    "stream broke before its first event",
                );
                record.fail(502, e.kind.name(), &e.message);
                return Err(Failure::transport(e));
            }
            Err(_) => {
                let e = GatewayError::upstream_timeout(
                    provider.name(),
                    "before the first stream event",
                );
                record.fail(504, e.kind.name(), &e.message);
                return Err(Failure::transport(e));
            }
        };
        if let Some(message) = leading_error_event(dialect, &first) {
            let e = GatewayError::upstream(503, provider.name(), &message);
            record.fail(503, e.kind.name(), &e.message);
            return Err(Failure::transport(e));
        }
        let elapsed = started.elapsed();
        record.data.first_byte = Some(elapsed);
        record.attach_hold(hold.take());
        self.cand.health.success(Instant::now(), elapsed);
        let keep = match (&mode, &inbound.turn) {
            (Mode::Translate { .. }, Some(turn)) => turn.keeper(&self.proxy.conversations),
            _ => None,
        };
        let relay = Relay::new(
            resp,
            first,
            mode,
            ctx.dialect,
            dialect,
            self.proxy.timeouts.keepalive,
            self.proxy.timeouts.idle,
            record,
            inbound.estimate.input_tokens,
        )
        .on_complete(keep);
        Ok(sse_response(Body::from_stream(relay)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn json(
        &self,
        ctx: &Ctx,
        inbound: &Inbound,
        resp: reqwest::Response,
        mode: Mode,
        mut record: Record,
        hold: &mut Option<Box<dyn Hold>>,
        dialect: Dialect,
    ) -> Result<Response, Failure> {
        let provider = &self.cand.provider;
        let started = record.started();
        let bytes = match upstream::read_all(resp, provider, self.proxy.timeouts.idle).await {
            Ok(b) => b,
            Err(e) => {
                record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                return Err(Failure::transport(e));
            }
        };
        record.data.first_byte = Some(started.elapsed());
        let out = match mode {
            Mode::Translate { .. } => {
                let mut canon = match codec::parse_response(dialect, &bytes) {
                    Ok(c) => c,
                    Err(e) => {
                        let e = GatewayError::upstream_invalid(provider.name(), &e.message);
                        record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                        return Err(Failure::transport(e));
                    }
                };
                canon.created.get_or_insert_with(now_secs);
                if canon.usage.is_empty() {
                    record.set_usage(
                        estimate_usage(inbound.estimate.input_tokens, bytes.len()),
                        true,
                    );
                } else {
                    record.set_usage(canon.usage, false);
                }
                let reply = inbound.turn.as_ref().map(|t| &t.reply);
                let json = codec::response_to_json_for(ctx.dialect, &canon, reply);
                match serde_json::to_vec(&json) {
                    Ok(v) => {
                        if let Some(turn) = &inbound.turn {
                            turn.keep(&self.proxy.conversations, &canon);
                        }
                        Bytes::from(v)
                    }
                    Err(e) => {
                        let e = GatewayError::internal(format!("cannot serialize response: {e}"));
                        record.fail(500, e.kind.name(), &e.message);
                        return Err(Failure::client(e));
                    }
                }
            }
            _ => {
                match codec::usage_from_response(dialect, &bytes).filter(|u| !u.is_empty()) {
                    Some(u) => record.set_usage(u, false),
                    None => record.set_usage(
                        estimate_usage(inbound.estimate.input_tokens, bytes.len()),
                        true,
                    ),
                }
                bytes
            }
        };
        self.cand.health.success(Instant::now(), started.elapsed());
        record.attach_hold(hold.take());
        record.finish();
        Ok(json_response(out))
    }
}

pub(super) fn translate_request(
    provider: &Provider,
    dialect: Dialect,
    req: &CanonicalRequest,
) -> Result<Vec<u8>, GatewayError> {
    let mut json = codec::request_to_json(dialect, req)?;
    if let Some(obj) = json.as_object_mut() {
        provider.adapt(&req.model, obj);
    }
    serde_json::to_vec(&json)
        .map_err(|e| GatewayError::internal(format!("cannot serialize request: {e}")))
}

/// A passthrough body with the provider's quirks applied (a body that is not a JSON object is
/// left for the upstream to refuse).
fn adapt_passthrough(provider: &Provider, model: &str, body: Vec<u8>) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut obj)) => {
            provider.adapt(model, &mut obj);
            serde_json::to_vec(&obj).unwrap_or(body)
        }
        _ => body,
    }
}

/// The message of an error the upstream sent as its very first stream event (Anthropic reports
/// overload this way with a 200), so the request can still go elsewhere.
fn leading_error_event(dialect: Dialect, first: &Bytes) -> Option<String> {
    let mut p = SseParser::new();
    p.push(first);
    let ev = p.next_event()?;
    let is_error = ev.event.as_deref() == Some("error") || ev.data.starts_with("{\"error\"");
    if !is_error {
        return None;
    }
    Some(
        codec::parse_error(dialect, ev.data.as_bytes())
            .map(|(_, m)| m)
            .unwrap_or(ev.data),
    )
}
