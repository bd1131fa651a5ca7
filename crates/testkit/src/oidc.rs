//! A throwaway OpenID Connect / OAuth2 provider for tests: the npm package
//! `oidc-provider` run by Node (`crates/testkit/oidc/server.js`).
//!
//! [`OidcProvider::start`] runs `node server.js` on a free loopback port with its
//! configuration in the environment, and returns once the discovery document answers.
//! It knows:
//!
//! - the accounts given (account id = e-mail address = OAuth `sub`);
//! - a native public client [`OidcProvider::client_id`] (loopback redirect on any port,
//!   PKCE required, refresh tokens with `offline_access`);
//! - a confidential client that may introspect tokens (RFC 7662), for Dovecot:
//!   [`OidcProvider::introspection_url`] carries its credentials in the URL, as
//!   Dovecot's `oauth2` passdb expects.
//!
//! Logins and consents finish automatically for the account named in the authorization
//! request's `login_hint`; the test plays the browser. `scripts/testkit-deps.sh`
//! installs the npm packages (`npm ci`). Dropping the handle stops Node.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{self, Daemon, DaemonError};

/// The native client's id.
pub const CLIENT_ID: &str = "sealpost-desktop";
/// The introspecting client's id.
const INTROSPECTION_CLIENT_ID: &str = "dovecot";

/// A running provider; stopped on drop.
#[derive(Debug)]
pub struct OidcProvider {
    daemon: Daemon,
    port: u16,
    introspection_secret: String,
    dir: TempDir,
}

impl OidcProvider {
    /// Starts the provider with these accounts and access tokens valid for
    /// `access_token_ttl`.
    pub fn start(accounts: &[&str], access_token_ttl: Duration) -> Result<Self, DaemonError> {
        let app = app_dir();
        if !app.join("node_modules/oidc-provider").is_dir() {
            return Err(DaemonError::NotInstalled(format!(
                "oidc-provider in {} (run scripts/testkit-deps.sh)",
                app.display()
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("sealpost-oidc-")
            .tempdir()
            .map_err(daemon::io("creating the provider's directory"))?;
        let port = daemon::free_ports(1)?
            .first()
            .copied()
            .ok_or_else(|| DaemonError::NotInstalled("a free port".into()))?;
        let introspection_secret = format!("introspect-{port}-{}", std::process::id());
        let config = format!(
            r#"{{"port":{port},"issuer":"http://127.0.0.1:{port}","accounts":[{accounts}],"client_id":"{CLIENT_ID}","introspection_client_id":"{INTROSPECTION_CLIENT_ID}","introspection_client_secret":"{introspection_secret}","access_token_ttl":{ttl}}}"#,
            accounts = accounts
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(","),
            ttl = access_token_ttl.as_secs().max(1),
        );
        let log = dir.path().join("oidc.log");
        let (out, err) = daemon::log_file(&log)?;
        let mut cmd = Command::new("node");
        cmd.arg(app.join("server.js"))
            .env("SEALPOST_OIDC_CONFIG", config)
            .current_dir(&app)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut daemon = Daemon::spawn("node oidc-provider", cmd)?;
        daemon.wait_ports(&[port], &log)?;
        Ok(Self {
            daemon,
            port,
            introspection_secret,
            dir,
        })
    }

    /// The issuer (`http://127.0.0.1:PORT`); discovery is below it.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The native client's id.
    pub fn client_id(&self) -> &str {
        CLIENT_ID
    }

    /// The token introspection endpoint with the introspecting client's credentials in
    /// the URL (what Dovecot's `introspection_url` takes).
    pub fn introspection_url(&self) -> String {
        format!(
            "http://{INTROSPECTION_CLIENT_ID}:{}@127.0.0.1:{}/token/introspection",
            self.introspection_secret, self.port
        )
    }

    /// The provider's log.
    pub fn log(&self) -> String {
        daemon::read_log(&self.dir.path().join("oidc.log"))
    }

    /// The Node process id.
    pub fn pid(&self) -> u32 {
        self.daemon.id()
    }
}

/// Where `server.js` and its `node_modules` are.
pub fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    #[test]
    fn serves_discovery_and_stops_on_drop() {
        let oidc = OidcProvider::start(&["alice@sealpost.test"], Duration::from_secs(60)).unwrap();
        let port = oidc.issuer().rsplit(':').next().unwrap().to_owned();
        let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        write!(
            stream,
            "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains(&format!("\"issuer\":\"{}\"", oidc.issuer())));
        assert!(response.contains("introspection_endpoint"));
        assert!(oidc.introspection_url().contains("@127.0.0.1:"));

        let pid = oidc.pid();
        drop(oidc);
        assert!(crate::daemon::gone(pid), "node {pid} still runs");
    }
}
