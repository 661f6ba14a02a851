//! `POST /v1/chat/completions`, `POST /v1/messages` and `POST /v1/messages/count_tokens`: read the
//! body within the limit, hand it to the proxy, render its error in the client's dialect, and stamp
//! the response headers every answer carries.

use super::AppState;
use super::error::render;
use crate::clients::{Client, apply_model_policy};
use crate::config::Strategy;
use crate::error::GatewayError;
use crate::proxy::{Ctx, HOP_HEADER};
use axum::extract::{Path, Request, State};
use axum::response::Response;
use bytes::Bytes;
use ekai_wire::canonical::Dialect;
use ekai_wire::dialect::gemini::embed::EmbedMethod;
use http::{HeaderMap, HeaderValue, header};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Instant;

// Built at compile time: a `&str` name is parsed again on every insert.
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
const X_EKAI_PROVIDER: http::HeaderName = http::HeaderName::from_static("x-ekai-provider");
const X_EKAI_MODEL: http::HeaderName = http::HeaderName::from_static("x-ekai-model");
const X_EKAI_ATTEMPTS: http::HeaderName = http::HeaderName::from_static("x-ekai-attempts");

#[derive(Clone, Copy)]
enum Op {
    Generate,
    CountTokens,
    Embed,
}

pub async fn chat_completions(State(s): State<Arc<AppState>>, req: Request) -> Response {
    run(&s, Dialect::OpenAiChat, Op::Generate, req, None).await
}

pub async fn messages(State(s): State<Arc<AppState>>, req: Request) -> Response {
    run(&s, Dialect::Anthropic, Op::Generate, req, None).await
}

pub async fn count_tokens(State(s): State<Arc<AppState>>, req: Request) -> Response {
    run(&s, Dialect::Anthropic, Op::CountTokens, req, None).await
}

/// `POST /v1/embeddings` (OpenAI's shape, whichever provider serves the model).
pub async fn embeddings(State(s): State<Arc<AppState>>, req: Request) -> Response {
    run(&s, Dialect::OpenAiChat, Op::Embed, req, None).await
}

/// Azure OpenAI's paths (`/openai/deployments/{deployment}/chat/completions?api-version=…`), so
/// the openai SDKs' `AzureOpenAI` clients work unmodified with the gateway as their endpoint: the
/// deployment names the model; `api-version` is accepted and ignored.
pub async fn azure_chat(
    State(s): State<Arc<AppState>>,
    Path(deployment): Path<String>,
    req: Request,
) -> Response {
    run(
        &s,
        Dialect::OpenAiChat,
        Op::Generate,
        req,
        Some((deployment, false)),
    )
    .await
}

/// `/openai/deployments/{deployment}/embeddings`.
pub async fn azure_embeddings(
    State(s): State<Arc<AppState>>,
    Path(deployment): Path<String>,
    req: Request,
) -> Response {
    run(
        &s,
        Dialect::OpenAiChat,
        Op::Embed,
        req,
        Some((deployment, false)),
    )
    .await
}

pub async fn responses(State(s): State<Arc<AppState>>, req: Request) -> Response {
    run(&s, Dialect::OpenAiResponses, Op::Generate, req, None).await
}

/// `POST /v1beta/models/{model}:generateContent` and `…:streamGenerateContent` (Gemini's API puts
/// the model and the streaming choice in the path).
pub async fn gemini(
    State(s): State<Arc<AppState>>,
    Path(model_action): Path<String>,
    req: Request,
) -> Response {
    let action = match model_action.rsplit_once(':') {
        Some((model, "generateContent")) => Some((Op::Generate, model.to_string(), false)),
        Some((model, "streamGenerateContent")) => Some((Op::Generate, model.to_string(), true)),
        Some((model, "countTokens")) => Some((Op::CountTokens, model.to_string(), false)),
        // For embeddings the flag says batch (`batchEmbedContents`), not stream.
        Some((model, "embedContent")) => Some((Op::Embed, model.to_string(), false)),
        Some((model, "batchEmbedContents")) => Some((Op::Embed, model.to_string(), true)),
        _ => None,
    };
    match action {
        Some((op, model, stream)) => run(&s, Dialect::Gemini, op, req, Some((model, stream))).await,
        None => {
            let mut e = GatewayError::invalid(format!(
                "unsupported Gemini method in {model_action:?}: this gateway serves :generateContent, :streamGenerateContent, :countTokens, :embedContent and :batchEmbedContents"
            ));
            e.status = http::StatusCode::NOT_FOUND;
            e.kind = ekai_wire::canonical::ErrorKind::NotFound;
            render(Dialect::Gemini, &e)
        }
    }
}

