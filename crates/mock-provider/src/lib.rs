//! Test-only mock upstream speaking OpenAI Chat Completions, OpenAI Responses, Anthropic
//! Messages and the Google Gemini native API.
//!
//! It is an independent oracle: every response is hand-written JSON, deterministic, and
//! scripted through a scenario list taken from the `x-mock-scenario` header or from the part
//! of the model name after the first `@` (e.g. `gpt-4o@status=429,retry-after=7`; for Gemini
//! the model is the URL segment, e.g. `/v1beta/models/gemini-2.5-flash@status=500:generateContent`).
//! See [`scenario::Scenario`] for the vocabulary.
//!
//! Routes (the name `hits` takes):
//! - `POST /v1/chat/completions`: "openai"
//! - `POST /v1/responses`: "responses"
//! - `POST /v1/messages`: "anthropic"; `POST /v1/messages/count_tokens`: "count_tokens"
//! - `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent` (`?alt=sse`
//!   for SSE, else a JSON array): "gemini"
//! - `POST /v1beta/models/{model}:embedContent` and `:batchEmbedContents`: "gemini_embed"
//! - `POST /v1/embeddings`: "embeddings" (float or base64, see [`embeddings`])
//! - Azure OpenAI, key in `api-key` (not `Authorization`), `?api-version=` required (404
//!   without, as Azure answers): `POST /openai/deployments/{deployment}/chat/completions`:
//!   "azure" (the deployment counts as the model in `hits_for_model`);
//!   `POST /openai/deployments/{deployment}/embeddings`: "azure_embeddings"
//! - `GET /v1/models`: "models"; anything else: "unknown" (404 in the closest dialect)

mod anthropic;
pub mod embeddings;
mod gemini;
mod openai;
mod plan;
mod responses;
pub mod scenario;
mod sse;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use plan::{
    CACHE_CREATION_TOKENS, CACHE_READ_TOKENS, GEMINI_THOUGHT_SIGNATURE, INPUT_OVERHEAD,
    THINKING_SIGNATURE, THINKING_TEXT, THINKING_TOKENS, TOOL_CALL_TOKENS, TOOL_INPUT_TEXT,
};
use plan::{Dialect, make_plan};
use scenario::Scenario;

/// Header carrying a scenario list; overrides the model suffix.
pub const SCENARIO_HEADER: &str = "x-mock-scenario";

/// Mock server configuration.
#[derive(Debug, Clone, Default)]
pub struct MockConfig {
    /// If set, requests without `Authorization: Bearer KEY` or `x-api-key: KEY` get a 401
    /// (Gemini routes: without `x-goog-api-key: KEY` or `?key=KEY`).
    pub expected_key: Option<String>,
    /// Scenario for requests that name none (neither header nor `@` model suffix), so one mock
    /// of a pair can fail while the other serves the same model.
    pub default_scenario: Option<String>,
}

/// One request as the mock saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// "openai", "responses", "anthropic", "gemini", "count_tokens", "models" or "unknown".
    pub route: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Parsed JSON body; `Null` when empty, a JSON string holding the raw text when not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Records {
    requests: Vec<RecordedRequest>,
    routes: HashMap<String, usize>,
    models: HashMap<String, usize>,
}

struct Shared {
    cfg: MockConfig,
    records: Mutex<Records>,
    seq: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// A running mock server.
pub struct MockHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for MockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockHandle {
    /// `http://IP:PORT` (no trailing slash, no `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Total requests seen on a route: "openai", "responses", "anthropic", "gemini",
    /// "count_tokens", "models", "unknown".
    pub fn hits(&self, route: &str) -> usize {
        self.shared.lock().routes.get(route).copied().unwrap_or(0)
    }

    /// Generation requests (openai, responses, anthropic and gemini routes) whose model was
    /// exactly this string (including any `@scenario` suffix). The model is the body's `model`,
    /// or for Gemini the (percent-decoded) URL segment before `:generateContent`.
    pub fn hits_for_model(&self, model: &str) -> usize {
        self.shared.lock().models.get(model).copied().unwrap_or(0)
    }

