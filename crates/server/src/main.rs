//! `sealpost-server`: the sync server.
//!
//! `sealpost-server --listen ADDR --data DIR` starts the embedded default (SQLite and a
//! software key file in DIR); `--config FILE` the full configuration (PostgreSQL, a
//! PKCS#11 HSM). `--tls-cert FILE --tls-key FILE` (or `[tls]` in the file) serve HTTPS;
//! without them the server speaks plain HTTP, meant for loopback or for a deployment
//! behind a TLS-terminating proxy. Logs are JSON lines on standard error and never
//! contain a secret.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use sealpost_server::config::{self, Config, TlsConfig};

/// The Sealpost sync server.
#[derive(Parser, Debug)]
#[command(name = "sealpost-server", version, about)]
struct Args {
    /// Address to listen on (overrides the configuration file).
    #[arg(long, env = "SEALPOST_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory for the embedded default (SQLite + software key file).
    #[arg(long, conflicts_with = "config")]
    data: Option<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Per-source rate limit of unauthenticated starts per second (0 disables).
    #[arg(long)]
    rate_per_second: Option<f64>,
    /// TLS certificate chain, PEM, leaf first (serve HTTPS; overrides `[tls]`).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// TLS private key, PEM.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Stop when standard input closes: the desktop app runs the embedded server as a
    /// child with a pipe there, so the server ends with the app however the app ends.
    #[arg(long)]
    stop_when_stdin_closes: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "sealpost-server stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = match (&args.config, &args.data) {
        (Some(file), _) => Config::from_file(file)?,
        (None, Some(dir)) => Config::embedded(dir, SocketAddr::from(([127, 0, 0, 1], 8443))),
        (None, None) => anyhow::bail!("give --data DIR (embedded default) or --config FILE"),
    };
    if let Some(listen) = args.listen {
        cfg.listen = listen;
    }
    if let Some(rate) = args.rate_per_second {
        cfg.limits.rate_per_second = rate;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        cfg.tls = Some(TlsConfig { cert, key });
    }
    // Load the certificate before anything else, so a bad one fails fast.
    let tls = cfg.tls.as_ref().map(TlsConfig::load).transpose()?;
    let router = config::app(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "listening");
    let stdin_closed = args.stop_when_stdin_closes;
    sealpost_server::tls::serve(listener, tls, router, shutdown(stdin_closed)).await?;
    Ok(())
}

/// Resolves when standard input reaches its end (the parent's side of the pipe closed).
async fn stdin_closed() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn shutdown(on_stdin_close: bool) {
    let parent_gone = async {
        if on_stdin_close {
            stdin_closed().await;
            tracing::info!("standard input closed: the app that started this server is gone");
        } else {
            std::future::pending::<()>().await;
        }
    };
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {}, () = parent_gone => {} }
    tracing::info!("shutting down");
}
