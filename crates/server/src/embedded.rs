//! The embedded server: SQLite and a software key file in one directory, served on a
//! loopback port from a runtime of its own. The desktop app runs it as its default sync
//! server on a single machine, and tests run it in-process.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::clock::SystemClock;
use crate::hsm::software::SoftwareHsm;
use crate::mailer::Mailer;
use crate::service::{Service, ServiceConfig};
use crate::store::sqlite::SqliteStore;

/// A running embedded server; dropping it stops it.
pub struct EmbeddedServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl EmbeddedServer {
    /// Starts a server on `listen` (port 0 picks a free one) with its state in `data_dir`.
    pub fn start(
        data_dir: &Path,
        listen: SocketAddr,
        config: ServiceConfig,
    ) -> anyhow::Result<Self> {
        Self::start_with_mailer(data_dir, listen, config, None)
    }

    /// [`EmbeddedServer::start`] with a relay for the key directory's proof mails.
    pub fn start_with_mailer(
        data_dir: &Path,
        listen: SocketAddr,
        config: ServiceConfig,
        mailer: Option<Arc<dyn Mailer>>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sealpost-server")
            .enable_all()
            .build()?;
        let (db, key) = (
            data_dir.join("server.sqlite3"),
            data_dir.join("hsm-software.key"),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let addr = runtime.block_on(async move {
            let store = Arc::new(SqliteStore::open(&db)?);
            let hsm = Arc::new(SoftwareHsm::open_or_create(&key)?);
            let service = Service::new(config, store, hsm, Arc::new(SystemClock))
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            let service = match mailer {
                Some(mailer) => service.with_mailer(mailer),
                None => service,
            };
            let service = Arc::new(service);
            service.spawn_maintenance(std::time::Duration::from_secs(600));
            let app = crate::routes::router(service);
            let listener = tokio::net::TcpListener::bind(listen).await?;
            let addr = listener.local_addr()?;
            tokio::spawn(async move {
                let serve = axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "embedded server stopped");
                }
            });
            anyhow::Ok(addr)
        })?;
        Ok(Self {
            addr,
            shutdown: Some(tx),
            runtime: Some(runtime),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}