    /// Every request seen, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets all recorded requests and counters.
    pub fn reset(&self) {
        *self.shared.lock() = Records::default();
    }

    /// Stops accepting connections and waits (up to 2 s) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Binds 127.0.0.1:0 and serves in a tokio task.
pub async fn spawn(cfg: MockConfig) -> std::io::Result<MockHandle> {
    spawn_on(SocketAddr::from(([127, 0, 0, 1], 0)), cfg).await
}

/// Binds `addr` and serves in a tokio task.
pub async fn spawn_on(addr: SocketAddr, cfg: MockConfig) -> std::io::Result<MockHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        cfg,
        records: Mutex::new(Records::default()),
        seq: AtomicU64::new(0),
    });
    let app = router(shared.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    // The handle owns this task: `shutdown` stops it and waits for it.
    #[allow(clippy::disallowed_methods)]
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(MockHandle {
        addr,
        shared,
        stop: Some(stop),
        task,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route("/v1/responses", post(openai_responses))
        .route("/v1beta/models/{model_action}", post(gemini_models))
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .route("/v1/embeddings", post(openai_embeddings))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure_chat),
        )
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(azure_embeddings),
        )
        .route("/_mock/hits", get(hits_json))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn error_response(
    dialect: Dialect,
    status: u16,
    message: &str,
    retry_after: Option<&str>,
) -> Response {
    let body = match dialect {
        Dialect::OpenAi | Dialect::Responses => openai::error_body(status, message),
        Dialect::Anthropic => anthropic::error_body(status, message),
        Dialect::Gemini => gemini::error_body(status, message),
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (code, Json(body)).into_response();
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Which model, if any, a recorded request counts for in `hits_for_model`.
#[derive(Clone, Copy)]
enum CountModel<'a> {
    No,
    /// The body's `model` field.
    FromBody,
    /// A model named elsewhere (the Gemini URL).
    Is(&'a str),
}

/// Records the request and returns its parsed body (Err if it is not JSON).
fn record(
    shared: &Shared,
    route: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    count_model: CountModel<'_>,
) -> Result<Value, ()> {
    let parsed: Result<Value, ()> = if body.is_empty() {
        if route == "models" || route == "unknown" {
            Ok(Value::Null)
        } else {
            Err(())
        }
    } else {
        serde_json::from_slice(body).map_err(|_| ())
    };
    let recorded_body = match &parsed {
        Ok(v) => v.clone(),
        Err(()) if body.is_empty() => Value::Null,
        Err(()) => Value::String(String::from_utf8_lossy(body).into_owned()),
    };
    let rec = RecordedRequest {
        route: route.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: recorded_body,
    };
    let model = match count_model {
        CountModel::No => None,
        CountModel::FromBody => parsed
            .as_ref()
            .ok()
            .and_then(|b| b.get("model"))
            .and_then(Value::as_str)
            .map(str::to_string),
        CountModel::Is(m) => Some(m.to_string()),
    };
    let mut r = shared.lock();
    *r.routes.entry(route.to_string()).or_insert(0) += 1;
    if let Some(m) = model {
        *r.models.entry(m).or_insert(0) += 1;
    }
    r.requests.push(rec);
    parsed
}

/// A query parameter's raw value.
fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn authorized(shared: &Shared, dialect: Dialect, uri: &Uri, headers: &HeaderMap) -> bool {
    let Some(key) = &shared.cfg.expected_key else {
        return true;
    };
    if dialect == Dialect::Gemini {
        let goog = headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == key);
        return goog || query_param(uri, "key") == Some(key.as_str());
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|v| v.trim() == key);
    let x_api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == key);
    bearer || x_api_key
}

fn unauthorized(dialect: Dialect) -> Response {
    let msg = match dialect {
        Dialect::OpenAi | Dialect::Responses => "Incorrect API key provided.",
        Dialect::Anthropic => "invalid x-api-key",
        Dialect::Gemini => "API key not valid. Please pass a valid API key.",
    };
    error_response(dialect, 401, msg, None)
}

