//! `ekai-mock-provider [--host H] [--port N] [--api-key KEY]`: serves the mock until SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr};

use ekai_mock_provider::{MockConfig, spawn_on};

fn usage() -> anyhow::Error {
    anyhow::anyhow!("usage: ekai-mock-provider [--host HOST] [--port PORT] [--api-key KEY]")
}

fn parse_args() -> anyhow::Result<(SocketAddr, MockConfig)> {
    let mut host: IpAddr = IpAddr::from([127, 0, 0, 1]);
    let mut port: u16 = 0;
    let mut cfg = MockConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(usage);
        match flag.as_str() {
            "--host" => host = value()?.parse()?,
            "--port" => port = value()?.parse()?,
            "--api-key" => cfg.expected_key = Some(value()?),
            _ => return Err(usage()),
        }
    }
    Ok((SocketAddr::new(host, port), cfg))
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (addr, cfg) = parse_args()?;
    let handle = spawn_on(addr, cfg).await?;
    println!("listening on http://{}", handle.addr);
    terminated().await;
    handle.shutdown().await;
    Ok(())
}
