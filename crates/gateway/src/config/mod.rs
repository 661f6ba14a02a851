//! Configuration: the ONLY module that reads the environment, `.env` and the config file.
//!
//! Sources, strongest first: process environment, `.env` in the working directory, the TOML file
//! (`--config PATH` or `EKAI_CONFIG`), built-in defaults. Everything else receives a validated
//! [`Config`] and never looks at the environment itself.

mod presets;
mod raw;
mod sapphire;
mod secret;

pub use presets::Preset;
pub use sapphire::{RoflConfig, SapphireConfig, parse_address};
pub use secret::Secret;

use ekai_wire::canonical::Dialect;
use raw::{RawConfig, RawProvider};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The built-in upstreams, plus the generic OpenAI-compatible kind for everything declared in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    Xai,
    OpenRouter,
    Gemini,
    /// Azure OpenAI: deployment URLs, `api-key` header.
    Azure,
    /// A named OpenAI-compatible service (Mistral, Groq, Ollama …).
    Preset(Preset),
    Compatible,
    /// The x402 relay: no key, paid per request from the wallet (`[x402]`).
    X402,
}

impl ProviderKind {
    /// Every built-in provider, in the order candidates tie-break: vendors (the presets among
    /// them) before the aggregator.
    pub fn built_in() -> impl Iterator<Item = ProviderKind> {
        [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
            ProviderKind::Xai,
            ProviderKind::Azure,
        ]
        .into_iter()
        .chain(Preset::ALL.into_iter().map(ProviderKind::Preset))
        .chain(std::iter::once(ProviderKind::OpenRouter))
    }

    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Xai => "xai",
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Azure => "azure",
            ProviderKind::Preset(p) => p.name(),
            ProviderKind::Compatible => "compatible",
            ProviderKind::X402 => "x402",
        }
    }

    fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Xai => "https://api.x.ai/v1",
            ProviderKind::OpenRouter => "https://openrouter.ai/api/v1",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
            ProviderKind::Preset(p) => p.default_base_url(),
            // Each Azure resource has its own endpoint: nothing to default to.
            ProviderKind::Azure | ProviderKind::Compatible => "",
            ProviderKind::X402 => DEFAULT_X402_BASE_URL,
        }
    }

    fn key_envs(self) -> &'static [&'static str] {
        match self {
            ProviderKind::OpenAi => &["OPENAI_API_KEY"],
            ProviderKind::Anthropic => &["ANTHROPIC_API_KEY"],
            ProviderKind::Xai => &["XAI_API_KEY"],
            ProviderKind::OpenRouter => &["OPENROUTER_API_KEY"],
            // Google's own docs and SDKs use both names.
            ProviderKind::Gemini => &["GOOGLE_API_KEY", "GEMINI_API_KEY"],
            // The name the official openai SDKs' Azure clients read.
            ProviderKind::Azure => &["AZURE_OPENAI_API_KEY"],
            ProviderKind::Preset(p) => p.key_envs(),
            ProviderKind::Compatible => &[],
            ProviderKind::X402 => &["PRIVATE_KEY", "EKAI_X402_PRIVATE_KEY"],
        }
    }

    /// A base-URL variable other tools already use for this provider.
    fn base_env(self) -> Option<&'static str> {
        match self {
            ProviderKind::Azure => Some("AZURE_OPENAI_ENDPOINT"),
            ProviderKind::Preset(p) => p.base_env(),
            _ => None,
        }
    }

    fn dialect(self) -> Dialect {
        match self {
            ProviderKind::Anthropic => Dialect::Anthropic,
            ProviderKind::Gemini => Dialect::Gemini,
            _ => Dialect::OpenAiChat,
        }
    }
}

/// The Azure API version used when neither the config nor the environment names one: the newest
/// GA data-plane inference version (Azure OpenAI REST reference, checked 2026-11-22).
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// `[providers.azure]`: which deployment serves which model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureSettings {
    /// `api-version` query parameter.
    pub api_version: String,
    /// Model name (as clients and the catalog name it) → deployment name. Empty: every model is
    /// assumed deployed under its own name.
    pub deployments: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Unique, lower-case; what `x-ekai-provider` and logs show.
    pub name: String,
    pub kind: ProviderKind,
    pub dialect: Dialect,
    /// OpenAI-style providers include the version segment (`…/v1`); Anthropic's does not.
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// The variable a user sets to give this provider a key (named in error messages).
    pub key_env: String,
    /// Models declared in the config file, in addition to the built-in list.
    pub models: Vec<String>,
    /// The user pointed the gateway at this provider (a `[providers.NAME]` table or a base-URL
    /// variable): what makes a keyless local server (Ollama, LM Studio, vLLM) usable.
    pub declared: bool,
    /// Azure only.
    pub azure: Option<AzureSettings>,
    /// Sapphire mode: each caller's key for this provider comes sealed from the control plane, so
    /// the provider is usable without a key of the gateway's own (which is then never sent).
    pub sealed_keys: bool,
}

impl ProviderConfig {
    /// A provider is usable when it has a key (and, for Azure, an endpoint), or when it is a
    /// declared endpoint that needs none (a local vLLM, LM Studio, Ollama, or any file-declared one).
    pub fn is_configured(&self) -> bool {
        if self.base_url.is_empty() {
            return false;
        }
        let keyless_local = match self.kind {
            ProviderKind::Preset(p) => p.keyless() && self.declared,
            // File-declared endpoints; the x402 provider exists only when a wallet is set and the
            // mode allows paying.
            ProviderKind::Compatible | ProviderKind::X402 => true,
            _ => false,
        };
        self.api_key.is_some() || self.sealed_keys || keyless_local
    }
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub keepalive: Duration,
}

/// How candidates for a model are ordered after the configured rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Cheapest expected cost for this request first.
    Cost,
    /// Lowest measured latency first.
    Latency,
    /// Provider order as configured (built-ins first, then the file's providers).
    Priority,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cost" => Some(Strategy::Cost),
            "latency" => Some(Strategy::Latency),
            "priority" => Some(Strategy::Priority),
            _ => None,
        }
    }
}

/// `model` is an exact name or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub model: String,
    pub provider: String,
}

impl RouteRule {
    pub fn matches(&self, model: &str) -> bool {
        match self.model.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => model == self.model,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Routing {
    pub strategy: Strategy,
    pub max_attempts: u32,
    pub deadline: Duration,
    pub typical_output_tokens: u32,
    pub rules: Vec<RouteRule>,
    /// `x402-only`: the x402 relay is the only candidate for every model.
    pub x402_only: bool,
}

/// Circuit breaker settings, per provider.
#[derive(Debug, Clone)]
pub struct BreakerSettings {
    /// Open after this many failures in a row.
    pub consecutive_failures: u32,
    /// …or when at least `min_requests` outcomes in `window` failed at this ratio.
    pub error_ratio: f64,
    pub min_requests: usize,
    pub window: Duration,
    /// How long an open breaker refuses traffic before letting one probe through.
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            consecutive_failures: 5,
            error_ratio: 0.5,
            min_requests: 10,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
        }
    }
}

