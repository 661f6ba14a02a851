//! Command line: `ekai-gateway [--config PATH] [serve|check|models|usage [reprice]|keys …]`.

use crate::config::Config;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "ekai-gateway", version, about = "Self-hosted LLM API gateway")]
struct Cli {
    /// TOML config file (also EKAI_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Validate the configuration and print what is configured.
    Check,
    /// List the model catalog (with the config file's `[[models]]` applied) and which providers
    /// have credentials.
    Models,
    /// Print usage and cost from the ledger: `usage --since 7d --by model`.
    Usage {
        /// `7d`, `24h`, `30m` or an RFC 3339 timestamp (default 7d).
        #[arg(long, global = true)]
        since: Option<String>,
        /// Break the totals down by `model`, `provider` or `day`.
        #[arg(long)]
        by: Option<String>,
        #[command(subcommand)]
        action: Option<UsageAction>,
    },
    /// Manage client keys in the ledger database (the same operations as the admin API; a running
    /// gateway picks the changes up within seconds).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create a client; prints its key once.
    Create {
        #[arg(long)]
        name: String,
        /// Allowed models, comma-separated (exact names or `prefix*`); default any.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens per minute.
        #[arg(long)]
        tpm: Option<u64>,
        /// Tokens per day.
        #[arg(long)]
        tpd: Option<u64>,
        /// Monthly budget in USD.
        #[arg(long = "budget-month")]
        budget_month: Option<String>,
        /// Daily budget in USD (UTC days).
        #[arg(long = "budget-day")]
        budget_day: Option<String>,
    },
    /// List clients (key prefixes, never keys).
    List,
    /// Revoke a client's key at once.
    Revoke { id: String },
    /// Give a client a new key (printed once); the old one stops working.
    Rotate { id: String },
}

#[derive(Subcommand)]
enum UsageAction {
    /// Recompute the cost of stored rows from their token counts with the current prices.
    Reprice,
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check => check(&config),
        Command::Models => models(&config),
        Command::Serve => {
            init_logging(&config.log_filter);
            runtime()?.block_on(crate::server::serve(config))
        }
        Command::Keys { action } => runtime()?.block_on(keys(&config, action)),
        Command::Usage { since, by, action } => {
            let since_ms = parse_since(since.as_deref().unwrap_or("7d"))?;
            let rt = runtime()?;
            match action {
                None => rt.block_on(usage_report(&config, since_ms, by.as_deref())),
                Some(UsageAction::Reprice) => {
                    let catalog = crate::catalog::Catalog::embedded()?
                        .with_overrides(config.model_overrides.clone());
                    // Rows store the upstream id the provider was sent.
                    let price = |provider: &str, model: &str| {
                        catalog
                            .for_provider(provider)
                            .find(|e| {
                                e.upstream == model
                                    || e.id == model
                                    || e.aliases.iter().any(|a| a == model)
                            })
                            .and_then(|e| e.price.clone())
                    };
                    rt.block_on(usage_reprice(&config, since_ms, &price))
                }
            }
        }
    }
}

