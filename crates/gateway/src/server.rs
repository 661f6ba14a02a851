//! Builds the running gateway from a `Config` and serves it until SIGINT/SIGTERM.

use crate::accounting::{BroadcastSink, Sink};
use crate::api::{self, AppState};
use crate::clients::{Registry, TokenSink};
use crate::config::{AuthMode, Config};
use crate::ledger::Ledger;
use crate::providers::Provider;
use crate::proxy::Proxy;
use crate::router::Router;
use anyhow::Context;
use axum::serve::ListenerExt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The upstream HTTP client: one pool for every provider, rustls, HTTP/2 where the upstream offers
/// it by ALPN, Nagle off (see GUIDE: a delayed-ACK stall otherwise costs ~40 ms per request).
pub fn http_client(config: &Config) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default crypto provider; ring keeps the build free of C toolchains
    // beyond what `ring` itself needs. Installing twice (tests) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(config.timeouts.connect)
        .tcp_nodelay(true)
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        // A provider's 3xx is an answer, not a hop to follow: replaying a POST (and its key)
        // elsewhere is never what the client asked for.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ekai-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the upstream HTTP client")
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // SplitMix64 finaliser: spreads time and pid over all bits.
    let mut z = t ^ (u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn build_state(config: &Config) -> anyhow::Result<Arc<AppState>> {
    build_state_with(config, None)
}

/// Builds the state with the ledger as the proxy's sink (or the log sink when there is none).
pub fn build_state_with(config: &Config, ledger: Option<Ledger>) -> anyhow::Result<Arc<AppState>> {
    build_state_full(config, ledger, Arc::new(Registry::disabled()))
}

/// As [`build_state_with`], with the client registry (whose finished records count against each
/// client's token limits).
pub fn build_state_full(
    config: &Config,
    ledger: Option<Ledger>,
    clients: Arc<Registry>,
) -> anyhow::Result<Arc<AppState>> {
    build_state_sapphire(
        config,
        ledger,
        clients,
        Arc::new(crate::sapphire::Sapphire::disabled()),
    )
}

/// As [`build_state_full`], with the Sapphire state (key pair, control plane).
pub fn build_state_sapphire(
    config: &Config,
    ledger: Option<Ledger>,
    clients: Arc<Registry>,
    sapphire: Arc<crate::sapphire::Sapphire>,
) -> anyhow::Result<Arc<AppState>> {
    let providers = config
        .providers
        .iter()
        .cloned()
        .map(|p| Arc::new(Provider::new(p)))
        .collect();
    let id = seed();
    let catalog = crate::catalog::Catalog::embedded()
        .context("loading the model catalog")?
        .with_overrides(config.model_overrides.clone());
    let store: Arc<dyn Sink> = match &ledger {
        Some(l) => Arc::new(l.clone()),
        None => Arc::new(crate::accounting::LogSink),
    };
    // Finished records count against each client's token limits...
    let inner: Arc<dyn Sink> = Arc::new(TokenSink {
        inner: store,
        registry: Arc::clone(&clients),
    });
    // ...and also go to the dashboard's live feed; lagging subscribers skip.
    let sink = BroadcastSink::new(inner, LIVE_CAPACITY);
    let live = sink.sender();
    let proxy = Proxy {
        router: Router::new(
            providers,
            catalog,
            config.routing.clone(),
            config.breaker.clone(),
        ),
        client: http_client(config)?,
        timeouts: config.timeouts.clone(),
        instance_id: format!("{id:016x}"),
        sink: Arc::new(sink),
        budget: ledger
            .as_ref()
            .map(|l| Arc::new(l.budget().clone()) as Arc<dyn crate::accounting::Budget>),
        shared_budget: clients.gateway_shared_budget(),
        x402: x402_payer(config, ledger.as_ref())?,
        conversations: Default::default(),
    };
    Ok(Arc::new(
        AppState::new(proxy, config.body_limit, id)
            .with_ledger(ledger)
            .with_live(Some(live))
            .with_admin_token(config.auth.admin_token.clone())
            .with_login_limit(config.auth.login_attempts_per_minute)
            .with_cors(config.cors_origins.clone())
            .with_clients(clients)
            .with_sapphire(sapphire),
    ))
}

/// The wallet and its spend book (the ledger database, else memory) when x402 is on.
fn x402_payer(
    config: &Config,
    ledger: Option<&Ledger>,
) -> anyhow::Result<Option<Arc<crate::x402::Payer>>> {
    let cfg = &config.x402;
    let Some(key) = cfg.wallet.as_ref().filter(|_| cfg.enabled()) else {
        return Ok(None);
    };
    let wallet =
        crate::x402::Wallet::new(key).map_err(|m| anyhow::anyhow!("{}: {m}", cfg.wallet_env))?;
    let book: Arc<dyn crate::accounting::SpendBook> = match ledger {
        Some(l) => Arc::new(l.store().clone()),
        None => {
            tracing::warn!(
                "x402: no ledger database, so the daily and monthly spend limits are kept in memory and reset when the gateway restarts"
            );
            Arc::new(crate::x402::MemoryBook::new())
        }
    };
    tracing::info!(
        mode = cfg.mode.as_str(),
        relay = %cfg.base_url,
        wallet = %wallet.address(),
        "x402: paying per request from this wallet"
    );
    Ok(Some(Arc::new(crate::x402::Payer::new(
        wallet,
        cfg.clone(),
        book,
    ))))
}

pub fn log_providers(config: &Config) {
    let configured: Vec<&str> = config
        .providers
        .iter()
        .filter(|p| p.is_configured())
        .map(|p| p.name.as_str())
        .collect();
    if configured.is_empty() {
        tracing::warn!(
            "no provider is configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY, XAI_API_KEY or OPENROUTER_API_KEY in the environment or in .env, or declare a provider in a config file (--config); `ekai-gateway check` shows what is set"
        );
    } else {
        tracing::info!("providers configured: {}", configured.join(", "));
    }
}

/// Records a live subscriber may fall behind before it skips.
const LIVE_CAPACITY: usize = 1024;

/// How long the ledger may take to write what is still queued once the server has stopped.
const LEDGER_DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn open_ledger(config: &Config) -> anyhow::Result<Option<Ledger>> {
    let Some(cfg) = &config.ledger else {
        tracing::info!("usage ledger disabled (DATABASE_URL=none): usage is only logged");
        return Ok(None);
    };
    let ledger = Ledger::open(cfg)
        .await
        .with_context(|| format!("opening the usage ledger at {}", cfg.redacted_url()))?;
    tracing::info!(
        "usage ledger: {} ({})",
        cfg.redacted_url(),
        ledger.store().engine()
    );
    Ok(Some(ledger))
}

/// Loads the clients and decides the auth mode; refuses open mode on a public address.
pub async fn open_clients(
    config: &Config,
    ledger: Option<Ledger>,
) -> anyhow::Result<Arc<Registry>> {
    let auth = &config.auth;
    let reg = Registry::open(auth, ledger)
        .await
        .context("loading client keys")?;
    // Wallet clients (Sapphire mode) authenticate with session tokens, not hashed keys.
    if reg.keys_required()
        && reg.master_key().is_none()
        && reg.all().iter().any(|c| c.key_prefix != "wallet")
    {
        anyhow::bail!(
            "{} client key(s) exist in the database but EKAI_MASTER_KEY is not set: keys cannot be checked without it",
            reg.len()
        );
    }
    if !reg.keys_required() && !config.host.is_loopback() && !auth.allow_open_on_public {
        return Err(crate::config::open_on_public(config.host).into());
    }
    match (auth.mode, reg.keys_required()) {
        (_, true) => tracing::info!("auth: keys mode ({} client(s))", reg.len()),
        (AuthMode::Auto, false) => tracing::info!(
            "auth: open mode (no client key exists yet; the first one created switches to keys mode)"
        ),
        (_, false) => tracing::info!("auth: open mode"),
    }
    Ok(Arc::new(reg))
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let ledger = open_ledger(&config).await?;
    let clients = open_clients(&config, ledger.clone()).await?;
    let sapphire = Arc::new(
        crate::sapphire::Sapphire::open(
            &config.rofl,
            config.sapphire.as_ref(),
            http_client(&config)?,
        )
        .await
        .context("starting Sapphire mode")?,
    );
    sapphire.log_startup();
    let state = build_state_sapphire(&config, ledger.clone(), clients, Arc::clone(&sapphire))?;
    let outbox = start_receipt_sender(&config, &sapphire, ledger.as_ref(), &state)?;
    let app = api::router(Arc::clone(&state));
    let addr = std::net::SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    log_providers(&config);
    tracing::info!("listening on http://{local}");
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // The dashboard's own listener. Not being able to open it (port taken) is not fatal: the
    // dashboard stays reachable under /dashboard on the API port.
    let ui_listener = if config.ui.enabled {
        let ui_addr = std::net::SocketAddr::new(config.ui.host, config.ui.port);
        match tokio::net::TcpListener::bind(ui_addr).await {
            Ok(l) => {
                if let Ok(a) = l.local_addr() {
                    tracing::info!("dashboard on http://{a}/ (also http://{local}/dashboard)");
                }
                Some(l)
            }
            Err(e) => {
                tracing::warn!(
                    "dashboard: cannot listen on {ui_addr} ({e}); it is still served at http://{local}/dashboard"
                );
                None
            }
        }
    } else {
        None
    };
    // One signal stops both listeners and ends the open live streams (which would otherwise keep
    // graceful shutdown waiting).
    let signal = async {
        shutdown_signal().await;
        state.stopping.send_replace(true);
    };
    let api_server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(&state));
    let ui_server = async {
        match ui_listener {
            Some(l) => axum::serve(
                l,
                api::ui_router(Arc::clone(&state))
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(stopped(&state))
            .await
            .context("dashboard server error"),
            None => Ok(()),
        }
    };
    let (api_result, ui_result, ()) = tokio::join!(
        async { api_server.await.context("server error") },
        ui_server,
        signal
    );
    api_result?;
    ui_result?;
    if let Some(task) = outbox {
        // Unsent receipts stay in the outbox for the next start; the sender only stops polling.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    }
    if let Some(ledger) = ledger {
        tracing::info!(
            "draining the usage ledger (deadline {}s)",
            LEDGER_DRAIN_DEADLINE.as_secs()
        );
        let report = ledger.shutdown(LEDGER_DRAIN_DEADLINE).await;
        let c = report.counters;
        if report.drained {
            tracing::info!(
                written = c.written,
                dropped = c.dropped,
                failed = c.failed,
                "usage ledger drained"
            );
        } else {
            tracing::error!(
                written = c.written,
                queued = c.queued,
                "usage ledger did not drain before the deadline; queued records are lost"
            );
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Sapphire mode: the background task sending the outbox's receipts (None when not in Sapphire
/// mode or when this process cannot send them; they then wait in the outbox).
fn start_receipt_sender(
    config: &Config,
    sapphire: &crate::sapphire::Sapphire,
    ledger: Option<&Ledger>,
    state: &AppState,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let (Some(cfg), Some(ledger)) = (&config.sapphire, ledger) else {
        return Ok(None);
    };
    let rofl = if sapphire.key.inside_rofl {
        Some(crate::sapphire::rofl::RoflClient::new(&config.rofl.socket)?)
    } else {
        None
    };
    let Some(sender) = crate::sapphire::outbox::Sender::new(
        ledger.store().clone(),
        cfg,
        rofl,
        http_client(config)?,
    ) else {
        return Ok(None);
    };
    let stop = state.stopping.subscribe();
    #[allow(clippy::disallowed_methods)] // joined (with a deadline) after the listeners stop
    let task = tokio::spawn(sender.run(stop));
    Ok(Some(task))
}

/// Resolves once `state.stopping` is true.
fn stopped(state: &AppState) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = state.stopping.subscribe();
    async move {
        let _ = rx.wait_for(|v| *v).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