/// What the ledger does when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// Hold the submitting request briefly for room, then drop (counted and logged).
    Block,
    /// Drop at once (counted and logged).
    Drop,
}

#[derive(Clone)]
pub struct LedgerConfig {
    /// `sqlite://…` or `postgres://…` (userinfo may hold a password: never logged, see `redacted_url`).
    pub database_url: String,
    pub queue_size: usize,
    pub flush: Duration,
    pub batch_size: usize,
    pub on_full: OnFull,
}

impl std::fmt::Debug for LedgerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerConfig")
            .field("database_url", &self.redacted_url())
            .field("queue_size", &self.queue_size)
            .field("flush", &self.flush)
            .field("batch_size", &self.batch_size)
            .field("on_full", &self.on_full)
            .finish()
    }
}

impl LedgerConfig {
    /// The defaults, with another database (tests, tools).
    pub fn with_url(database_url: impl Into<String>) -> LedgerConfig {
        LedgerConfig {
            database_url: database_url.into(),
            queue_size: 10_000,
            flush: Duration::from_millis(50),
            batch_size: 256,
            on_full: OnFull::Block,
        }
    }

    /// The URL without its password, for logs.
    pub fn redacted_url(&self) -> String {
        let u = &self.database_url;
        match (u.find("://"), u.find('@')) {
            (Some(s), Some(at)) if at > s => match u[s + 3..at].find(':') {
                Some(c) => format!("{}:***{}", &u[..s + 3 + c], &u[at..]),
                None => u.clone(),
            },
            _ => u.clone(),
        }
    }
}

/// `[auth] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No key needed (personal local use).
    Open,
    /// Every API request needs a client key.
    Keys,
    /// Keys when any client exists in the database, else open (decided again as clients change).
    Auto,
}

/// Minimum length of `EKAI_MASTER_KEY`.
pub const MASTER_KEY_MIN_LEN: usize = 32;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub allow_open_on_public: bool,
    /// `EKAI_ADMIN_TOKEN`: the admin API answers 404 without it.
    pub admin_token: Option<Secret>,
    /// `EKAI_MASTER_KEY`: the HMAC key of client key hashes.
    pub master_key: Option<Secret>,
    /// `REDIS_URL`: rate-limit windows live there (shared by instances) instead of in-process. A
    /// secret because the URL may carry a password.
    pub redis_url: Option<Secret>,
    /// Sign-in attempts (wallet and admin logins, wrong admin tokens) per client address and
    /// minute; 0 = no limit.
    pub login_attempts_per_minute: u32,
}

/// The default of `[auth] login_attempts_per_minute`.
pub const DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE: u32 = 20;

impl AuthConfig {
    /// Open mode with nothing configured (tests, tools).
    pub fn open() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Auto,
            allow_open_on_public: false,
            admin_token: None,
            master_key: None,
            redis_url: None,
            login_attempts_per_minute: DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub body_limit: usize,
    pub timeouts: Timeouts,
    pub routing: Routing,
    pub breaker: BreakerSettings,
    /// Built-ins first (in `ProviderKind::built_in` order), then file-declared ones by name.
    pub providers: Vec<ProviderConfig>,
    /// `tracing` filter directive (RUST_LOG), default `info`.
    pub log_filter: String,
    pub config_file: Option<PathBuf>,
    /// `[[models]]` from the file, validated; applied with `Catalog::with_overrides`.
    pub model_overrides: Vec<crate::catalog::ModelEntry>,
    /// None when the ledger is disabled (`DATABASE_URL=none`): records are then only logged.
    pub ledger: Option<LedgerConfig>,
    /// The dashboard's listener.
    pub ui: UiConfig,
    pub auth: AuthConfig,
    /// Where the X25519 key of sealed secrets comes from (ROFL daemon or `ROFL_PRIVATE_KEY`).
    pub rofl: RoflConfig,
    /// Sapphire mode: on when a control-plane address is configured.
    pub sapphire: Option<SapphireConfig>,
    /// Origins allowed to call the API from a browser (`EKAI_CORS_ORIGINS`, `[server]
    /// cors_origins`): empty = CORS off (browsers block cross-origin calls); `*` = any origin.
    pub cors_origins: Vec<String>,
    pub x402: X402Config,
}

/// The relay the original Ekai Gateway used.
pub const DEFAULT_X402_BASE_URL: &str = "https://x402.ekailabs.xyz";

/// `X402_MODE` / `[x402] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X402Mode {
    /// Never pay: only providers with keys.
    Byok,
    /// Pay through the relay for models no keyed provider serves.
    Hybrid,
    /// Every model through the relay.
    X402Only,
}

impl X402Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            X402Mode::Byok => "byok",
            X402Mode::Hybrid => "hybrid",
            X402Mode::X402Only => "x402-only",
        }
    }
}

/// Paying per request (x402): the wallet and the spend controls checked before anything is signed.
#[derive(Debug, Clone)]
pub struct X402Config {
    pub mode: X402Mode,
    /// The wallet's private key (hex), never logged; None = x402 off.
    pub wallet: Option<Secret>,
    /// Which variable held it (for messages).
    pub wallet_env: &'static str,
    pub base_url: String,
    /// Chain ids the wallet may pay on (from `base`, `base-sepolia`, `eip155:N`).
    pub chain_ids: Vec<u64>,
    /// Token contracts (lower-case 0x-hex) the wallet may pay with.
    pub assets: Vec<String>,
    pub max_per_request: rust_decimal::Decimal,
    pub max_per_day: Option<rust_decimal::Decimal>,
    pub max_per_month: Option<rust_decimal::Decimal>,
    pub estimate_tolerance: rust_decimal::Decimal,
    pub min_charge: rust_decimal::Decimal,
}

impl X402Config {
    /// x402 off (tests, tools).
    pub fn off() -> X402Config {
        X402Config {
            mode: X402Mode::Byok,
            wallet: None,
            wallet_env: "PRIVATE_KEY",
            base_url: DEFAULT_X402_BASE_URL.to_string(),
            chain_ids: vec![8453, 84532],
            assets: DEFAULT_X402_ASSETS
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
            max_per_request: rust_decimal::Decimal::new(10, 2),
            max_per_day: Some(rust_decimal::Decimal::new(5, 0)),
            max_per_month: Some(rust_decimal::Decimal::new(50, 0)),
            estimate_tolerance: rust_decimal::Decimal::ONE,
            min_charge: rust_decimal::Decimal::new(2, 2),
        }
    }

    /// The relay is a candidate (a wallet is set and the mode pays).
    pub fn enabled(&self) -> bool {
        self.wallet.is_some() && self.mode != X402Mode::Byok
    }
}

/// USDC on Base and on Base Sepolia.
pub const DEFAULT_X402_ASSETS: [&str; 2] = [
    "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
    "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
];

