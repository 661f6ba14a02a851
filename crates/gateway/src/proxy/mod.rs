//! One client request: route it to an ordered list of candidates and try them in turn
//! (`attempt`), each by passthrough (same dialect: bytes with the model rewritten) or translation
//! (client dialect → canonical → provider dialect), and back.
//!
//! Fallback happens only before anything reached the client: a JSON response is read whole before
//! it is sent, and a stream is committed only once its first upstream event has arrived.
//!
//! This module never renders an error: it returns `GatewayError` and `api` renders it.

mod attempt;
pub mod body;
mod codec;
pub mod conversations;
mod embed;
mod pay;
mod relay;
mod responses;
mod upstream;

use crate::accounting::Sink;
use crate::config::{Strategy, Timeouts};
use crate::error::GatewayError;
use crate::providers::Operation;
use crate::router::{Estimate, Router};
use attempt::Attempt;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use ekai_wire::canonical::{Dialect, Request as CanonicalRequest};
use ekai_wire::dialect::{anthropic, gemini};
use http::{HeaderValue, StatusCode, header};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// Spending cap; None when there is no ledger.
    pub budget: Option<Arc<dyn crate::accounting::Budget>>,
    /// With `REDIS_URL`: the gateway's cap as every instance sees it (reservations in Redis).
    pub shared_budget: Option<Arc<dyn crate::accounting::SharedBudget>>,
    /// Pays the x402 relay; None when x402 is off.
    pub x402: Option<Arc<crate::x402::Payer>>,
    /// Responses conversations kept for `previous_response_id` on translated models.
    pub conversations: Arc<conversations::ConversationStore>,
}

/// Per-request facts gathered by the HTTP layer, and what the proxy learned (for response headers).
pub struct Ctx {
    pub dialect: Dialect,
    pub request_id: String,
    pub anthropic_version: Option<String>,
    pub anthropic_beta: Option<String>,
    pub started: Instant,
    /// `x-ekai-route`: this request's routing strategy.
    pub strategy: Option<Strategy>,
    /// Filled once routed: (provider, upstream model) of the last attempt.
    pub served: Option<(String, String)>,
    /// The model the client asked for, once read.
    pub requested_model: Option<String>,
    /// Upstream attempts made.
    pub attempts: u32,
    /// Gemini clients name the model and streaming in the URL, not the body.
    pub url_model: Option<String>,
    pub url_stream: Option<bool>,
    /// A Gemini client's embeddings method (`:embedContent` / `:batchEmbedContents`): its body
    /// is read, and its answer written, in that method's shape.
    pub gemini_embed: Option<ekai_wire::dialect::gemini::embed::EmbedMethod>,
    /// The calling client's id (keys mode), stamped on every usage record.
    pub client_key_id: Option<String>,
    /// The calling client's own monthly cap, admitted beside the gateway's.
    pub client_budget: Option<Arc<dyn crate::accounting::Budget>>,
    /// Providers the calling client may be routed to (None: any).
    pub provider_pins: Option<Arc<[String]>>,
    /// Put before the request's system prompt (the client's policy); forces the canonical path.
    pub system_prefix: Option<Arc<str>>,
    /// The calling client's caps shared through Redis (several instances), reserved at admission.
    pub client_shared_budget: Option<Arc<dyn crate::accounting::SharedBudget>>,
    /// The calling client's token limits: its estimated tokens are reserved at admission.
    pub client_tokens: Option<Arc<dyn crate::accounting::TokenLimits>>,
    /// The calling client's own upstream keys by provider name: used instead of the gateway's.
    pub upstream_keys: Option<Arc<std::collections::HashMap<String, crate::config::Secret>>>,
    /// Sapphire mode: the control plane and the caller whose on-chain permissions and sealed keys
    /// apply. Every candidate is checked, and its key opened, before it is tried; the gateway's
    /// own keys are never used.
    pub sealed: Option<(Arc<crate::sapphire::Sapphire>, crate::sapphire::Caller)>,
}