fn invalid_json(dialect: Dialect) -> Response {
    let msg = match dialect {
        Dialect::OpenAi | Dialect::Responses => {
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)"
        }
        Dialect::Anthropic => "Request body is not valid JSON.",
        Dialect::Gemini => "Invalid JSON payload received.",
    };
    error_response(dialect, 400, msg, None)
}

fn body_model(body: &Value) -> &str {
    body.get("model").and_then(Value::as_str).unwrap_or("")
}

fn scenario_for(shared: &Shared, headers: &HeaderMap, model: &str) -> Scenario {
    let header = headers.get(SCENARIO_HEADER).and_then(|v| v.to_str().ok());
    let header = header.or(if model.contains('@') {
        None
    } else {
        shared.cfg.default_scenario.as_deref()
    });
    Scenario::select(header, model)
}

/// Applies `delay` then `status`; returns an error response if the scenario asks for one.
async fn pre_answer(dialect: Dialect, sc: &Scenario) -> Option<Response> {
    if sc.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sc.delay_ms)).await;
    }
    sc.error_status().map(|status| {
        error_response(
            dialect,
            status,
            &format!("Mock error: scripted status {status}"),
            sc.retry_after.as_deref(),
        )
    })
}

/// Model and streaming mode named by the URL (Gemini) rather than the body.
struct PathTarget {
    model: String,
    stream: bool,
    /// `?alt=sse`: SSE framing; otherwise a streamed call answers with a JSON array.
    sse: bool,
}

async fn generate(
    shared: Arc<Shared>,
    dialect: Dialect,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    target: Option<PathTarget>,
) -> Response {
    generate_on(shared, dialect, None, uri, headers, body, target).await
}

/// `azure`: the deployment of an Azure route (auth by `api-key`, route name "azure").
async fn generate_on(
    shared: Arc<Shared>,
    dialect: Dialect,
    azure: Option<&str>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    target: Option<PathTarget>,
) -> Response {
    let count = match (&target, azure) {
        (Some(t), _) => CountModel::Is(&t.model),
        (None, Some(d)) => CountModel::Is(d),
        (None, None) => CountModel::FromBody,
    };
    let route = if azure.is_some() {
        "azure"
    } else {
        dialect.route()
    };
    let parsed = record(&shared, route, &uri, &headers, &body, count);
    if let Some(resp) = azure_refusal(&shared, azure.is_some(), &uri, &headers) {
        return resp;
    }
    if azure.is_none() && !authorized(&shared, dialect, &uri, &headers) {
        return unauthorized(dialect);
    }
    let Ok(body) = parsed else {
        return invalid_json(dialect);
    };
    let model = match &target {
        Some(t) => t.model.as_str(),
        None => body_model(&body),
    };
    let sc = scenario_for(&shared, &headers, model);
    if let Some(resp) = pre_answer(dialect, &sc).await {
        return resp;
    }
    let analysis = match dialect {
        Dialect::OpenAi => openai::analyze(&body),
        Dialect::Anthropic => anthropic::analyze(&body),
        Dialect::Responses => responses::analyze(&body),
        Dialect::Gemini => gemini::analyze(&body, model, target.as_ref().is_some_and(|t| t.stream)),
    };
    let plan = make_plan(analysis, &sc, dialect);
    let n = shared.next_id();
    match (dialect, plan.stream) {
        (Dialect::OpenAi, false) => Json(openai::response(
            &plan,
            &format!("chatcmpl-mock-{n}"),
            unix_now(),
        ))
        .into_response(),
        (Dialect::OpenAi, true) => sse::response(
            openai::stream_frames(&plan, &format!("chatcmpl-mock-{n}"), unix_now()),
            Some(openai::malformed_frame()),
            &sc,
        ),
        (Dialect::Anthropic, false) => {
            Json(anthropic::response(&plan, &format!("msg_mock_{n}"))).into_response()
        }
        (Dialect::Anthropic, true) => sse::response(
            anthropic::stream_frames(&plan, &format!("msg_mock_{n}")),
            Some(anthropic::malformed_frame()),
            &sc,
        ),
        (Dialect::Responses, false) => Json(responses::response(
            &plan,
            &format!("resp_mock_{n}"),
            unix_now(),
            &body,
        ))
        .into_response(),
        (Dialect::Responses, true) => sse::response(
            responses::stream_frames(&plan, &format!("resp_mock_{n}"), unix_now(), &body),
            Some(responses::malformed_frame()),
            &sc,
        ),
        (Dialect::Gemini, false) => {
            Json(gemini::response(&plan, &format!("mock-gemini-{n}"))).into_response()
        }
        (Dialect::Gemini, true) if target.as_ref().is_some_and(|t| t.sse) => sse::response(
            gemini::stream_frames(&plan, &format!("mock-gemini-{n}")),
            Some(gemini::malformed_frame()),
            &sc,
        ),
        (Dialect::Gemini, true) => Json(Value::Array(gemini::stream_chunks(
            &plan,
            &format!("mock-gemini-{n}"),
        )))
        .into_response(),
    }
}