/// The chain an x402 network name designates (v1 short names, v2 CAIP-2 `eip155:N`).
pub fn x402_chain_id(network: &str) -> Option<u64> {
    match network {
        "base" => Some(8453),
        "base-sepolia" => Some(84532),
        "avalanche" => Some(43114),
        "avalanche-fuji" => Some(43113),
        "polygon" => Some(137),
        "polygon-amoy" => Some(80002),
        "sei" => Some(1329),
        "sei-testnet" => Some(1328),
        "iotex" => Some(4689),
        _ => network
            .strip_prefix("eip155:")
            .and_then(|n| n.parse::<u64>().ok()),
    }
}

/// `EKAI_CORS_ORIGINS` (comma-separated) or `[server] cors_origins`, each `*` or an
/// `http(s)://host[:port]` origin.
fn cors_origins<'a>(
    raw: Option<&Vec<String>>,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Vec<String>, ConfigError> {
    let list: Vec<String> = match get("EKAI_CORS_ORIGINS") {
        Some(v) => v.split(',').map(|o| o.trim().to_string()).collect(),
        None => raw.cloned().unwrap_or_default(),
    };
    let list: Vec<String> = list.into_iter().filter(|o| !o.is_empty()).collect();
    for o in &list {
        let ok = o == "*"
            || ((o.starts_with("http://") || o.starts_with("https://"))
                && !o.trim_end_matches('/').contains(['?', '#'])
                && o.splitn(4, '/').nth(3).is_none_or(str::is_empty));
        if !ok {
            return Err(ConfigError::Invalid(format!(
                "server.cors_origins: {o:?} is not an origin (use \"*\" or e.g. \"https://app.example.com\")"
            )));
        }
    }
    Ok(list
        .into_iter()
        .map(|o| o.trim_end_matches('/').to_string())
        .collect())
}

/// The dashboard listener (`[ui]`, `UI_PORT`): loopback:3000 unless configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiConfig {
    pub enabled: bool,
    pub host: IpAddr,
    pub port: u16,
}

impl Config {
    /// Reads `.env` (if present in the working directory), the process environment and the config
    /// file named by `cli_path` or `EKAI_CONFIG`.
    pub fn load(cli_path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = HashMap::new();
        if let Ok(iter) = dotenvy::from_filename_iter(".env") {
            for (k, v) in iter.flatten() {
                env.insert(k, v);
            }
        }
        // The process environment wins over .env, as with every dotenv loader.
        #[allow(clippy::disallowed_methods)] // this is the one place that reads it
        env.extend(std::env::vars());
        let path = cli_path
            .map(Path::to_path_buf)
            .or_else(|| env.get("EKAI_CONFIG").map(PathBuf::from));
        let text = match &path {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        Self::from_sources(&env, path.as_deref(), text.as_deref())
    }

    /// Pure construction from an environment snapshot and the file's text (testable).
    pub fn from_sources(
        env: &HashMap<String, String>,
        path: Option<&Path>,
        file_text: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = match file_text {
            Some(text) => parse_file(text).map_err(|message| ConfigError::Parse {
                path: path.map(Path::to_path_buf).unwrap_or_default(),
                message,
            })?,
            None => RawConfig::default(),
        };
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());

        let host_text = get("HOST")
            .map(str::to_string)
            .or(raw.server.host.clone())
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let host = resolve_host(&host_text)?;
        let port = match get("PORT") {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| ConfigError::Invalid(format!("PORT={p:?} is not a port number")))?,
            None => raw.server.port.unwrap_or(3001),
        };
        let body_limit_mb = raw.server.body_limit_mb.unwrap_or(32);
        if body_limit_mb == 0 {
            return Err(ConfigError::Invalid(
                "server.body_limit_mb must be at least 1".into(),
            ));
        }
        let ms = |v: Option<u64>, default: u64| Duration::from_millis(v.unwrap_or(default));
        let timeouts = Timeouts {
            connect: ms(raw.timeouts.connect_ms, 10_000),
            first_byte: ms(raw.timeouts.first_byte_ms, 600_000),
            idle: ms(raw.timeouts.idle_ms, 300_000),
            keepalive: ms(raw.timeouts.keepalive_ms, 15_000),
        };

        let routing = build_routing(raw.routing)?;
        let d = BreakerSettings::default();
        let h = raw.health;
        let breaker = BreakerSettings {
            consecutive_failures: h
                .consecutive_failures
                .unwrap_or(d.consecutive_failures)
                .max(1),
            error_ratio: h.error_ratio.unwrap_or(d.error_ratio),
            min_requests: h.min_requests.unwrap_or(d.min_requests).max(1),
            window: h.window_ms.map(Duration::from_millis).unwrap_or(d.window),
            cooldown: h
                .cooldown_ms
                .map(Duration::from_millis)
                .unwrap_or(d.cooldown),
        };
        if !(0.0..=1.0).contains(&breaker.error_ratio) || breaker.error_ratio == 0.0 {
            return Err(ConfigError::Invalid(
                "health.error_ratio must be in (0, 1]".into(),
            ));
        }
        let model_overrides = model_overrides(raw.models)?;

        let mut providers = Vec::new();
        let mut file_providers = raw.providers;
        for kind in ProviderKind::built_in() {
            let in_file = file_providers.remove(kind.name());
            let declared = in_file.is_some();
            let over = in_file.unwrap_or_default();
            if over.enabled == Some(false) {
                continue;
            }
            let mut p = build_provider(kind.name(), kind, over, &get)?;
            p.declared |= declared;
            providers.push(p);
        }
        for (name, over) in file_providers {
            if over.enabled == Some(false) {
                continue;
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                return Err(ConfigError::Invalid(format!(
                    "providers.{name}: provider names use lower-case letters, digits, '-' and '_'"
                )));
            }
            let mut p = build_provider(&name, ProviderKind::Compatible, over, &get)?;
            p.declared = true;
            providers.push(p);
        }

        let ledger = build_ledger(&raw.ledger, get("DATABASE_URL"))?;
        let ui = UiConfig {
            enabled: raw.ui.enabled.unwrap_or(true),
            host: match &raw.ui.host {
                Some(h) => resolve_host(h).map_err(|_| {
                    ConfigError::Invalid(format!("ui.host={h:?} is not an IP address"))
                })?,
                None => IpAddr::from([127, 0, 0, 1]),
            },
            port: match get("UI_PORT") {
                Some(p) => p.parse::<u16>().map_err(|_| {
                    ConfigError::Invalid(format!("UI_PORT={p:?} is not a port number"))
                })?,
                None => raw.ui.port.unwrap_or(3000),
            },
        };
        let auth = build_auth(&raw.auth, &get, host, ledger.is_some())?;
        let rofl = sapphire::build_rofl(&get)?;
        let sapphire = sapphire::build_sapphire(&raw.sapphire, &get, ledger.is_some())?;
        if sapphire.is_some() {
            for p in &mut providers {
                p.sealed_keys = true;
            }
        }
        let cors_origins = cors_origins(raw.server.cors_origins.as_ref(), &get)?;
        let x402 = build_x402(&raw.x402, &get)?;
        let mut routing = routing;
        routing.x402_only = x402.enabled() && x402.mode == X402Mode::X402Only;
        if x402.enabled() {
            if providers.iter().any(|p: &ProviderConfig| p.name == "x402") {
                return Err(ConfigError::Invalid(
                    "providers.x402: the name \"x402\" is the x402 relay's; name this provider otherwise".into(),
                ));
            }
            providers.push(ProviderConfig {
                name: "x402".into(),
                kind: ProviderKind::X402,
                // Its primary dialect; it also speaks Anthropic Messages (`Provider::dialect_for`).
                dialect: Dialect::OpenAiChat,
                base_url: x402.base_url.clone(),
                api_key: None,
                key_env: x402.wallet_env.to_string(),
                models: Vec::new(),
                // Paid per request from the wallet, never with a caller's sealed key.
                sealed_keys: false,
                declared: true,
                azure: None,
            });
        }

