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
    #[serde(default)]
    pub sapphire: RawSapphire,
    #[serde(default)]
    pub x402: RawX402,
}

/// `[x402]`: paying per request over HTTP 402 (the wallet key itself only comes from the
/// environment: `PRIVATE_KEY` or `EKAI_X402_PRIVATE_KEY`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawX402 {
    /// `byok` (never pay), `hybrid` (pay for models no keyed provider serves; the default with a
    /// wallet) or `x402-only`. `X402_MODE` wins.
    pub mode: Option<String>,
    /// The relay (`X402_BASE_URL` wins); it serves `/v1/chat/completions` and `/v1/messages`.
    pub base_url: Option<String>,
    /// Networks the wallet may pay on (`base`, `base-sepolia`, `eip155:<chain id>`).
    pub networks: Option<Vec<String>>,
    /// Token contracts the wallet may pay with (6-decimal USD stablecoins: USDC).
    pub assets: Option<Vec<String>>,
    /// Largest single payment, in USD (default 0.10).
    pub max_per_request_usd: Option<rust_decimal::Decimal>,
    /// Total per UTC day / calendar month, reserved or settled (0 = no cap).
    pub max_per_day_usd: Option<rust_decimal::Decimal>,
    pub max_per_month_usd: Option<rust_decimal::Decimal>,
    /// A 402 may ask at most the catalog's estimate of the request × (1 + this) …
    pub estimate_tolerance: Option<rust_decimal::Decimal>,
    /// … or this much, whichever is larger (relays charge a minimum per call).
    pub min_charge_usd: Option<rust_decimal::Decimal>,
}

/// `[sapphire]`: Oasis Sapphire/ROFL mode (sealed provider keys, on-chain permissions, receipts).
/// On when a control-plane address is set (here or `EKAI_CONTROL_PLANE_ADDRESS`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSapphire {
    /// `EkaiControlPlane` contract address (`EKAI_CONTROL_PLANE_ADDRESS` wins).
    pub control_plane_address: Option<String>,
    /// EVM JSON-RPC URL (`SAPPHIRE_RPC_URL` wins).
    pub rpc_url: Option<String>,
    /// `SAPPHIRE_CHAIN_ID` wins; 23295 testnet, 23294 mainnet.
    pub chain_id: Option<u64>,
    /// How long chain reads (pause flag, permissions, sealed keys) are reused, in ms.
    pub cache_ms: Option<u64>,
    /// Longest wallet session a login may ask for, in seconds.
    pub max_session_secs: Option<u64>,
    /// Receipts sent per round of the outbox sender.
    pub receipt_batch_size: Option<usize>,
    /// Longest wait between two attempts at an unsent receipt, in ms.
    pub receipt_max_backoff_ms: Option<u64>,
    /// Gas limit of one `logReceipt` transaction.
    pub receipt_gas_limit: Option<u64>,
    /// Reverted `logReceipt` transactions after which a receipt is given up.
    pub receipt_max_reverts: Option<u32>,
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
    /// Redis for rate-limit windows shared by several instances (`REDIS_URL` wins).
    pub redis_url: Option<String>,
    /// Sign-in attempts per client address and minute (0 = no limit).
    pub login_attempts_per_minute: Option<u32>,
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
    /// Browser origins allowed to call the API (CORS); none by default.
    pub cors_origins: Option<Vec<String>>,
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
