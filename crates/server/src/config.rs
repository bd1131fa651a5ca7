//! Configuration: a TOML file (`--config`), or the embedded default (`--data DIR`), with
//! secrets from the environment, never from the file.
//!
//! ```toml
//! listen = "0.0.0.0:8443"
//! server_id = "sync.example.org"        # bound into every OPAQUE key exchange
//!
//! [store]
//! kind = "postgres"                     # or: kind = "sqlite", path = "/var/lib/sealpost/server.sqlite3"
//! url_env = "SEALPOST_POSTGRES_URL"     # the URL (it may hold a password) comes from this variable
//!
//! [hsm]
//! kind = "pkcs11"                       # or: kind = "software", key_file = "/var/lib/sealpost/hsm.key"
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token_label = "sealpost"
//! pin_env = "SEALPOST_HSM_PIN"
//!
//! [limits]
//! max_failed_logins = 10
//!
//! [directory.smtp]                      # without it the key directory refuses claims (503)
//! host = "smtp.example.org"             # the relay that mails the proof tokens
//! port = 465
//! security = "tls"                      # or "starttls" (then required)
//! username = "directory@example.org"
//! password_env = "SEALPOST_SMTP_PASSWORD"
//! from = "directory@example.org"
//!
//! [tls]                                 # without it: plain HTTP (loopback, or behind a TLS proxy)
//! cert = "/etc/sealpost/fullchain.pem"  # PEM, leaf first; reloaded on SIGHUP
//! key = "/etc/sealpost/privkey.pem"     # PEM (PKCS#8, PKCS#1 or SEC1)
//!
//! [ops]                                 # without it: no operations listener
//! listen = "127.0.0.1:9464"             # plain HTTP: /metrics, /healthz, /readyz (keep it private)
//!
//! [security_activity]
//! retention_days = 180                  # how long security events are kept
//! ```
//!
//! `/healthz` and `/readyz` are also served on the API listener (they need no version
//! header), so a load balancer can probe the port it sends traffic to.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::clock::SystemClock;
use crate::hsm::Hsm;
use crate::hsm::pkcs11::{Pkcs11Config, Pkcs11Hsm};
use crate::hsm::software::SoftwareHsm;
use crate::mailer::{SmtpMailer, SmtpRelayConfig};
use crate::service::{Service, ServiceConfig};
use crate::store::Store;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The server's OPAQUE identity.
    #[serde(default = "default_server_id")]
    pub server_id: String,
    /// The store.
    pub store: StoreConfig,
    /// The HSM.
    pub hsm: HsmConfig,
    /// Limits and lifetimes.
    #[serde(default)]
    pub limits: Limits,
    /// HTTPS; without it the server speaks plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The key directory.
    #[serde(default)]
    pub directory: DirectoryConfig,
    /// The operations listener (metrics and probes).
    #[serde(default)]
    pub ops: Option<OpsConfig>,
    /// The per-account security activity log.
    #[serde(default)]
    pub security_activity: SecurityActivityConfig,
}

/// The operations listener: Prometheus metrics and the health probes, plain HTTP, meant
/// for a private address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// Where to listen.
    pub listen: SocketAddr,
}

/// How long the security activity log keeps events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityActivityConfig {
    /// Days an event is kept.
    pub retention_days: i64,
}

impl Default for SecurityActivityConfig {
    fn default() -> Self {
        Self {
            retention_days: ServiceConfig::default().activity_retention / 86_400,
        }
    }
}

/// The key directory: how its proof mails leave.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// The SMTP relay; without one, claims are refused.
    #[serde(default)]
    pub smtp: Option<SmtpRelayConfig>,
}

/// The certificate and key for HTTPS, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (readable by the server only).
    pub key: PathBuf,
}

impl TlsConfig {
    /// Loads the files into a rustls configuration.
    pub fn load(&self) -> anyhow::Result<Arc<tokio_rustls::rustls::ServerConfig>> {
        Ok(crate::tls::server_config(&self.cert, &self.key)?)
    }
}

/// Which store.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// One SQLite file: the embedded single-machine default.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// PostgreSQL, shared by several server processes.
    Postgres {
        /// The environment variable holding the connection URL.
        #[serde(default = "default_pg_env")]
        url_env: String,
        /// Connections per process.
        #[serde(default)]
        pool_size: Option<usize>,
    },
}