        Ok(Config {
            host,
            port,
            body_limit: usize::try_from(body_limit_mb.saturating_mul(1024 * 1024))
                .unwrap_or(usize::MAX),
            timeouts,
            routing,
            breaker,
            providers,
            log_filter: get("RUST_LOG").unwrap_or("info").to_string(),
            config_file: path.map(Path::to_path_buf),
            model_overrides,
            ledger,
            ui,
            cors_origins,
            auth,
            rofl,
            sapphire,
            x402,
        })
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }
}

fn build_routing(raw: raw::RawRouting) -> Result<Routing, ConfigError> {
    let strategy = match raw.strategy.as_deref() {
        None => Strategy::Cost,
        Some(s) => Strategy::parse(s).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "routing.strategy: unknown strategy {s:?} (use \"cost\", \"latency\" or \"priority\")"
            ))
        })?,
    };
    let rules = match raw.rules {
        // The original gateway sends Grok models to xAI first, whatever the price elsewhere.
        None => vec![RouteRule {
            model: "grok-*".into(),
            provider: "xai".into(),
        }],
        Some(rules) => rules
            .into_iter()
            .map(|r| RouteRule {
                model: r.model,
                provider: r.provider,
            })
            .collect(),
    };
    Ok(Routing {
        strategy,
        max_attempts: raw.max_attempts.unwrap_or(3).max(1),
        deadline: Duration::from_millis(raw.deadline_ms.unwrap_or(900_000)),
        typical_output_tokens: raw.typical_output_tokens.unwrap_or(1024),
        rules,
        x402_only: false,
    })
}

fn build_ledger(
    raw: &raw::RawLedger,
    env_url: Option<&str>,
) -> Result<Option<LedgerConfig>, ConfigError> {
    let (url, source) = match env_url {
        Some(u) => (u.to_string(), "DATABASE_URL"),
        None => (
            raw.database_url
                .clone()
                .unwrap_or_else(|| "sqlite://data/usage.db".to_string()),
            "ledger.database_url",
        ),
    };
    if matches!(url.to_ascii_lowercase().as_str(), "none" | "off") {
        return Ok(None);
    }
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        return Err(ConfigError::Invalid(format!(
            "{source} must be sqlite://PATH, postgres://… or none (got a URL with another scheme)"
        )));
    }
    let mut c = LedgerConfig::with_url(url);
    if let Some(n) = raw.queue_size {
        if n == 0 {
            return Err(ConfigError::Invalid(
                "ledger.queue_size must be at least 1".into(),
            ));
        }
        c.queue_size = n;
    }
    if let Some(n) = raw.batch_size {
        if !(1..=10_000).contains(&n) {
            return Err(ConfigError::Invalid(
                "ledger.batch_size must be between 1 and 10000".into(),
            ));
        }
        c.batch_size = n;
    }
    if let Some(ms) = raw.flush_ms {
        if !(1..=60_000).contains(&ms) {
            return Err(ConfigError::Invalid(
                "ledger.flush_ms must be between 1 and 60000".into(),
            ));
        }
        c.flush = Duration::from_millis(ms);
    }
    c.on_full = match raw.on_full.as_deref() {
        None | Some("block") => OnFull::Block,
        Some("drop") => OnFull::Drop,
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "ledger.on_full: unknown policy {other:?} (use \"block\" or \"drop\")"
            )));
        }
    };
    Ok(Some(c))
}

fn build_auth<'a>(
    raw: &raw::RawAuth,
    get: &impl Fn(&str) -> Option<&'a str>,
    host: IpAddr,
    has_ledger: bool,
) -> Result<AuthConfig, ConfigError> {
    let mode = match get("EKAI_AUTH_MODE").or(raw.mode.as_deref()) {
        None => AuthMode::Auto,
        Some("open") => AuthMode::Open,
        Some("keys") => AuthMode::Keys,
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "auth.mode: unknown mode {other:?} (use \"open\" or \"keys\")"
            )));
        }
    };
    let allow_open_on_public = raw.allow_open_on_public.unwrap_or(false);
    let master_key = get("EKAI_MASTER_KEY").map(Secret::new);
    if master_key
        .as_ref()
        .is_some_and(|k| k.expose().chars().count() < MASTER_KEY_MIN_LEN)
    {
        return Err(ConfigError::Invalid(format!(
            "EKAI_MASTER_KEY must be at least {MASTER_KEY_MIN_LEN} characters (e.g. `openssl rand -base64 48`)"
        )));
    }
    if mode == AuthMode::Keys {
        if master_key.is_none() {
            return Err(ConfigError::Invalid(
                "auth.mode = \"keys\" needs EKAI_MASTER_KEY (32+ characters): client keys are hashed with it".into(),
            ));
        }
        if !has_ledger {
            return Err(ConfigError::Invalid(
                "auth.mode = \"keys\" needs the ledger database (clients are stored there): set DATABASE_URL".into(),
            ));
        }
    }
    if mode == AuthMode::Open && !host.is_loopback() && !allow_open_on_public {
        return Err(open_on_public(host));
    }
    Ok(AuthConfig {
        mode,
        allow_open_on_public,
        admin_token: get("EKAI_ADMIN_TOKEN").map(Secret::new),
        master_key,
        redis_url: get("REDIS_URL")
            .or(raw.redis_url.as_deref())
            .filter(|u| !u.trim().is_empty())
            .map(|u| Secret::new(u.trim())),
        login_attempts_per_minute: raw
            .login_attempts_per_minute
            .unwrap_or(DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE),
    })
}

