//! Command line: `ekai-gateway [--config PATH] [serve|check|models]`.

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
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check => check(&config),
        Command::Models => models(&config),
        Command::Serve => {
            init_logging(&config.log_filter);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(crate::server::serve(config))
        }
    }
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
            (Some(_), _) => format!("key set ({})", p.key_env),
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
    if config.gemini_key_present {
        writeln!(
            out,
            "  gemini: key set, but the native Gemini provider is not available in this version"
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
        } else {
            format!("no key: set {}", p.key_env)
        };
        writeln!(out, "  {:<12} {state}", p.name)?;
    }
    writeln!(
        out,
        "  {:<12} {}",
        "gemini",
        if config.gemini_key_present {
            "key set, but the native Gemini provider is not available in this version"
        } else {
            "not available in this version"
        }
    )?;
    Ok(())
}