/// The body with `model` set (a body that is not a JSON object is left for the proxy to refuse
/// in the client's dialect).
fn with_model(body: Bytes, model: &str) -> Bytes {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut obj)) => {
            obj.insert("model".into(), serde_json::Value::String(model.to_string()));
            serde_json::to_vec(&obj).map(Bytes::from).unwrap_or(body)
        }
        _ => body,
    }
}

fn header_string(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn run(
    s: &AppState,
    dialect: Dialect,
    op: Op,
    req: Request,
    url_target: Option<(String, bool)>,
) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let client = parts.extensions.get::<Arc<Client>>().cloned();
    let mut ctx = Ctx {
        dialect,
        request_id: s.next_request_id(),
        anthropic_version: header_string(&parts.headers, "anthropic-version"),
        anthropic_beta: header_string(&parts.headers, "anthropic-beta"),
        started,
        strategy: None,
        served: None,
        requested_model: None,
        attempts: 0,
        url_stream: url_target
            .as_ref()
            .filter(|_| !matches!(op, Op::Embed))
            .map(|(_, stream)| *stream),
        gemini_embed: url_target
            .as_ref()
            .filter(|_| matches!(op, Op::Embed) && dialect == Dialect::Gemini)
            .map(|(_, batch)| {
                if *batch {
                    EmbedMethod::Batch
                } else {
                    EmbedMethod::Single
                }
            }),
        url_model: url_target.map(|(model, _)| model),
        client_key_id: client.as_ref().map(|c| c.id.clone()),
        client_budget: client.as_ref().and_then(|c| s.clients.budget_for(c)),
        client_tokens: client.as_ref().and_then(|c| s.clients.tokens_for(c)),
        client_shared_budget: client.as_ref().and_then(|c| s.clients.shared_budget_for(c)),
        provider_pins: client
            .as_ref()
            .filter(|c| !c.policy.providers.is_empty())
            .map(|c| c.policy.providers.clone().into()),
        system_prefix: client
            .as_ref()
            .and_then(|c| c.policy.system_prompt_prefix.as_deref())
            .map(Arc::from),
        upstream_keys: client
            .as_ref()
            .filter(|c| !c.upstream_keys.is_empty())
            .map(|c| Arc::clone(&c.upstream_keys)),
        sealed: None,
    };
    let result = async {
        if s.sapphire.enabled() {
            let caller = sapphire_caller(client.as_deref())?;
            ctx.sealed = Some((Arc::clone(&s.sapphire), caller));
        }
        if parts
            .headers
            .get(HOP_HEADER)
            .is_some_and(|v| v.as_bytes() == s.proxy.instance_id.as_bytes())
        {
            return Err(GatewayError::loop_detected());
        }
        if let Some(v) = parts.headers.get("x-ekai-route") {
            ctx.strategy = Some(v.to_str().ok().and_then(Strategy::parse).ok_or_else(|| {
                GatewayError::invalid("header x-ekai-route must be one of: cost, latency, priority")
                    .with_param(Some("x-ekai-route".into()))
            })?);
        }
        let mut body = read_body(&parts.headers, body, s.body_limit).await?;
        // Azure-style paths name the deployment, which wins over the body's `model` (Azure
        // ignores the body's); the request then goes on as an ordinary OpenAI one.
        if dialect == Dialect::OpenAiChat {
            if let Some(deployment) = ctx.url_model.take() {
                ctx.url_stream = None;
                body = with_model(body, &deployment);
            }
        }
        if let Some(c) = &client {
            body = apply_model_policy(&c.policy, body, &mut ctx.url_model)?;
        }
        // Boxed: the proxy's futures run to several KB (the attempt loop, the upstream call), and
        // every layer between hyper and here moves the handler's future by value; boxed, those
        // moves copy a pointer (measured with callgrind: −3.8% instructions per JSON request).
        match op {
            Op::Generate => Box::pin(s.proxy.generate(&mut ctx, body)).await,
            Op::CountTokens => Box::pin(s.proxy.count_tokens(&mut ctx, body)).await,
            Op::Embed => Box::pin(s.proxy.embed(&mut ctx, body)).await,
        }
    }
    .await;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => render(dialect, &e),
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        h.insert(X_REQUEST_ID, v);
    }
    let (provider, model) = match &ctx.served {
        Some((p, m)) => (p.as_str(), m.as_str()),
        None => ("none", ctx.requested_model.as_deref().unwrap_or("")),
    };
    if let Ok(v) = HeaderValue::from_str(provider) {
        h.insert(X_EKAI_PROVIDER, v);
    }
    if let Ok(v) = HeaderValue::from_str(model) {
        h.insert(X_EKAI_MODEL, v);
    }
    h.insert(X_EKAI_ATTEMPTS, HeaderValue::from(ctx.attempts));
    resp
}

