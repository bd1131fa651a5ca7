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

impl OidcProvider {
    /// Revokes a token at the provider (RFC 7009, as the native client): a revoked
    /// refresh token ends the grant, as when the user withdraws the app's access.
    pub fn revoke(&self, token: &str) -> std::io::Result<()> {
        let body = format!("token={}&client_id={CLIENT_ID}", form_encode(token));
        let response = request(
            "POST",
            &format!("{}/token/revocation", self.issuer()),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )?;
        if response.status != 200 {
            return Err(std::io::Error::other(format!(
                "revocation answered {}: {}",
                response.status, response.body
            )));
        }
        Ok(())
    }
}

/// Plays the system browser on an authorization URL: GETs it and follows redirects,
/// keeping cookies as a browser does, until an answer is not a redirect (the app's
/// loopback page). Returns that answer's status and the URL that gave it. Plain
/// `http://` only: the provider and the loopback redirect both are, on loopback.
pub fn browse(url: &str) -> std::io::Result<(u16, String)> {
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut url = url.to_owned();
    for _ in 0..20 {
        let cookie = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let headers: Vec<(&str, &str)> = if cookie.is_empty() {
            Vec::new()
        } else {
            vec![("Cookie", cookie.as_str())]
        };
        let response = request("GET", &url, &headers, b"")?;
        for set in &response.set_cookies {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                cookies.retain(|(name, _)| name != k.trim());
                cookies.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        match (&response.location, response.status) {
            (Some(location), 300..=399) => {
                url = if location.starts_with("http://") {
                    location.clone()
                } else {
                    let (origin, _) = split_url(&url)?;
                    format!("http://{origin}{location}")
                };
            }
            _ => return Ok((response.status, url)),
        }
    }
    Err(std::io::Error::other("more than 20 redirects"))
}

struct Response {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> std::io::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other(format!("not an http:// URL: {url}")))?;
    Ok(match rest.find('/') {
        Some(i) => (
            rest.get(..i).unwrap_or_default().to_owned(),
            rest.get(i..).unwrap_or("/").to_owned(),
        ),
        None => (rest.to_owned(), "/".to_owned()),
    })
}

/// One HTTP/1.1 exchange over a fresh connection (`Connection: close`).
fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    use std::io::{Read, Write};
    let (origin, path) = split_url(url)?;
    let mut stream = std::net::TcpStream::connect(&origin)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {origin}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head}")))?;
    let mut response = Response {
        status,
        location: None,
        set_cookies: Vec::new(),
        body: body.to_owned(),
    };
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "location" => response.location = Some(v.trim().to_owned()),
                "set-cookie" => response.set_cookies.push(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    Ok(response)
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