async fn openai_chat(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    generate(shared, Dialect::OpenAi, uri, headers, body, None).await
}

async fn openai_responses(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    generate(shared, Dialect::Responses, uri, headers, body, None).await
}

/// Azure's answers to a request without `api-version` (404) or without the right `api-key` (401).
fn azure_refusal(shared: &Shared, azure: bool, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    if !azure {
        return None;
    }
    if query_param(uri, "api-version").is_none_or(str::is_empty) {
        let body = json!({"error": {"code": "404", "message": "Resource not found"}});
        return Some((StatusCode::NOT_FOUND, Json(body)).into_response());
    }
    let key = headers.get("api-key").and_then(|v| v.to_str().ok());
    match &shared.cfg.expected_key {
        Some(k) if key.map(str::trim) != Some(k.as_str()) => {
            let body = json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}});
            Some((StatusCode::UNAUTHORIZED, Json(body)).into_response())
        }
        _ => None,
    }
}

async fn azure_chat(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    generate_on(
        shared,
        Dialect::OpenAi,
        Some(&deployment),
        uri,
        headers,
        body,
        None,
    )
    .await
}

/// The shared part of the embedding routes: record, authorize, parse, play the scenario (header,
/// `@` suffix of the body's model, or the mock's default), answer or 400.
#[allow(clippy::too_many_arguments)]
async fn embed(
    shared: &Shared,
    route: &str,
    dialect: Dialect,
    azure: bool,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    answer: impl FnOnce(&Value) -> Result<Value, String>,
) -> Response {
    let parsed = record(shared, route, uri, headers, body, CountModel::No);
    if let Some(resp) = azure_refusal(shared, azure, uri, headers) {
        return resp;
    }
    if !azure && !authorized(shared, dialect, uri, headers) {
        return unauthorized(dialect);
    }
    let Ok(body) = parsed else {
        return invalid_json(dialect);
    };
    let sc = scenario_for(shared, headers, body_model(&body));
    if let Some(resp) = pre_answer(dialect, &sc).await {
        return resp;
    }
    match answer(&body) {
        Ok(v) => Json(v).into_response(),
        Err(message) => error_response(dialect, 400, &message, None),
    }
}

async fn openai_embeddings(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    embed(
        &shared,
        "embeddings",
        Dialect::OpenAi,
        false,
        &uri,
        &headers,
        &body,
        |b| embeddings::openai_response(b, body_model(b)),
    )
    .await
}

async fn azure_embeddings(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    embed(
        &shared,
        "azure_embeddings",
        Dialect::OpenAi,
        true,
        &uri,
        &headers,
        &body,
        |b| embeddings::openai_response(b, &deployment),
    )
    .await
}

