//! `sealpost-server`: the sync server.
//!
//! `sealpost-server --listen ADDR --data DIR` starts the embedded default (SQLite and a
//! software key file in DIR); `--config FILE` the full configuration (PostgreSQL, a
//! PKCS#11 HSM). `--tls-cert FILE --tls-key FILE` (or `[tls]` in the file) serve HTTPS;
//! without them the server speaks plain HTTP, meant for loopback or for a deployment
//! behind a TLS-terminating proxy. `--provision-hsm` creates the keys a PKCS#11 token
//! lacks and exits. Logs are JSON lines on standard error (the journal, under systemd)
//! and never contain a secret.
//!
//! Signals: `SIGHUP` reloads the TLS certificate and key (a pair that does not load is
//! refused and the old one kept); `SIGTERM` or Ctrl-C stop accepting, let requests in
//! flight finish (for at most [`SHUTDOWN_GRACE`]) and exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sealpost_server::config::{self, Config, TlsConfig};
use sealpost_server::tls::TlsConfigCell;
use tokio::sync::watch;

/// How long requests in flight may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often expired sessions, pending logins, claims and old security events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

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
    /// Operations listener for /metrics, /healthz, /readyz (overrides `[ops]`).
    #[arg(long, value_name = "ADDR")]
    ops_listen: Option<SocketAddr>,
    /// Create the HSM keys the configured token lacks, then exit.
    #[arg(long)]
    provision_hsm: bool,
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
    if args.provision_hsm {
        let done = config::provision_hsm(&cfg.hsm)?;
        tracing::info!(%done, "HSM provisioned");
        return Ok(());
    }
    if let Some(listen) = args.listen {
        cfg.listen = listen;
    }
    if let Some(rate) = args.rate_per_second {
        cfg.limits.rate_per_second = rate;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        cfg.tls = Some(TlsConfig { cert, key });
    }
    if let Some(listen) = args.ops_listen {
        cfg.ops = Some(config::OpsConfig { listen });
    }
    // Load the certificate before anything else, so a bad one fails fast.
    let tls = cfg
        .tls
        .as_ref()
        .map(TlsConfig::load)
        .transpose()?
        .map(TlsConfigCell::new);
    sealpost_server::metrics::handle();
    sealpost_server::metrics::spawn_upkeep();
    let service = config::service(&cfg).await?;
    service.spawn_maintenance(PRUNE_EVERY);

    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(signals(
        stop_tx,
        tls.clone().zip(cfg.tls.clone()),
        args.stop_when_stdin_closes,
    ));

    if let Some(ops) = &cfg.ops {
        let listener = tokio::net::TcpListener::bind(ops.listen).await?;
        tracing::info!(ops = %listener.local_addr()?, "operations listener (metrics, probes)");
        let router = sealpost_server::routes::ops_router(Arc::clone(&service));
        let stopped = stopped(stop.clone());
        tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(stopped);
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "the operations listener stopped");
            }
        });
    }

    let router = sealpost_server::routes::router(service);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "listening");
    let serve =
        sealpost_server::tls::serve_reloadable(listener, tls, router, stopped(stop.clone()));
    tokio::select! {
        served = serve => served?,
        () = async {
            stopped(stop).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still in flight after the grace period; exiting");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Completes once a shutdown was asked for.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
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
    tracing::info!("standard input closed: the app that started this server is gone");
}

/// Waits for signals: `SIGHUP` reloads TLS, `SIGTERM` or Ctrl-C stop, and so does the
/// end of standard input when `on_stdin_close` (the desktop app's child).
async fn signals(
    stop: watch::Sender<bool>,
    tls: Option<(TlsConfigCell, TlsConfig)>,
    on_stdin_close: bool,
) {
    let parent_gone = async {
        if on_stdin_close {
            stdin_closed().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(parent_gone);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot listen for signals; stop with SIGKILL");
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                () = &mut parent_gone => break,
                _ = hup.recv() => match &tls {
                    Some((cell, files)) => match cell.reload(&files.cert, &files.key) {
                        Ok(()) => tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = format!("{e:#}"), "TLS reload refused; the old certificate stays"),
                    },
                    None => tracing::info!("SIGHUP: nothing to reload (no TLS)"),
                },
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = &mut parent_gone => {}
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop.send(true);
}
