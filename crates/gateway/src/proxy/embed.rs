//! `POST /v1/embeddings` (OpenAI's shape) and Gemini's `:embedContent` / `:batchEmbedContents`:
//! the client's request, routed like a generation (catalog, fallback, health, budget) to any
//! provider with an embeddings API — OpenAI and the compatible ones (Azure, Mistral, Ollama …) in
//! OpenAI's shape, Gemini via `batchEmbedContents` — and answered in the client's shape (OpenAI's:
//! floats or base64 as asked). One accounting record per
//! attempt, input tokens priced from the catalog.

use super::upstream::{self, Failure, Target};
use super::{Ctx, Proxy, json_response};
use crate::accounting::{Hold, Record, UsageRecord};
use crate::error::GatewayError;
use crate::providers::Operation;
use crate::router::{Candidate, Estimate};
use axum::response::Response;
use bytes::Bytes;
use ekai_wire::canonical::Dialect;
use ekai_wire::canonical::Usage;
use ekai_wire::canonical::embedding::{EmbeddingRequest, EmbeddingResponse};
use ekai_wire::dialect::{gemini, openai_embeddings};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

impl Proxy {
    pub async fn embed(&self, ctx: &mut Ctx, body: Bytes) -> Result<Response, GatewayError> {
        let req = match (ctx.gemini_embed, ctx.url_model.as_deref()) {
            (Some(method), Some(model)) => gemini::embed::parse_request(&body, model, method)?,
            _ => openai_embeddings::parse_request(&body, ctx.url_model.as_deref())?,
        };
        ctx.requested_model = Some(req.model.clone());
        let estimate = Estimate {
            input_tokens: req.input.estimate_tokens(),
            ..Estimate::default()
        };
        let plan = self.router.plan(&req.model, &estimate, ctx.strategy)?;
        let expected = plan
            .first()
            .and_then(|c| c.expected_cost)
            .unwrap_or_default();
        let mut hold = self.admit(ctx, expected, estimate.input_tokens).await?;
        let settings = self.router.settings();
        let deadline = ctx.started + settings.deadline;
        let mut last: Option<GatewayError> = None;
        for cand in &plan {
            let dialect = cand.provider.dialect();
            let url_ok = cand
                .provider
                .url(dialect, Operation::Embed, &cand.upstream_model, false)
                .is_some();
            if !url_ok {
                last.get_or_insert_with(|| no_embeddings(cand));
                continue;
            }
            if ctx.attempts >= settings.max_attempts || Instant::now() >= deadline {
                break;
            }
            if cand.health.admit(Instant::now()).is_err() {
                continue;
            }
            ctx.attempts += 1;
            ctx.served = Some((
                cand.provider.name().to_string(),
                cand.upstream_model.clone(),
            ));
            match self
                .embed_once(ctx, cand, dialect, &req, &estimate, &mut hold, deadline)
                .await
            {
                Ok(resp) => return Ok(resp),
                Err(f) => {
                    let now = Instant::now();
                    if let Some(h) = f.hold {
                        cand.health.hold(now, h);
                    }
                    if f.provider_fault {
                        cand.health.failure(now);
                    }
                    if !f.retry {
                        return Err(f.error);
                    }
                    tracing::warn!(
                        provider = cand.provider.name(),
                        attempt = ctx.attempts,
                        "embeddings attempt failed, trying the next provider: {}",
                        f.error.message
                    );
                    last = Some(f.error);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            GatewayError::upstream(
                503,
                "gateway",
                &format!(
                    "every provider for model '{}' is unavailable right now (circuit open)",
                    req.model
                ),
            )
        }))
    }