/// Which HSM.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum HsmConfig {
    /// A key file: NOT an HSM; for a single machine only.
    Software {
        /// The key file (created on first start, mode 0600).
        key_file: PathBuf,
    },
    /// A PKCS#11 token.
    Pkcs11 {
        /// The module (shared library).
        module: PathBuf,
        /// The token's label.
        token_label: String,
        /// The environment variable holding the user PIN.
        #[serde(default = "default_pin_env")]
        pin_env: String,
        /// The sealing key's label.
        #[serde(default)]
        seal_key_label: Option<String>,
        /// The OPRF key's label.
        #[serde(default)]
        oprf_key_label: Option<String>,
        /// The transparency log key pair's label.
        #[serde(default)]
        log_key_label: Option<String>,
    },
}

/// Limits and lifetimes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Failed logins before the account locks.
    pub max_failed_logins: i64,
    /// Session lifetime, seconds.
    pub session_ttl_secs: i64,
    /// Per-source sustained rate of unauthenticated starts, per second (0 disables).
    pub rate_per_second: f64,
    /// Per-source burst.
    pub rate_burst: f64,
}

impl Default for Limits {
    fn default() -> Self {
        let d = ServiceConfig::default();
        Self {
            max_failed_logins: d.max_failed_logins,
            session_ttl_secs: d.session_ttl,
            rate_per_second: d.rate_per_second,
            rate_burst: d.rate_burst,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}
fn default_server_id() -> String {
    "sealpost".to_owned()
}
fn default_pg_env() -> String {
    "SEALPOST_POSTGRES_URL".to_owned()
}
fn default_pin_env() -> String {
    "SEALPOST_HSM_PIN".to_owned()
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))
    }

    /// The embedded default: SQLite and a software key file in `data_dir`.
    pub fn embedded(data_dir: &Path, listen: SocketAddr) -> Self {
        Self {
            listen,
            server_id: default_server_id(),
            store: StoreConfig::Sqlite {
                path: data_dir.join("server.sqlite3"),
            },
            hsm: HsmConfig::Software {
                key_file: data_dir.join("hsm-software.key"),
            },
            limits: Limits::default(),
            tls: None,
            directory: DirectoryConfig::default(),
            ops: None,
            security_activity: SecurityActivityConfig::default(),
        }
    }

    fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            server_id: self.server_id.clone(),
            session_ttl: self.limits.session_ttl_secs,
            max_failed_logins: self.limits.max_failed_logins,
            rate_per_second: self.limits.rate_per_second,
            rate_burst: self.limits.rate_burst,
            activity_retention: self.security_activity.retention_days.saturating_mul(86_400),
            ..ServiceConfig::default()
        }
    }
}

fn secret_env(name: &str, what: &str) -> anyhow::Result<Zeroizing<String>> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(Zeroizing::new(v)),
        _ => bail!("set {what} in the environment variable {name}"),
    }
}

/// Opens the configured store.
pub async fn open_store(config: &StoreConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config {
        StoreConfig::Sqlite { path } => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            Arc::new(SqliteStore::open(path)?)
        }
        StoreConfig::Postgres { url_env, pool_size } => {
            let url = secret_env(url_env, "the PostgreSQL URL")?;
            match pool_size {
                Some(n) => Arc::new(PostgresStore::connect_with_pool_size(&url, *n).await?),
                None => Arc::new(PostgresStore::connect(&url).await?),
            }
        }
    })
}

/// The PKCS#11 configuration of an `[hsm] kind = "pkcs11"` section, PIN from the
/// environment.
fn pkcs11_config(config: &HsmConfig) -> anyhow::Result<Option<Pkcs11Config>> {
    let HsmConfig::Pkcs11 {
        module,
        token_label,
        pin_env,
        seal_key_label,
        oprf_key_label,
        log_key_label,
    } = config
    else {
        return Ok(None);
    };
    let mut c = Pkcs11Config::new(
        module,
        token_label,
        secret_env(pin_env, "the HSM user PIN")?,
    );
    if let Some(l) = seal_key_label {
        c.seal_key_label = l.clone();
    }
    if let Some(l) = oprf_key_label {
        c.oprf_key_label = l.clone();
    }
    if let Some(l) = log_key_label {
        c.log_key_label = l.clone();
    }
    Ok(Some(c))
}