/// `POST /v1beta/models/{model}:{action}`; the model segment may hold an `@scenario` suffix,
/// so the action is what follows the last ':'.
async fn gemini_models(
    State(shared): State<Arc<Shared>>,
    Path(model_action): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (model, action) = model_action
        .rsplit_once(':')
        .unwrap_or((model_action.as_str(), ""));
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" => true,
        "countTokens" => return gemini_count_tokens(&shared, &uri, &headers, &body),
        "embedContent" => {
            return embed(
                &shared,
                "gemini_embed",
                Dialect::Gemini,
                false,
                &uri,
                &headers,
                &body,
                embeddings::gemini_single,
            )
            .await;
        }
        "batchEmbedContents" => {
            let model = model.to_string();
            return embed(
                &shared,
                "gemini_embed",
                Dialect::Gemini,
                false,
                &uri,
                &headers,
                &body,
                |b| embeddings::gemini_batch(b, &model),
            )
            .await;
        }
        _ => {
            let _ = record(&shared, "unknown", &uri, &headers, &body, CountModel::No);
            return error_response(
                Dialect::Gemini,
                404,
                &format!("Mock: unsupported method models/{model_action}"),
                None,
            );
        }
    };
    let target = PathTarget {
        model: model.to_string(),
        stream,
        sse: query_param(&uri, "alt") == Some("sse"),
    };
    generate(shared, Dialect::Gemini, uri, headers, body, Some(target)).await
}

/// `:countTokens`: `{"totalTokens": words + 10}`, the same count `generateContent` reports as
/// `promptTokenCount`. Body: `{contents}` or `{generateContentRequest: {contents}}`.
fn gemini_count_tokens(shared: &Shared, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    let parsed = record(shared, "count_tokens", uri, headers, body, CountModel::No);
    if !authorized(shared, Dialect::Gemini, uri, headers) {
        return unauthorized(Dialect::Gemini);
    }
    let Ok(body) = parsed else {
        return invalid_json(Dialect::Gemini);
    };
    let request = body.get("generateContentRequest").unwrap_or(&body);
    let a = gemini::analyze(request, "", false);
    axum::Json(serde_json::json!({"totalTokens": a.input_words as u64 + INPUT_OVERHEAD}))
        .into_response()
}

async fn anthropic_messages(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    generate(shared, Dialect::Anthropic, uri, headers, body, None).await
}

async fn count_tokens(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dialect = Dialect::Anthropic;
    let parsed = record(
        &shared,
        "count_tokens",
        &uri,
        &headers,
        &body,
        CountModel::No,
    );
    if !authorized(&shared, dialect, &uri, &headers) {
        return unauthorized(dialect);
    }
    let Ok(body) = parsed else {
        return invalid_json(dialect);
    };
    let sc = scenario_for(&shared, &headers, body_model(&body));
    if let Some(resp) = pre_answer(dialect, &sc).await {
        return resp;
    }
    let a = anthropic::analyze(&body);
    Json(json!({ "input_tokens": a.input_words as u64 + INPUT_OVERHEAD })).into_response()
}

/// Model ids listed by `GET /v1/models`.
pub const MODEL_IDS: &[(&str, &str)] = &[
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-haiku-4-5", "anthropic"),
];

async fn models(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let _ = record(&shared, "models", &uri, &headers, &[], CountModel::No);
    if !authorized(&shared, Dialect::OpenAi, &uri, &headers) {
        return unauthorized(Dialect::OpenAi);
    }
    let data: Vec<Value> = MODEL_IDS
        .iter()
        .map(|(id, owner)| json!({ "id": id, "object": "model", "created": 1_700_000_000u64, "owned_by": owner }))
        .collect();
    Json(json!({ "object": "list", "data": data })).into_response()
}

async fn hits_json(State(shared): State<Arc<Shared>>) -> Response {
    let r = shared.lock();
    let routes: BTreeMap<&str, usize> = r.routes.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let models: BTreeMap<&str, usize> = r.models.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let body = json!({
        "total": r.requests.len(),
        "routes": routes,
        "by_model": models,
    });
    drop(r);
    Json(body).into_response()
}

async fn fallback(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = record(&shared, "unknown", &uri, &headers, &body, CountModel::No);
    let dialect = if uri.path().starts_with("/v1beta") {
        Dialect::Gemini
    } else if headers.contains_key("anthropic-version") || uri.path().contains("messages") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    };
    error_response(
        dialect,
        404,
        &format!("Mock: no route for {}", uri.path()),
        None,
    )
}