async fn keys(config: &Config, action: KeysAction) -> anyhow::Result<()> {
    use crate::clients::admin::{self, Changes};
    use crate::clients::limits::Limits;
    let store = open_store(config).await?;
    store.migrate().await?;
    let master = config.auth.master_key.as_ref();
    let need_master = || {
        master.ok_or_else(|| {
            anyhow::anyhow!("set EKAI_MASTER_KEY (32+ characters): client keys are hashed with it")
        })
    };
    let mut out = std::io::stdout().lock();
    match action {
        KeysAction::Create {
            name,
            models,
            rpm,
            tpm,
            tpd,
            budget_month,
            budget_day,
        } => {
            let usd = |flag: &str, v: Option<String>| -> anyhow::Result<_> {
                match v {
                    None => Ok(None),
                    Some(b) => Ok(Some(Some(b.parse::<serde_json::Number>().map_err(
                        |_| anyhow::anyhow!("{flag} {b:?}: a number of USD, e.g. 25 or 12.50"),
                    )?))),
                }
            };
            let budget = usd("--budget-month", budget_month)?;
            let budget_day = usd("--budget-day", budget_day)?;
            let changes = Changes {
                name: Some(name),
                model_preferences: (!models.is_empty()).then_some(models),
                limits: Some(Limits {
                    requests_per_minute: rpm,
                    tokens_per_minute: tpm,
                    tokens_per_day: tpd,
                    ..Limits::default()
                }),
                budget_usd: budget,
                budget_usd_day: budget_day,
                ..Changes::default()
            };
            let (c, key) = admin::create(&store, need_master()?, changes).await?;
            tracing::info!(target: "ekai::audit", client = %c.id, prefix = %c.key_prefix, "cli: client created");
            writeln!(out, "created client {} ({})", c.id, c.name)?;
            writeln!(out, "key (shown once, store it now): {key}")?;
        }
        KeysAction::List => {
            let clients = admin::list(&store, master).await?;
            if clients.is_empty() {
                writeln!(out, "no clients yet: ekai-gateway keys create --name NAME")?;
            }
            writeln!(
                out,
                "{:<22} {:<24} {:<10} {:<9} models",
                "id", "name", "key", "status"
            )?;
            for c in clients {
                let status = if c.revoked_at.is_some() {
                    "revoked"
                } else if c
                    .expires_at
                    .is_some_and(|t| t <= crate::ledger::time::now_ms())
                {
                    "expired"
                } else {
                    "active"
                };
                let models = if c.policy.model_preferences.is_empty() {
                    "any".to_string()
                } else {
                    c.policy.model_preferences.join(",")
                };
                writeln!(
                    out,
                    "{:<22} {:<24} {:<10} {:<9} {models}",
                    c.id,
                    c.name,
                    format!("{}…", c.key_prefix),
                    status
                )?;
            }
        }
        KeysAction::Revoke { id } => {
            let c = admin::revoke(&store, master, &id)
                .await
                .map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
            tracing::info!(target: "ekai::audit", client = %c.id, "cli: client revoked");
            writeln!(out, "revoked {} ({})", c.id, c.name)?;
        }
        KeysAction::Rotate { id } => {
            let (c, key) = admin::rotate(&store, need_master()?, &id)
                .await
                .map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
            tracing::info!(target: "ekai::audit", client = %c.id, prefix = %c.key_prefix, "cli: client key rotated");
            writeln!(out, "new key for {} ({}), shown once: {key}", c.id, c.name)?;
        }
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn parse_since(s: &str) -> anyhow::Result<i64> {
    use crate::ledger::time::{now_ms, parse_rfc3339, parse_span};
    parse_span(s)
        .map(|span| now_ms() - span)
        .or_else(|| parse_rfc3339(s))
        .ok_or_else(|| anyhow::anyhow!("--since {s:?}: use 7d, 24h, 30m or an RFC 3339 timestamp"))
}

async fn open_store(config: &Config) -> anyhow::Result<crate::ledger::Store> {
    let Some(l) = &config.ledger else {
        anyhow::bail!("the usage ledger is disabled (DATABASE_URL=none)");
    };
    crate::ledger::Store::open(&l.database_url)
        .await
        .with_context(|| format!("opening the usage ledger at {}", l.redacted_url()))
}

async fn usage_report(config: &Config, since_ms: i64, by: Option<&str>) -> anyhow::Result<()> {
    use crate::ledger::money::from_nano;
    use crate::ledger::query::{Filter, GroupBy};
    use crate::ledger::time::{format_rfc3339, now_ms};
    let group = match by {
        None => None,
        Some("model") => Some(GroupBy::Model),
        Some("provider") => Some(GroupBy::Provider),
        Some("day") => Some(GroupBy::Day),
        Some(other) => anyhow::bail!("--by {other:?}: use model, provider or day"),
    };
    let store = open_store(config).await?;
    let f = Filter {
        start_ms: since_ms,
        end_ms: now_ms(),
        ..Filter::default()
    };
    let mut rows = match group {
        Some(g) => store.aggregate(&f, Some(g)).await?,
        None => Vec::new(),
    };
    if group == Some(GroupBy::Day) {
        for (k, _) in &mut rows {
            if let Ok(ms) = k.parse::<i64>() {
                *k = format_rfc3339(ms)[..10].to_string();
            }
        }
    }
    let total = store
        .aggregate(&f, None)
        .await?
        .into_iter()
        .next()
        .map(|(_, t)| t)
        .unwrap_or_default();
    rows.push(("TOTAL".to_string(), total));
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "usage since {} ({})",
        format_rfc3339(f.start_ms),
        store.engine()
    )?;
    writeln!(
        out,
        "{:<40} {:>9} {:>7} {:>13} {:>13} {:>14} {:>9}",
        by.unwrap_or(""),
        "requests",
        "errors",
        "input tok",
        "output tok",
        "cost USD",
        "unpriced"
    )?;
    let n = rows.len();
    for (i, (k, t)) in rows.iter().enumerate() {
        if i + 1 == n && n > 1 {
            writeln!(out, "{}", "-".repeat(111))?;
        }
        writeln!(
            out,
            "{:<40} {:>9} {:>7} {:>13} {:>13} {:>14} {:>9}",
            if k.is_empty() { "(none)" } else { k },
            t.requests,
            t.errors,
            t.input_tokens,
            t.output_tokens,
            from_nano(t.cost.total).round_dp(6).to_string(),
            t.unpriced
        )?;
    }
    Ok(())
}

async fn usage_reprice(
    config: &Config,
    since_ms: i64,
    price: &dyn Fn(&str, &str) -> Option<crate::catalog::Price>,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let (examined, changed) = store
        .reprice(since_ms, crate::ledger::time::now_ms() + 1, price)
        .await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "repriced: {changed} of {examined} rows changed")?;
    Ok(())
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn check(config: &Config) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "configuration is valid")?;
    if let Some(p) = &config.config_file {
        writeln!(out, "config file: {}", p.display())?;
    }
    writeln!(out, "listen: http://{}:{}", config.host, config.port)?;
    writeln!(out, "body limit: {} MiB", config.body_limit / (1024 * 1024))?;
    writeln!(out, "providers:")?;
    for p in &config.providers {
        let state = match (&p.api_key, p.is_configured()) {
            _ if p.sealed_keys => "callers' sealed keys (Sapphire mode)".to_string(),
            (Some(_), true) => format!("key set ({})", p.key_env),
            // Azure: a key without an endpoint.
            (Some(_), false) => "not configured: set its endpoint (base_url)".to_string(),
            (None, true) => "no key needed".to_string(),
            (None, false) => format!("not configured: set {}", p.key_env),
        };
        writeln!(
            out,
            "  {:<12} {:<11} {:<40} {}",
            p.name,
            p.dialect.as_str(),
            p.base_url,
            state
        )?;
    }
    let x = &config.x402;
    if x.enabled() {
        let cap = |c: Option<rust_decimal::Decimal>| {
            c.map(|d| format!("{d} USD"))
                .unwrap_or_else(|| "no cap".into())
        };
        writeln!(
            out,
            "x402: {} via {} (wallet from {}); at most {} USD per request, {} per day, {} per month",
            x.mode.as_str(),
            x.base_url,
            x.wallet_env,
            x.max_per_request,
            cap(x.max_per_day),
            cap(x.max_per_month)
        )?;
    } else {
        writeln!(out, "x402: off (set PRIVATE_KEY to pay per request)")?;
    }
    if let Some(s) = &config.sapphire {
        writeln!(
            out,
            "sapphire: control plane 0x{} on chain {} via {}",
            alloy_primitives::hex::encode(s.control_plane),
            s.chain_id,
            s.rpc_url
        )?;
    }
    Ok(())
}