/// Sapphire mode: the caller is a logged-in wallet (the delegate); the owner whose keys and
/// permissions apply is its `api_address` preference, else the wallet itself.
fn sapphire_caller(client: Option<&Client>) -> Result<crate::sapphire::Caller, GatewayError> {
    let Some(delegate) = client.and_then(crate::clients::wallet::wallet_of) else {
        return Err(GatewayError::sapphire(
            http::StatusCode::UNAUTHORIZED,
            "WALLET_LOGIN_REQUIRED",
            "this gateway runs in Sapphire mode: log in with a wallet (POST /auth/login with an EIP-712 signed Login message) and send the token as `Authorization: Bearer ekw_…`",
        ));
    };
    let owner = match client.and_then(|c| c.policy.api_address.as_deref()) {
        None => delegate,
        Some(a) => a.trim().parse().map_err(|_| {
            GatewayError::invalid(
                "your api_address preference is not an EVM address (0x + 40 hex digits); fix it with PUT /user/preferences",
            )
            .with_param(Some("api_address".into()))
        })?,
    };
    Ok(crate::sapphire::Caller { owner, delegate })
}

async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body).await;
        return Err(GatewayError::too_large(limit));
    }
    let mut body = body;
    // Most bodies arrive as one frame: keep it as is, copy only when a second one comes.
    let mut first: Option<Bytes> = None;
    let mut buf = bytes::BytesMut::new();
    loop {
        match body.frame().await {
            None => return Ok(first.unwrap_or_else(|| buf.freeze())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let have = first.as_ref().map_or(buf.len(), Bytes::len);
                    if have + data.len() > limit {
                        drain(body).await;
                        return Err(GatewayError::too_large(limit));
                    }
                    match first.take() {
                        None if buf.is_empty() => first = Some(data),
                        None => buf.extend_from_slice(&data),
                        Some(f) => {
                            buf.reserve(f.len() + data.len());
                            buf.extend_from_slice(&f);
                            buf.extend_from_slice(&data);
                        }
                    }
                }
            }
            Some(Err(e)) => {
                return Err(GatewayError::invalid(format!(
                    "could not read the request body: {e}"
                )));
            }
        }
    }
}

/// Reads and discards what is left of a refused body (at most 16 MiB, for at most 2 s), so the
/// client, still sending, receives the 413 instead of a reset connection.
async fn drain(mut body: axum::body::Body) {
    const MAX: usize = 16 * 1024 * 1024;
    let mut seen = 0usize;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while seen < MAX {
            match body.frame().await {
                Some(Ok(f)) => seen += f.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    })
    .await;
}
