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
    /// Built-in providers by name (`openai`, `anthropic`, `xai`, `openrouter`, `gemini`) to adjust them,
    /// or any other name to declare an OpenAI-compatible (or Anthropic-compatible) provider.
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub ledger: RawLedger,
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
}
