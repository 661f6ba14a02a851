//! Command line: `ekai-gateway [--config PATH] [serve|check]`.

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
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check => check(&config),
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