fn build_x402<'a>(
    raw: &raw::RawX402,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<X402Config, ConfigError> {
    use rust_decimal::Decimal;
    let mut c = X402Config::off();
    // The more specific name wins when both are set.
    let (wallet, env) = match (get("EKAI_X402_PRIVATE_KEY"), get("PRIVATE_KEY")) {
        (Some(k), _) => (Some(k), "EKAI_X402_PRIVATE_KEY"),
        (None, Some(k)) => (Some(k), "PRIVATE_KEY"),
        (None, None) => (None, "PRIVATE_KEY"),
    };
    if let Some(k) = wallet {
        let hex = k.strip_prefix("0x").unwrap_or(k);
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            // Never echo the value: it is (or resembles) a private key.
            return Err(ConfigError::Invalid(format!(
                "{env} must be a wallet private key: 64 hex digits, optionally prefixed with 0x"
            )));
        }
    }
    c.wallet = wallet.map(Secret::new);
    c.wallet_env = env;
    let (mode_text, mode_src) = match get("X402_MODE") {
        Some(m) => (Some(m), "X402_MODE"),
        None => (raw.mode.as_deref(), "x402.mode"),
    };
    c.mode = match mode_text.map(|m| m.trim().to_ascii_lowercase()).as_deref() {
        None => {
            if c.wallet.is_some() {
                X402Mode::Hybrid
            } else {
                X402Mode::Byok
            }
        }
        Some("byok") => X402Mode::Byok,
        Some("hybrid") => X402Mode::Hybrid,
        Some("x402-only" | "x402_only" | "x402") => X402Mode::X402Only,
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "{mode_src}: unknown mode {other:?} (use \"byok\", \"hybrid\" or \"x402-only\")"
            )));
        }
    };
    if c.mode != X402Mode::Byok && c.wallet.is_none() {
        return Err(ConfigError::Invalid(format!(
            "{mode_src} = {:?} pays from a wallet: set PRIVATE_KEY (or EKAI_X402_PRIVATE_KEY) to its private key",
            c.mode.as_str()
        )));
    }
    if let Some(u) = get("X402_BASE_URL").or(raw.base_url.as_deref()) {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "X402_BASE_URL / x402.base_url must start with http:// or https:// (got {u:?})"
            )));
        }
        c.base_url = u.trim_end_matches('/').to_string();
    }
    if let Some(nets) = &raw.networks {
        c.chain_ids = nets
            .iter()
            .map(|n| {
                x402_chain_id(n.trim()).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "x402.networks: unknown network {n:?} (use \"base\", \"base-sepolia\" or \"eip155:<chain id>\")"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(assets) = &raw.assets {
        c.assets = Vec::new();
        for a in assets {
            let hex = a.trim().strip_prefix("0x").unwrap_or("");
            if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ConfigError::Invalid(format!(
                    "x402.assets: {a:?} is not a token contract address (0x and 40 hex digits)"
                )));
            }
            c.assets.push(a.trim().to_ascii_lowercase());
        }
    }
    let usd = |v: Option<Decimal>, key: &str, default: Decimal| -> Result<Decimal, ConfigError> {
        match v {
            Some(d) if d.is_sign_negative() => Err(ConfigError::Invalid(format!(
                "x402.{key} must not be negative"
            ))),
            Some(d) => Ok(d),
            None => Ok(default),
        }
    };
    c.max_per_request = usd(
        raw.max_per_request_usd,
        "max_per_request_usd",
        c.max_per_request,
    )?;
    let cap = |v: Decimal| (!v.is_zero()).then_some(v);
    c.max_per_day = cap(usd(
        raw.max_per_day_usd,
        "max_per_day_usd",
        c.max_per_day.unwrap_or_default(),
    )?);
    c.max_per_month = cap(usd(
        raw.max_per_month_usd,
        "max_per_month_usd",
        c.max_per_month.unwrap_or_default(),
    )?);
    c.estimate_tolerance = usd(
        raw.estimate_tolerance,
        "estimate_tolerance",
        c.estimate_tolerance,
    )?;
    c.min_charge = usd(raw.min_charge_usd, "min_charge_usd", c.min_charge)?;
    Ok(c)
}

/// Refusing to serve without keys on an address others can reach.
pub fn open_on_public(host: IpAddr) -> ConfigError {
    ConfigError::Invalid(format!(
        "refusing to start in open mode (no client keys) on the non-loopback address {host}: anyone who can reach it could spend your provider credit. \
         Either set `[auth] mode = \"keys\"` (with EKAI_MASTER_KEY and EKAI_ADMIN_TOKEN, then create keys with POST /admin/clients), \
         bind to 127.0.0.1 (HOST=127.0.0.1), or set `[auth] allow_open_on_public = true` to accept the risk"
    ))
}

fn parse_file(text: &str) -> Result<RawConfig, String> {
    let de = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // toml's own message starts with a line/column excerpt; keep only its last line (the reason).
        let reason = inner.message().trim().to_string();
        if path == "." || path.is_empty() {
            reason
        } else {
            format!("{path}: {reason}")
        }
    })
}

fn model_overrides(
    raw: Vec<raw::RawModelOverride>,
) -> Result<Vec<crate::catalog::ModelEntry>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let at = format!("models[{i}] (id {:?})", m.id);
            if m.provider.trim().is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{at}: provider must not be empty"
                )));
            }
            let provider = m.provider.clone();
            crate::catalog::RawModel {
                id: m.id,
                upstream: m.upstream,
                aliases: m.aliases,
                price: m.price,
                context_window: m.context_window,
                max_output: m.max_output,
                capabilities: m.capabilities,
            }
            .into_entry(&provider)
            .map_err(|reason| ConfigError::Invalid(format!("{at}: {reason}")))
        })
        .collect()
}

