//! The TOML file as written by the user. Every table rejects unknown keys; `load` reports the key's
//! path (`providers.together.base_ur`) so a typo is found at once.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    /// Built-in providers by name (`openai`, `anthropic`, `xai`, `openrouter`, `gemini`, `azure`, and
    /// the presets `mistral`, `groq`, `deepseek`, `together`, `perplexity`, `cohere`, `zai`,
    /// `ollama`, `lmstudio`, `vllm`) to adjust them,
    /// or any other name to declare an OpenAI-compatible (or Anthropic-compatible) provider.
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub routing: RawRouting,
    #[serde(default)]
    pub health: RawHealth,
    /// `[[models]]`: catalog entries to add, or to replace the built-in entry with the same
    /// `provider` and `id` (a price the user negotiated, a model the catalog lacks).
    #[serde(default)]
    pub models: Vec<RawModelOverride>,
    #[serde(default)]
    pub ledger: RawLedger,
    #[serde(default)]
    pub ui: RawUi,
    #[serde(default)]
    pub auth: RawAuth,
}

/// `[ui]`: the dashboard's own listener (it is also served under `/dashboard` on the API port).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUi {
    /// Set false to not open the dashboard listener.
    pub enabled: Option<bool>,
    pub host: Option<String>,
    /// `UI_PORT` wins; default 3000.
    pub port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// `open` (no key needed) or `keys` (every API request needs a client key). Default: keys when
    /// any client exists in the database, else open.
    pub mode: Option<String>,
    /// Allow open mode on a non-loopback address (anyone who can reach the port can spend).
    pub allow_open_on_public: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    /// `cost` (default), `latency` or `priority` (config order).
    pub strategy: Option<String>,
    /// Upstreams tried per request, fallbacks included.
    pub max_attempts: Option<u32>,
    /// Overall time budget of one request across its attempts.
    pub deadline_ms: Option<u64>,
    /// Output tokens assumed when comparing costs (caps the request's max tokens).
    pub typical_output_tokens: Option<u32>,
    /// Rules ranked before cost: `{ model = "grok-*", provider = "xai" }`.
    pub rules: Option<Vec<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub model: String,
    pub provider: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub consecutive_failures: Option<u32>,
    pub error_ratio: Option<f64>,
    pub min_requests: Option<usize>,
    pub window_ms: Option<u64>,
    pub cooldown_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    /// `sqlite://PATH`, `postgres://…`, or `none`/`off` (DATABASE_URL wins).
    pub database_url: Option<String>,
    /// Records waiting for the writer before `on_full` applies.
    pub queue_size: Option<usize>,
    /// Longest a record waits in a partial batch, in ms.
    pub flush_ms: Option<u64>,
    pub batch_size: Option<usize>,
    /// `block` (wait briefly for room, then drop and count) or `drop` (count at once).
    pub on_full: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Largest request body accepted, in MiB.
    pub body_limit_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect_ms: Option<u64>,
    /// Until the upstream's response headers arrive.
    pub first_byte_ms: Option<u64>,
    /// Longest silence allowed between two chunks of an upstream body.
    pub idle_ms: Option<u64>,
    /// Send a keep-alive to a streaming client after this much upstream silence.
    pub keepalive_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub base_url: Option<String>,
    /// Name of the environment variable holding the key.
    pub api_key_env: Option<String>,
    /// `openai_chat` (default) or `anthropic`: the API the upstream speaks.
    pub dialect: Option<String>,
    /// Models this provider serves, as clients name them.
    pub models: Option<Vec<String>>,
    /// Set false to ignore a built-in provider even when its key is present.
    pub enabled: Option<bool>,
    /// `providers.azure` only: the `api-version` query parameter.
    pub api_version: Option<String>,
    /// `providers.azure` only: model name → deployment name.
    pub deployments: Option<BTreeMap<String, String>>,
}

/// A catalog entry (same fields as `catalog/*.toml`) plus the provider serving it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModelOverride {
    pub provider: String,
    pub id: String,
    pub upstream: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub price: Option<crate::catalog::Price>,
    pub context_window: Option<u32>,
    pub max_output: Option<u32>,
    #[serde(default)]
    pub capabilities: Vec<crate::catalog::Capability>,
}