fn models(config: &Config) -> anyhow::Result<()> {
    let catalog =
        crate::catalog::Catalog::embedded()?.with_overrides(config.model_overrides.clone());
    // Group by model id, keeping the order in which each id first appears.
    let mut order: Vec<&str> = Vec::new();
    let mut groups: std::collections::HashMap<&str, Vec<&crate::catalog::ModelEntry>> =
        std::collections::HashMap::new();
    for e in catalog.entries() {
        let slot = groups.entry(e.id.as_str()).or_default();
        if slot.is_empty() {
            order.push(e.id.as_str());
        }
        slot.push(e);
    }
    let money = |v: Option<rust_decimal::Decimal>| {
        v.map_or_else(|| "-".to_string(), |d| d.normalize().to_string())
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<24} {:<11} {:<30} {:>9} {:>9} {:>10} {:>9}",
        "model", "provider", "upstream id", "input/1M", "output/1M", "cached/1M", "context"
    )?;
    for id in order {
        for (i, e) in groups.get(id).into_iter().flatten().enumerate() {
            let name = if i == 0 { e.id.as_str() } else { "" };
            let upstream = if e.upstream == e.id {
                ""
            } else {
                e.upstream.as_str()
            };
            let (input, output, cached) = match &e.price {
                Some(p) => (
                    money(Some(p.input)),
                    money(Some(p.output)),
                    money(p.cache_read),
                ),
                None => ("unpriced".to_string(), "-".to_string(), "-".to_string()),
            };
            let context = e
                .context_window
                .map_or_else(|| "-".to_string(), |c| c.to_string());
            writeln!(
                out,
                "{name:<24} {:<11} {upstream:<30} {input:>9} {output:>9} {cached:>10} {context:>9}",
                e.provider
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "credentials:")?;
    for p in &config.providers {
        let state = if p.is_configured() {
            "configured".to_string()
        } else if p.api_key.is_some() {
            "key set, but no endpoint (base_url)".to_string()
        } else {
            format!("no key: set {}", p.key_env)
        };
        writeln!(out, "  {:<12} {state}", p.name)?;
    }
    Ok(())
}