fn resolve_host(text: &str) -> Result<IpAddr, ConfigError> {
    if text == "localhost" {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    text.parse().map_err(|_| {
        ConfigError::Invalid(format!(
            "HOST={text:?} is not an IP address (use 127.0.0.1, 0.0.0.0 or ::)"
        ))
    })
}

fn env_name(provider: &str) -> String {
    provider
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn build_provider<'a>(
    name: &str,
    kind: ProviderKind,
    over: RawProvider,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<ProviderConfig, ConfigError> {
    let base_env = format!("EKAI_{}_BASE_URL", env_name(name));
    let from_env = get(&base_env)
        .map(str::to_string)
        .or_else(|| kind.base_env().and_then(get).map(str::to_string));
    let declared = from_env.is_some();
    let mut base_url = from_env
        .or(over.base_url)
        .unwrap_or_else(|| kind.default_base_url().to_string())
        .trim_end_matches('/')
        .to_string();
    match kind {
        // OLLAMA_BASE_URL names the server root (as the original gateway used it); the
        // OpenAI-compatible API is under /v1.
        ProviderKind::Preset(Preset::Ollama) if !base_url.ends_with("/v1") => {
            base_url.push_str("/v1")
        }
        // The endpoint is the resource root; `…/openai` (as some portals show it) is accepted too.
        ProviderKind::Azure => {
            if let Some(root) = base_url.strip_suffix("/openai") {
                base_url = root.to_string();
            }
        }
        _ => {}
    }
    // Azure has no default endpoint: without one it is simply not configured.
    if base_url.is_empty() && kind != ProviderKind::Azure {
        return Err(ConfigError::Invalid(format!(
            "providers.{name}.base_url is required (or set {base_env})"
        )));
    }
    let scheme_ok = base_url.starts_with("http://") || base_url.starts_with("https://");
    if !base_url.is_empty() && !scheme_ok {
        return Err(ConfigError::Invalid(format!(
            "providers.{name}.base_url must start with http:// or https:// (got {base_url:?})"
        )));
    }
    let key_envs: Vec<String> = match &over.api_key_env {
        Some(e) => vec![e.clone()],
        None if kind == ProviderKind::Compatible => vec![format!("{}_API_KEY", env_name(name))],
        None => kind.key_envs().iter().map(|s| s.to_string()).collect(),
    };
    let api_key = key_envs.iter().find_map(|e| get(e)).map(Secret::new);
    let dialect = match over.dialect.as_deref() {
        None => kind.dialect(),
        Some("openai_chat" | "openai") => Dialect::OpenAiChat,
        Some("anthropic") => Dialect::Anthropic,
        Some("gemini") => Dialect::Gemini,
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "providers.{name}.dialect: unknown dialect {other:?} (use \"openai_chat\", \"anthropic\" or \"gemini\")"
            )));
        }
    };
    let azure = if kind == ProviderKind::Azure {
        let api_version = get("AZURE_OPENAI_API_VERSION")
            // The openai SDKs' Azure clients read OPENAI_API_VERSION.
            .or_else(|| get("OPENAI_API_VERSION"))
            .map(str::to_string)
            .or(over.api_version)
            .unwrap_or_else(|| AZURE_DEFAULT_API_VERSION.to_string());
        let deployments = over.deployments.unwrap_or_default();
        if let Some((model, _)) = deployments
            .iter()
            .find(|(m, d)| m.trim().is_empty() || d.trim().is_empty())
        {
            return Err(ConfigError::Invalid(format!(
                "providers.{name}.deployments: model {model:?} needs a non-empty deployment name"
            )));
        }
        Some(AzureSettings {
            api_version,
            deployments,
        })
    } else {
        if over.api_version.is_some() || over.deployments.is_some() {
            return Err(ConfigError::Invalid(format!(
                "providers.{name}: api_version and deployments apply only to providers.azure"
            )));
        }
        None
    };
    let mut models = over.models.unwrap_or_default();
    if let Some(a) = &azure {
        // A deployment is a declaration that the model is served here.
        for m in a.deployments.keys() {
            if !models.contains(m) {
                models.push(m.clone());
            }
        }
    }
    Ok(ProviderConfig {
        name: name.to_string(),
        kind,
        dialect,
        base_url,
        api_key,
        key_env: key_envs.first().cloned().unwrap_or_default(),
        models,
        declared,
        azure,
        sealed_keys: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn zero_config_listens_on_loopback_3001_with_no_configured_provider() {
        let c = Config::from_sources(&env(&[]), None, None).unwrap();
        assert_eq!(c.port, 3001);
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!(c.body_limit, 32 * 1024 * 1024);
        assert!(c.providers.iter().all(|p| !p.is_configured()));
    }

    #[test]
    fn keys_and_base_url_overrides_come_from_env() {
        let c = Config::from_sources(
            &env(&[
                ("OPENAI_API_KEY", "sk-1"),
                ("EKAI_OPENAI_BASE_URL", "http://127.0.0.1:9/v1/"),
                ("OPENAI_BASE_URL", "http://ignored"),
                ("PORT", "4000"),
            ]),
            None,
            None,
        )
        .unwrap();
        let p = c.provider("openai").unwrap();
        assert_eq!(p.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(p.api_key.as_ref().unwrap().expose(), "sk-1");
        assert_eq!(c.port, 4000);
    }

    #[test]
    fn file_declares_compatible_providers() {
        let text = r#"
            [server]
            body_limit_mb = 1
            [providers.together]
            base_url = "https://api.together.xyz/v1"
            api_key_env = "TOGETHER_KEY"
            models = ["meta-llama/Llama-3.3-70B-Instruct-Turbo"]
        "#;
        let c = Config::from_sources(&env(&[("TOGETHER_KEY", "t")]), None, Some(text)).unwrap();
        let p = c.provider("together").unwrap();
        // `together` is a preset: the file adjusts it.
        assert_eq!(p.kind, ProviderKind::Preset(Preset::Together));
        assert_eq!(p.dialect, Dialect::OpenAiChat);
        assert_eq!(p.models.len(), 1);
        assert!(p.is_configured());
        assert_eq!(c.body_limit, 1024 * 1024);
        let text = "[providers.my-vllm]\nbase_url = \"http://10.0.0.2:8000/v1\"\n";
        let c = Config::from_sources(&env(&[]), None, Some(text)).unwrap();
        let p = c.provider("my-vllm").unwrap();
        assert_eq!(p.kind, ProviderKind::Compatible);
        assert!(p.is_configured());
    }

    #[test]
    fn presets_resolve_from_env() {
        let c = Config::from_sources(&env(&[]), None, None).unwrap();
        for preset in Preset::ALL {
            let p = c.provider(preset.name()).unwrap();
            assert_eq!(p.kind, ProviderKind::Preset(preset));
            assert!(!p.is_configured(), "{} configured with nothing set", p.name);
        }
        assert_eq!(
            c.provider("ollama").unwrap().base_url,
            "http://localhost:11434/v1"
        );
        let c = Config::from_sources(
            &env(&[
                ("MISTRAL_API_KEY", "m"),
                ("GROQ_API_KEY", "g"),
                ("DEEPSEEK_API_KEY", "d"),
                ("TOGETHER_API_KEY", "t"),
                ("PPLX_API_KEY", "p"),
                ("CO_API_KEY", "c"),
                ("ZAI_API_KEY", "z"),
                ("OLLAMA_BASE_URL", "http://127.0.0.1:11434/"),
                ("EKAI_VLLM_BASE_URL", "http://127.0.0.1:9000/v1"),
            ]),
            None,
            None,
        )
        .unwrap();
        let expect = [
            ("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
            ("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
            (
                "deepseek",
                "https://api.deepseek.com/v1",
                "DEEPSEEK_API_KEY",
            ),
            (
                "together",
                "https://api.together.xyz/v1",
                "TOGETHER_API_KEY",
            ),
            (
                "perplexity",
                "https://api.perplexity.ai",
                "PERPLEXITY_API_KEY",
            ),
            (
                "cohere",
                "https://api.cohere.ai/compatibility/v1",
                "COHERE_API_KEY",
            ),
            ("zai", "https://api.z.ai/api/paas/v4", "ZAI_API_KEY"),
        ];
        for (name, base, key_env) in expect {
            let p = c.provider(name).unwrap();
            assert_eq!((p.base_url.as_str(), p.key_env.as_str()), (base, key_env));
            assert!(p.is_configured() && p.api_key.is_some(), "{name}");
        }
        // Local servers need no key: pointing the gateway at them is enough.
        let ollama = c.provider("ollama").unwrap();
        assert_eq!(ollama.base_url, "http://127.0.0.1:11434/v1");
        assert!(ollama.is_configured() && ollama.api_key.is_none());
        let vllm = c.provider("vllm").unwrap();
        assert_eq!(vllm.base_url, "http://127.0.0.1:9000/v1");
        assert!(vllm.is_configured());
        assert!(!c.provider("lmstudio").unwrap().is_configured());
        let c = Config::from_sources(&env(&[]), None, Some("[providers.lmstudio]\n")).unwrap();
        let lm = c.provider("lmstudio").unwrap();
        assert!(lm.is_configured());
        assert_eq!(lm.base_url, "http://localhost:1234/v1");
    }

    #[test]
    fn azure_endpoint_key_version_and_deployments() {
        let c = Config::from_sources(&env(&[("AZURE_OPENAI_API_KEY", "az")]), None, None).unwrap();
        let a = c.provider("azure").unwrap();
        // A key without an endpoint is not enough.
        assert!(!a.is_configured());
        let c = Config::from_sources(
            &env(&[
                ("AZURE_OPENAI_API_KEY", "az"),
                (
                    "AZURE_OPENAI_ENDPOINT",
                    "https://res.openai.azure.com/openai/",
                ),
                ("OPENAI_API_VERSION", "2025-01-01-preview"),
            ]),
            None,
            None,
        )
        .unwrap();
        let a = c.provider("azure").unwrap();
        assert!(a.is_configured());
        assert_eq!(a.base_url, "https://res.openai.azure.com");
        let s = a.azure.as_ref().unwrap();
        assert_eq!(s.api_version, "2025-01-01-preview");
        assert!(s.deployments.is_empty());
        let text = r#"
            [providers.azure]
            base_url = "https://res2.openai.azure.com"
            api_version = "2024-06-01"
            deployments = { "gpt-4o" = "prod-4o", "text-embedding-3-small" = "emb" }
        "#;
        let c = Config::from_sources(&env(&[("AZURE_OPENAI_API_KEY", "az")]), None, Some(text))
            .unwrap();
        let a = c.provider("azure").unwrap();
        let s = a.azure.as_ref().unwrap();
        assert_eq!(s.api_version, "2024-06-01");
        assert_eq!(
            s.deployments.get("gpt-4o").map(String::as_str),
            Some("prod-4o")
        );
        assert!(a.models.contains(&"text-embedding-3-small".to_string()));
        let c = Config::from_sources(&env(&[]), None, None).unwrap();
        assert_eq!(
            c.provider("azure")
                .unwrap()
                .azure
                .as_ref()
                .unwrap()
                .api_version,
            AZURE_DEFAULT_API_VERSION
        );
        let e = Config::from_sources(
            &env(&[]),
            None,
            Some("[providers.mistral]\ndeployments = { a = \"b\" }\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("providers.mistral"), "{e}");
        let e = Config::from_sources(
            &env(&[]),
            None,
            Some("[providers.azure]\ndeployments = { a = \"\" }\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("deployments"), "{e}");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_path() {
        let text = "[providers.together]\nbase_ur = \"x\"\n";
        let err = Config::from_sources(&env(&[]), Some(Path::new("g.toml")), Some(text))
            .unwrap_err()
            .to_string();
        assert!(err.contains("providers.together"), "{err}");
        assert!(err.contains("base_ur"), "{err}");
    }

    #[test]
    fn ui_listener_defaults_env_and_file() {
        let c = Config::from_sources(&env(&[]), None, None).unwrap();
        assert_eq!(c.ui.port, 3000);
        assert!(c.ui.enabled);
        assert_eq!(c.ui.host.to_string(), "127.0.0.1");
        assert!(c.auth.admin_token.is_none());
        let text = "[ui]\nport = 4100\nenabled = false\nhost = \"::1\"\n";
        let c = Config::from_sources(&env(&[]), None, Some(text)).unwrap();
        assert_eq!((c.ui.port, c.ui.enabled), (4100, false));
        assert_eq!(c.ui.host.to_string(), "::1");
        let c = Config::from_sources(
            &env(&[("UI_PORT", "4200"), ("EKAI_ADMIN_TOKEN", "tok")]),
            None,
            Some(text),
        )
        .unwrap();
        assert_eq!(c.ui.port, 4200);
        assert_eq!(
            c.auth.admin_token.map(|t| t.expose().to_string()),
            Some("tok".into())
        );
        let e = Config::from_sources(&env(&[("UI_PORT", "x")]), None, None).unwrap_err();
        assert!(e.to_string().contains("UI_PORT"));
    }

    #[test]
    fn bad_port_and_host_are_named() {
        let e = Config::from_sources(&env(&[("PORT", "x")]), None, None).unwrap_err();
        assert!(e.to_string().contains("PORT"));
        let e = Config::from_sources(&env(&[("HOST", "nope")]), None, None).unwrap_err();
        assert!(e.to_string().contains("HOST"));
    }

    #[test]
    fn ledger_defaults_env_override_and_validation() {
        let c = Config::from_sources(&env(&[]), None, None).unwrap();
        let l = c.ledger.unwrap();
        assert_eq!(l.database_url, "sqlite://data/usage.db");
        assert_eq!(l.on_full, OnFull::Block);
        let c = Config::from_sources(&env(&[("DATABASE_URL", "off")]), None, None).unwrap();
        assert!(c.ledger.is_none());
        let text = "[ledger]\ndatabase_url = \"postgres://u:pw@h/db\"\nqueue_size = 5\nflush_ms = 10\nbatch_size = 7\non_full = \"drop\"\n";
        let l = Config::from_sources(&env(&[]), None, Some(text))
            .unwrap()
            .ledger
            .unwrap();
        assert_eq!(
            (l.queue_size, l.batch_size, l.on_full),
            (5, 7, OnFull::Drop)
        );
        assert_eq!(l.flush, Duration::from_millis(10));
        assert_eq!(l.redacted_url(), "postgres://u:***@h/db");
        let e = Config::from_sources(&env(&[]), None, Some("[ledger]\non_full = \"wait\"\n"))
            .unwrap_err();
        assert!(e.to_string().contains("ledger.on_full"), "{e}");
        let e =
            Config::from_sources(&env(&[("DATABASE_URL", "mysql://x")]), None, None).unwrap_err();
        assert!(e.to_string().contains("DATABASE_URL"), "{e}");
    }

    #[test]
    fn auth_mode_master_key_and_public_open_mode() {
        let master = "m".repeat(32);
        let c = Config::from_sources(&env(&[]), None, None).unwrap();
        assert_eq!(c.auth.mode, AuthMode::Auto);
        assert!(c.auth.admin_token.is_none());
        let c = Config::from_sources(
            &env(&[("EKAI_MASTER_KEY", &master), ("EKAI_ADMIN_TOKEN", "adm")]),
            None,
            Some("[auth]\nmode = \"keys\"\n"),
        )
        .unwrap();
        assert_eq!(c.auth.mode, AuthMode::Keys);
        assert!(!format!("{c:?}").contains(&master));
        let e =
            Config::from_sources(&env(&[("EKAI_MASTER_KEY", "short")]), None, None).unwrap_err();
        assert!(e.to_string().contains("at least 32"), "{e}");
        let e = Config::from_sources(&env(&[("EKAI_AUTH_MODE", "keys")]), None, None).unwrap_err();
        assert!(e.to_string().contains("EKAI_MASTER_KEY"), "{e}");
        let e =
            Config::from_sources(&env(&[]), None, Some("[auth]\nmode = \"closed\"\n")).unwrap_err();
        assert!(e.to_string().contains("auth.mode"), "{e}");
        let e = Config::from_sources(
            &env(&[("HOST", "0.0.0.0")]),
            None,
            Some("[auth]\nmode = \"open\"\n"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("refusing to start in open mode"),
            "{e}"
        );
        let c = Config::from_sources(
            &env(&[("HOST", "0.0.0.0")]),
            None,
            Some("[auth]\nmode = \"open\"\nallow_open_on_public = true\n"),
        )
        .unwrap();
        assert!(c.auth.allow_open_on_public);
        let e = Config::from_sources(&env(&[]), None, Some("[auth]\nmodes = 1\n")).unwrap_err();
        assert!(e.to_string().contains("auth"), "{e}");
    }

    #[test]
    fn cors_origins_are_off_by_default_and_validated() {
        assert!(
            Config::from_sources(&env(&[]), None, None)
                .unwrap()
                .cors_origins
                .is_empty()
        );
        let c = Config::from_sources(
            &env(&[(
                "EKAI_CORS_ORIGINS",
                "https://app.example.com/, http://localhost:5173",
            )]),
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            c.cors_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        for bad in ["app.example.com", "https://a.com/path", "ftp://x"] {
            let e =
                Config::from_sources(&env(&[("EKAI_CORS_ORIGINS", bad)]), None, None).unwrap_err();
            assert!(e.to_string().contains("cors_origins"), "{bad}: {e}");
        }
    }

    #[test]
    fn x402_wallet_mode_and_spend_controls() {
        let key = format!("0x{}", "ab".repeat(32));
        let c = Config::from_sources(&env(&[]), None, None).unwrap();
        assert_eq!(c.x402.mode, X402Mode::Byok);
        assert!(c.provider("x402").is_none());
        let c = Config::from_sources(&env(&[("PRIVATE_KEY", &key)]), None, None).unwrap();
        assert_eq!(c.x402.mode, X402Mode::Hybrid);
        assert!(!c.routing.x402_only);
        let p = c.provider("x402").unwrap();
        assert_eq!(p.base_url, DEFAULT_X402_BASE_URL);
        assert!(p.is_configured() && p.api_key.is_none());
        assert_eq!(c.x402.max_per_request.to_string(), "0.10");
        assert!(!format!("{c:?}").contains(&"ab".repeat(32)));
        let text = "[x402]\nmode = \"x402-only\"\nnetworks = [\"eip155:31337\"]\nassets = [\"0x5FbDB2315678afecb367f032d93F642f64180aa3\"]\nmax_per_request_usd = \"0.5\"\nmax_per_day_usd = 0\n";
        let c = Config::from_sources(
            &env(&[
                ("EKAI_X402_PRIVATE_KEY", &key),
                ("X402_BASE_URL", "http://127.0.0.1:9/"),
            ]),
            None,
            Some(text),
        )
        .unwrap();
        assert!(c.routing.x402_only);
        assert_eq!(c.x402.chain_ids, vec![31337]);
        assert_eq!(
            c.x402.assets,
            vec!["0x5fbdb2315678afecb367f032d93f642f64180aa3"]
        );
        assert_eq!(c.x402.max_per_day, None);
        assert_eq!(c.provider("x402").unwrap().base_url, "http://127.0.0.1:9");
        let e = Config::from_sources(&env(&[("X402_MODE", "hybrid")]), None, None).unwrap_err();
        assert!(e.to_string().contains("PRIVATE_KEY"), "{e}");
        let e =
            Config::from_sources(&env(&[("PRIVATE_KEY", "secret-words")]), None, None).unwrap_err();
        assert!(!e.to_string().contains("secret-words"), "{e}");
        let e = Config::from_sources(&env(&[]), None, Some("[x402]\nnetworks = [\"solana\"]\n"))
            .unwrap_err();
        assert!(e.to_string().contains("x402.networks"), "{e}");
        let e = Config::from_sources(&env(&[]), None, Some("[x402]\nmax_per_dya_usd = 1\n"))
            .unwrap_err();
        assert!(e.to_string().contains("x402"), "{e}");
    }

    #[test]
    fn debug_output_hides_keys() {
        let c = Config::from_sources(&env(&[("ANTHROPIC_API_KEY", "sk-ant-secret")]), None, None)
            .unwrap();
        assert!(!format!("{c:?}").contains("sk-ant-secret"));
    }

    #[test]
    fn model_overrides_are_validated_and_unknown_keys_named() {
        let text = r#"
            [[models]]
            provider = "openrouter"
            id = "claude-sonnet-4-5"
            upstream = "anthropic/claude-sonnet-4.5"
            price = { input = "2.7", output = 13.5 }
            capabilities = ["tools"]
            [[models]]
            provider = "together"
            id = "llama-3.3-70b"
        "#;
        let c = Config::from_sources(&env(&[]), None, Some(text)).unwrap();
        assert_eq!(c.model_overrides.len(), 2);
        let m = &c.model_overrides[0];
        assert_eq!(m.provider, "openrouter");
        let price = m.price.as_ref().unwrap();
        assert_eq!(price.input.to_string(), "2.7");
        assert_eq!(price.output.to_string(), "13.5");
        assert!(m.capabilities.tools && !m.capabilities.vision);
        assert_eq!(c.model_overrides[1].upstream, "llama-3.3-70b");

        let bad_key = "[[models]]\nprovider = \"x\"\nid = \"m\"\ncontext = 1\n";
        let e = Config::from_sources(&env(&[]), Some(Path::new("g.toml")), Some(bad_key))
            .unwrap_err()
            .to_string();
        assert!(e.contains("models[0]") && e.contains("context"), "{e}");

        let bad_price = "[[models]]\nprovider = \"x\"\nid = \"m\"\nprice = { input = \"cheap\", output = \"1\" }\n";
        let e = Config::from_sources(&env(&[]), None, Some(bad_price))
            .unwrap_err()
            .to_string();
        assert!(e.contains("models[0].price.input"), "{e}");

        let no_provider = "[[models]]\nprovider = \" \"\nid = \"m\"\n";
        let e = Config::from_sources(&env(&[]), None, Some(no_provider))
            .unwrap_err()
            .to_string();
        assert!(e.contains("models[0]") && e.contains("provider"), "{e}");
    }
}