/// Creates whichever keys the configured PKCS#11 token lacks (`--provision-hsm`); a
/// software key file is made on first start anyway. Idempotent.
pub fn provision_hsm(config: &HsmConfig) -> anyhow::Result<String> {
    match pkcs11_config(config)? {
        Some(c) => {
            let done = Pkcs11Hsm::provision(&c)?;
            Ok(format!(
                "PKCS#11 token '{}': sealing key {}, OPRF key {}, log key {}",
                c.token_label,
                if done.seal_key_created {
                    "created"
                } else {
                    "present"
                },
                if done.oprf_key_created {
                    "created"
                } else {
                    "present"
                },
                if done.log_key_created {
                    "created"
                } else {
                    "present"
                },
            ))
        }
        None => {
            open_hsm(config)?;
            Ok("software key file ready".into())
        }
    }
}

/// Opens the configured HSM.
pub fn open_hsm(config: &HsmConfig) -> anyhow::Result<Arc<dyn Hsm>> {
    Ok(match config {
        HsmConfig::Software { key_file } => {
            if let Some(dir) = key_file.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let hsm = SoftwareHsm::open_or_create(key_file)?;
            tracing::warn!(
                "{}: keys are in a file; fine for one machine, but whoever copies the data \
                 directory with this file can guess passwords offline. Use a PKCS#11 HSM in production.",
                hsm.describe()
            );
            Arc::new(hsm)
        }
        HsmConfig::Pkcs11 { .. } => match pkcs11_config(config)? {
            Some(c) => Arc::new(Pkcs11Hsm::connect(&c)?),
            None => bail!("not a PKCS#11 configuration"),
        },
    })
}

/// The whole server for a configuration: store, HSM, service and router.
pub async fn app(config: &Config) -> anyhow::Result<axum::Router> {
    Ok(crate::routes::router(service(config).await?))
}

/// The service for a configuration: store, HSM, relay.
pub async fn service(config: &Config) -> anyhow::Result<Arc<Service>> {
    let store = open_store(&config.store).await?;
    let hsm = open_hsm(&config.hsm)?;
    let mut service = Service::new(config.service_config(), store, hsm, Arc::new(SystemClock))
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
    if let Some(relay) = &config.directory.smtp {
        let password = secret_env(&relay.password_env, "the SMTP relay password")?;
        let mailer = SmtpMailer::new(relay, sealpost_mail::Secret::new(password.as_str()))?;
        tracing::info!(relay = %relay.host, "key directory: proof mails go through the relay");
        service = service.with_mailer(Arc::new(mailer));
    }
    Ok(Arc::new(service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file_and_refuses_unknown_keys() {
        let c: Config = toml::from_str(
            r#"
            listen = "127.0.0.1:9000"
            server_id = "sync.example.org"
            [store]
            kind = "postgres"
            [hsm]
            kind = "pkcs11"
            module = "/usr/lib/softhsm/libsofthsm2.so"
            token_label = "sealpost"
            [limits]
            max_failed_logins = 5
            "#,
        )
        .unwrap();
        assert_eq!(c.limits.max_failed_logins, 5);
        assert!(
            matches!(c.store, StoreConfig::Postgres { ref url_env, .. } if url_env == "SEALPOST_POSTGRES_URL")
        );
        assert!(
            toml::from_str::<Config>(
                "typo = 1\n[store]\nkind='sqlite'\npath='x'\n[hsm]\nkind='software'\nkey_file='k'"
            )
            .is_err()
        );
        // A PIN in the file is refused: secrets come from the environment only.
        assert!(toml::from_str::<Config>(
            "[store]\nkind='sqlite'\npath='x'\n[hsm]\nkind='pkcs11'\nmodule='m'\ntoken_label='t'\npin='1234'"
        )
        .is_err());
    }

    #[test]
    fn tls_is_optional_and_strict() {
        let base = "[store]\nkind='sqlite'\npath='x'\n[hsm]\nkind='software'\nkey_file='k'\n";
        assert_eq!(toml::from_str::<Config>(base).unwrap().tls, None);
        let c: Config = toml::from_str(&format!(
            "{base}[tls]\ncert='/etc/c.pem'\nkey='/etc/k.pem'\n"
        ))
        .unwrap();
        assert_eq!(
            c.tls,
            Some(TlsConfig {
                cert: "/etc/c.pem".into(),
                key: "/etc/k.pem".into()
            })
        );
        assert!(toml::from_str::<Config>(&format!("{base}[tls]\ncert='c'\n")).is_err());
        assert!(
            toml::from_str::<Config>(&format!("{base}[tls]\ncert='c'\nkey='k'\npassword='p'\n"))
                .is_err()
        );
        let missing = TlsConfig {
            cert: "/nonexistent/c.pem".into(),
            key: "/nonexistent/k.pem".into(),
        };
        assert!(format!("{:#}", missing.load().unwrap_err()).contains("/nonexistent/c.pem"));
    }
}