    #[allow(clippy::too_many_arguments)]
    async fn embed_once(
        &self,
        ctx: &Ctx,
        cand: &Candidate,
        dialect: Dialect,
        req: &EmbeddingRequest,
        estimate: &Estimate,
        hold: &mut Option<Box<dyn Hold>>,
        deadline: Instant,
    ) -> Result<Response, Failure> {
        let provider = &cand.provider;
        let mut upstream_req = req.clone();
        upstream_req.model.clone_from(&cand.upstream_model);
        let json = match dialect {
            Dialect::Gemini => gemini::embed::request_to_json(&upstream_req, &cand.upstream_model)
                .map_err(|e| Failure::client(e.into()))?,
            _ => {
                let mut json = openai_embeddings::request_to_json(&upstream_req);
                if let Some(obj) = json.as_object_mut() {
                    provider.adapt_embed(obj);
                }
                json
            }
        };
        let body = serde_json::to_vec(&json).map_err(|e| {
            Failure::client(GatewayError::internal(format!(
                "cannot serialize request: {e}"
            )))
        })?;
        let started = Instant::now();
        let mut record = Record::new(
            UsageRecord {
                request_id: ctx.request_id.clone(),
                attempt: ctx.attempts,
                started_at: SystemTime::now(),
                client_key_id: ctx.client_key_id.clone(),
                client_dialect: ctx.dialect,
                requested_model: req.model.clone(),
                provider: provider.name().to_string(),
                upstream_model: cand.upstream_model.clone(),
                status: 200,
                error_kind: None,
                error: None,
                usage: Usage::default(),
                usage_estimated: false,
                cost: None,
                streamed: false,
                client_disconnected: false,
                first_byte: None,
                total: Duration::default(),
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
            cand.price.clone(),
            Arc::clone(&self.sink),
            started,
        );
        let first_byte = self
            .timeouts
            .first_byte
            .min(deadline.saturating_duration_since(started));
        let target = Target {
            dialect,
            op: Operation::Embed,
            model: &cand.upstream_model,
            stream: false,
        };
        let resp = match upstream::send(
            &self.client,
            ctx,
            provider,
            &target,
            Bytes::from(body),
            &[],
            first_byte,
            &self.instance_id,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                return Err(Failure::transport(e));
            }
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
        let bytes = match upstream::read_all(resp, provider, self.timeouts.idle).await {
            Ok(b) => b,
            Err(e) => {
                record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                return Err(Failure::transport(e));
            }
        };
        record.data.first_byte = Some(started.elapsed());
        let parsed: Result<EmbeddingResponse, _> = match dialect {
            Dialect::Gemini => gemini::embed::parse_response(&bytes),
            _ => openai_embeddings::parse_response(&bytes),
        };
        let parsed = match parsed {
            Ok(p) if p.vectors.len() == req.input.len() => p,
            Ok(p) => {
                let e = GatewayError::upstream_invalid(
                    provider.name(),
                    &format!(
                        "{} embeddings for {} inputs",
                        p.vectors.len(),
                        req.input.len()
                    ),
                );
                record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                return Err(Failure::transport(e));
            }
            Err(w) => {
                let e = GatewayError::upstream_invalid(provider.name(), &w.message);
                record.fail(e.status.as_u16(), e.kind.name(), &e.message);
                return Err(Failure::transport(e));
            }
        };
        let (input_tokens, estimated) = match parsed.input_tokens {
            Some(n) => (n, false),
            None => (estimate.input_tokens, true),
        };
        record.set_usage(
            Usage {
                input_tokens,
                ..Usage::default()
            },
            estimated,
        );
        let out = match ctx.gemini_embed {
            Some(method) => gemini::embed::response_to_json(&parsed, method),
            None => openai_embeddings::response_to_json(
                &parsed,
                &cand.upstream_model,
                req.encoding_format,
                input_tokens,
            ),
        };
        let out = match serde_json::to_vec(&out) {
            Ok(v) => Bytes::from(v),
            Err(e) => {
                let e = GatewayError::internal(format!("cannot serialize response: {e}"));
                record.fail(500, e.kind.name(), &e.message);
                return Err(Failure::client(e));
            }
        };
        cand.health.success(Instant::now(), started.elapsed());
        record.attach_hold(hold.take());
        record.finish();
        Ok(json_response(out))
    }
}

fn no_embeddings(cand: &Candidate) -> GatewayError {
    GatewayError::invalid(format!(
        "model '{}' on provider '{}' cannot create embeddings (that provider has no embeddings API)",
        cand.upstream_model,
        cand.provider.name()
    ))
    .with_param(Some("model".into()))
}