impl Ctx {
    /// Sapphire mode: checks `provider`/`model` for the caller on chain and makes the caller's own
    /// key the one sent to `provider`. Outside Sapphire mode, nothing.
    async fn open_sealed_key(&mut self, provider: &str, model: &str) -> Result<(), GatewayError> {
        let Some((sapphire, caller)) = self.sealed.clone() else {
            return Ok(());
        };
        // Boxed: a chain call's future is large and only Sapphire mode ever builds it.
        let key = Box::pin(sapphire.upstream_key(&caller, provider, model)).await?;
        let mut keys = std::collections::HashMap::new();
        keys.insert(provider.to_string(), key);
        self.upstream_keys = Some(Arc::new(keys));
        Ok(())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The best 400 for a body that could not even be peeked: the dialect parser names the field.
fn bad_body(d: Dialect, body: &[u8]) -> GatewayError {
    match codec::parse_request(d, body, "") {
        Err(e) => e.into(),
        Ok(_) => GatewayError::invalid("request body must be a JSON object with a string `model`")
            .with_param(Some("model".into())),
    }
}

/// The request as every attempt needs it: the raw body, what was peeked from it, and its
/// canonical form once some attempt needed one.
pub(crate) struct Inbound {
    pub body: Bytes,
    pub model: String,
    pub stream: bool,
    /// An Anthropic body that may carry `role: "system"` messages Anthropic itself rejects.
    pub needs_normalising: bool,
    pub estimate: Estimate,
    pub canonical: Option<CanonicalRequest>,
    /// A Responses request on the canonical path: its conversation and answer (`responses.rs`).
    pub turn: Option<responses::Turn>,
}

impl Proxy {
    /// Admission: the client's token limits reserve `est_tokens`, the client's and the gateway's
    /// budgets hold `expected` (USD); the attempt that answers settles them with the real figures.
    pub(crate) async fn admit(
        &self,
        ctx: &Ctx,
        expected: rust_decimal::Decimal,
        est_tokens: u64,
    ) -> Result<Option<Box<dyn crate::accounting::Hold>>, GatewayError> {
        let mut holds: Vec<Box<dyn crate::accounting::Hold>> = Vec::new();
        if let Some(t) = &ctx.client_tokens {
            holds.push(t.reserve(est_tokens).await?);
        }
        if let Some(b) = &ctx.client_shared_budget {
            holds.push(b.reserve(expected).await?);
        }
        if let Some(b) = &ctx.client_budget {
            holds.push(
                b.admit(expected)
                    .map_err(|m| GatewayError::client_budget_exceeded(&m))?,
            );
        }
        if let Some(b) = &self.budget {
            holds.push(
                b.admit(expected)
                    .map_err(|m| GatewayError::budget_exceeded(&m))?,
            );
        }
        if let Some(b) = &self.shared_budget {
            holds.push(b.reserve(expected).await?);
        }
        Ok(crate::accounting::Holds::combine(holds))
    }

    /// `POST /v1/chat/completions` and `POST /v1/messages`.
    pub async fn generate(&self, ctx: &mut Ctx, body: Bytes) -> Result<Response, GatewayError> {
        let mut inbound = match body::peek(&body) {
            Some(p) if p.looks_valid(ctx.dialect) => Inbound {
                model: match (&ctx.url_model, &p.model) {
                    (Some(m), _) => m.clone(),
                    (None, Some(m)) => m.to_string(),
                    (None, None) => return Err(bad_body(ctx.dialect, &body)),
                },
                stream: ctx.url_stream.unwrap_or(p.stream),
                needs_normalising: ctx.system_prefix.is_some()
                    || (ctx.dialect == Dialect::Anthropic && p.may_have_system_message()),
                estimate: p.estimate(body.len()),
                body: body.clone(),
                canonical: None,
                turn: None,
            },
            _ => return Err(bad_body(ctx.dialect, &body)),
        };
        ctx.requested_model = Some(inbound.model.clone());
        let mut plan = self
            .router
            .plan(&inbound.model, &inbound.estimate, ctx.strategy)?;
        if let Some(pins) = &ctx.provider_pins {
            plan.retain(|c| pins.iter().any(|p| p == c.provider.name()));
            if plan.is_empty() {
                return Err(GatewayError::permission_denied(format!(
                    "this key may use only the providers {}; none of them serves model '{}'",
                    pins.join(", "),
                    inbound.model
                )));
            }
        }
        // Admission: hold the cheapest candidate's expected cost against the budget; the attempt
        // that answers settles it with the real cost.
        let expected = plan
            .first()
            .and_then(|c| c.expected_cost)
            .unwrap_or_default();
        let mut hold = self
            .admit(ctx, expected, inbound.estimate.input_tokens)
            .await?;
        let settings = self.router.settings();
        let deadline = ctx.started + settings.deadline;
        let mut last: Option<GatewayError> = None;
        let mut soonest: Option<Duration> = None;
        let mut all_held = true;
        let mut sealed_refusal: Option<GatewayError> = None;
        for cand in &plan {
            if ctx.attempts >= settings.max_attempts {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                last.get_or_insert_with(|| {
                    GatewayError::upstream_timeout(
                        cand.provider.name(),
                        "within the request deadline",
                    )
                });
                break;
            }
            if let Err(why) = cand.health.admit(now) {
                tracing::debug!(provider = cand.provider.name(), ?why, "skipping provider");
                let wait = why.retry_in();
                all_held &= matches!(why, crate::router::health::Unavailable::RetryAfter { .. });
                soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
                continue;
            }
            if let Err(e) = ctx
                .open_sealed_key(cand.provider.name(), &inbound.model)
                .await
            {
                // Another provider of the model may hold a permitted key; anything else (paused,
                // delegate refused, chain down) holds for every candidate.
                if matches!(e.code, Some("MODEL_NOT_ALLOWED" | "SECRET_NOT_FOUND")) {
                    tracing::debug!(provider = cand.provider.name(), "sealed key: {}", e.message);
                    // The preferred provider's refusal is the one worth reporting.
                    sealed_refusal.get_or_insert(e);
                    continue;
                }
                return Err(e);
            }
            ctx.attempts += 1;
            ctx.served = Some((
                cand.provider.name().to_string(),
                cand.upstream_model.clone(),
            ));
            let attempt = Attempt {
                proxy: self,
                cand,
                number: ctx.attempts,
                deadline,
            };
            match attempt.run(ctx, &mut inbound, &mut hold).await {
                Ok(resp) => return Ok(resp),
                Err(f) => {
                    let now = Instant::now();
                    if let Some(hold) = f.hold {
                        cand.health.hold(now, hold);
                    }
                    if f.provider_fault {
                        let before = cand.health.view().circuit;
                        let after = cand.health.failure(now);
                        if after != before {
                            tracing::warn!(
                                provider = cand.provider.name(),
                                "circuit {} (was {})",
                                after.as_str(),
                                before.as_str()
                            );
                        }
                    }
                    if !f.retry {
                        return Err(f.error);
                    }
                    tracing::warn!(
                        provider = cand.provider.name(),
                        attempt = ctx.attempts,
                        "attempt failed, trying the next provider: {}",
                        f.error.message
                    );
                    last = Some(f.error);
                }
            }
        }
        Err(last.or(sealed_refusal).unwrap_or_else(|| {
            let retry_in = soonest.unwrap_or(Duration::from_secs(1)).as_secs().max(1);
            // Every provider asked us to wait: that is a rate limit, as the client would have seen
            // from the provider itself; open circuits are an outage.
            let (status, why) = if all_held {
                (429, "asked the gateway to wait (Retry-After)")
            } else {
                (503, "is unavailable right now (circuit open)")
            };
            let mut e = GatewayError::upstream(
                status,
                "gateway",
                &format!(
                    "every provider for model '{}' {why}; retry in {retry_in}s",
                    inbound.model
                ),
            );
            e.retry_after = Some(retry_in.to_string());
            e
        }))
    }

    /// Asks the provider's own token-counting endpoint and relays its answer.
    async fn forward_count(
        &self,
        ctx: &mut Ctx,
        cand: &crate::router::Candidate,
        dialect: Dialect,
        body: Vec<u8>,
    ) -> Result<Response, GatewayError> {
        let provider = &cand.provider;
        let model = ctx.requested_model.clone().unwrap_or_default();
        ctx.open_sealed_key(provider.name(), &model).await?;
        ctx.served = Some((provider.name().to_string(), cand.upstream_model.clone()));
        let target = upstream::Target {
            dialect,
            op: Operation::CountTokens,
            model: &cand.upstream_model,
            stream: false,
        };
        let resp = upstream::send(
            &self.client,
            ctx,
            provider,
            &target,
            Bytes::from(body),
            &[],
            self.timeouts.first_byte,
            &self.instance_id,
        )
        .await?;
        if !resp.status().is_success() {
            return Err(upstream::error_response(resp, provider, dialect)
                .await
                .error);
        }
        let bytes = upstream::read_all(resp, provider, self.timeouts.idle).await?;
        Ok(json_response(bytes))
    }

    /// `POST /v1beta/models/{model}:countTokens`: asked of Gemini when it serves the model,
    /// otherwise estimated locally (and the response says so in `x-ekai-token-count`).
    async fn count_tokens_gemini(
        &self,
        ctx: &mut Ctx,
        body: Bytes,
    ) -> Result<Response, GatewayError> {
        let model = ctx.url_model.clone().unwrap_or_default();
        ctx.requested_model = Some(model.clone());
        // The body is `{contents: …}` or `{generateContentRequest: {…}}`.
        let inner: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| GatewayError::invalid(format!("invalid request body: {e}")))?;
        let request = inner.get("generateContentRequest").unwrap_or(&inner);
        let req = gemini::parse_request(request.to_string().as_bytes(), &model)?;
        let plan = self
            .router
            .plan(&model, &Estimate::default(), ctx.strategy)?;
        if let Some(cand) = plan
            .iter()
            .find(|c| c.provider.dialect() == Dialect::Gemini)
        {
            return self
                .forward_count(ctx, cand, Dialect::Gemini, body.to_vec())
                .await;
        }
        let (n, how) = local_count(ctx, &plan, &req);
        let mut out = json_response(Bytes::from(
            serde_json::to_vec(&gemini::count_tokens_json(n)).unwrap_or_default(),
        ));
        out.headers_mut()
            .insert("x-ekai-token-count", HeaderValue::from_static(how));
        Ok(out)
    }

    /// `POST /v1/messages/count_tokens`: asked of Anthropic when it serves the model, otherwise
    /// estimated locally (OpenAI-dialect upstreams have no counting endpoint).
    pub async fn count_tokens(&self, ctx: &mut Ctx, body: Bytes) -> Result<Response, GatewayError> {
        if ctx.dialect == Dialect::Gemini {
            return self.count_tokens_gemini(ctx, body).await;
        }
        let req = anthropic::count_tokens_request(&body)?;
        ctx.requested_model = Some(req.model.clone());
        let plan = self
            .router
            .plan(&req.model, &Estimate::default(), ctx.strategy)?;
        if let Some(cand) = plan
            .iter()
            .find(|c| c.provider.dialect() == Dialect::Anthropic)
        {
            let rw = body::rewrite(&body, &cand.upstream_model, false)
                .ok_or_else(|| bad_body(Dialect::Anthropic, &body))?;
            return self
                .forward_count(ctx, cand, Dialect::Anthropic, rw.body)
                .await;
        }
        let (n, how) = local_count(ctx, &plan, &req);
        let mut out = json_response(Bytes::from(
            serde_json::to_vec(&anthropic::count_tokens_json(n)).unwrap_or_default(),
        ));
        out.headers_mut()
            .insert("x-ekai-token-count", HeaderValue::from_static(how));
        Ok(out)
    }
}

/// A count made here when no candidate can count: with the first candidate's tokenizer when it is
/// public (`x-ekai-token-count: tiktoken/o200k_base`), else the documented estimate (`estimated`).
fn local_count(
    ctx: &mut Ctx,
    plan: &[crate::router::Candidate],
    req: &ekai_wire::canonical::Request,
) -> (u64, &'static str) {
    let Some(c) = plan.first() else {
        return (anthropic::estimate_input_tokens(req), "estimated");
    };
    ctx.served = Some((c.provider.name().to_string(), c.upstream_model.clone()));
    match crate::tokenize::count(req, &c.upstream_model) {
        Some((n, "o200k_base")) => (n, "tiktoken/o200k_base"),
        Some((n, _)) => (n, "tiktoken/cl100k_base"),
        None => (anthropic::estimate_input_tokens(req), "estimated"),
    }
}

pub(crate) fn json_response(bytes: Bytes) -> Response {
    let mut out = Response::new(Body::from(bytes));
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

pub(crate) fn sse_response(body: Body) -> Response {
    let mut out = Response::new(body);
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    *out.status_mut() = StatusCode::OK;
    out
}
