//! OAuth2 for mail: authorization code with PKCE through the system browser and a
//! loopback redirect (RFC 8252), refresh before expiry, provider presets.
//!
//! [`authorize`] binds `127.0.0.1:0`, builds the authorization URL with a PKCE challenge
//! and a random `state`, hands the URL to the caller's `open_url` (the desktop app opens
//! the system browser; tests play the browser), accepts the one redirect that carries
//! the matching `state`, and exchanges the code with the verifier. [`Tokens`] remember
//! when the access token expires; [`fresh_access_token`] refreshes it when it is about
//! to (the clock is the caller's, passed in as Unix seconds); [`try_refresh`] tells a
//! grant the provider refused (`invalid_grant`: the user must sign in again) from a
//! failure that may pass.
//!
//! Providers: [`gmail`], [`microsoft365`], or any OpenID provider found by [`discover`]
//! (`/.well-known/openid-configuration`). The token goes to IMAP and SMTP as
//! [`Credentials::XOAuth2`] or [`Credentials::OAuthBearer`] ([`Tokens::credentials`]).

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    RefreshToken, Scope, TokenResponse, TokenUrl,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::net::Server;
use crate::secret::{Credentials, Secret};

/// Refresh when the access token expires within this many seconds.
pub const REFRESH_MARGIN_SECS: u64 = 120;
/// Largest HTTP request accepted on the loopback redirect listener.
const MAX_REDIRECT_REQUEST: usize = 16 * 1024;

/// Which SASL mechanism carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SaslMechanism {
    /// Google's and Microsoft's `XOAUTH2`.
    XOAuth2,
    /// RFC 7628 `OAUTHBEARER`.
    OAuthBearer,
}

/// An OAuth2 provider's endpoints and what a mail client asks of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// A name to show.
    pub name: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The scopes that grant IMAP and SMTP access (and a refresh token).
    pub scopes: Vec<String>,
    /// Extra parameters for the authorization request.
    pub extra_params: Vec<(String, String)>,
    /// The IMAP server, if the preset knows it.
    pub imap: Option<Server>,
    /// The SMTP server, if the preset knows it.
    pub smtp: Option<Server>,
    /// The SASL mechanism the servers expect.
    pub mechanism: SaslMechanism,
}

/// Gmail: Google's endpoints, the `https://mail.google.com/` scope, XOAUTH2.
pub fn gmail() -> Provider {
    Provider {
        name: "Gmail".into(),
        authorization_endpoint: "https://accounts.google.com/o/oauth2/v2/auth".into(),
        token_endpoint: "https://oauth2.googleapis.com/token".into(),
        scopes: vec!["https://mail.google.com/".into()],
        // A refresh token, every time.
        extra_params: vec![
            ("access_type".into(), "offline".into()),
            ("prompt".into(), "consent".into()),
        ],
        imap: Some(Server::tls("imap.gmail.com", 993)),
        smtp: Some(Server::tls("smtp.gmail.com", 465)),
        mechanism: SaslMechanism::XOAuth2,
    }
}

/// Microsoft 365 / Outlook.com: the common tenant, IMAP and SMTP scopes, XOAUTH2.
pub fn microsoft365() -> Provider {
    Provider {
        name: "Microsoft 365".into(),
        authorization_endpoint: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
            .into(),
        token_endpoint: "https://login.microsoftonline.com/common/oauth2/v2.0/token".into(),
        scopes: vec![
            "https://outlook.office.com/IMAP.AccessAsUser.All".into(),
            "https://outlook.office.com/SMTP.Send".into(),
            "offline_access".into(),
        ],
        extra_params: Vec::new(),
        imap: Some(Server::tls("outlook.office365.com", 993)),
        smtp: Some(Server::starttls("smtp.office365.com", 587)),
        mechanism: SaslMechanism::XOAuth2,
    }
}

/// The parts of an OpenID discovery document a mail client uses.
#[derive(Debug, serde::Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// A generic OpenID provider, from `{issuer}/.well-known/openid-configuration`. The
/// document's `issuer` must equal `issuer` (OpenID Connect Discovery §4.3). Scopes:
/// `openid email offline_access`; mechanism: OAUTHBEARER.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Provider> {
    let issuer = issuer.trim_end_matches('/');
    let url = format!("{issuer}/.well-known/openid-configuration");
    let doc: Discovery = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| Error::OAuth(format!("fetching {url}: {e}")))?
        .json()
        .await
        .map_err(|e| Error::OAuth(format!("reading {url}: {e}")))?;
    if doc.issuer.trim_end_matches('/') != issuer {
        return Err(Error::OAuth(format!(
            "the discovery document names issuer {:?}, not {issuer:?}",
            doc.issuer
        )));
    }
    Ok(Provider {
        name: issuer.to_owned(),
        authorization_endpoint: doc.authorization_endpoint,
        token_endpoint: doc.token_endpoint,
        scopes: vec!["openid".into(), "email".into(), "offline_access".into()],
        extra_params: vec![("prompt".into(), "consent".into())],
        imap: None,
        smtp: None,
        mechanism: SaslMechanism::OAuthBearer,
    })
}

/// The app's registration at a provider.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    /// The provider.
    pub provider: Provider,
    /// The client id.
    pub client_id: String,
    /// The client secret of an installed app, where the provider issues one (Google
    /// does; it is not really secret).
    pub client_secret: Option<Secret>,
    /// The HTTP client for the token endpoint; it must not follow redirects.
    pub http: reqwest::Client,
}

impl OAuthClient {
    /// A client with an HTTP client that follows no redirects (oauth2 crate advice).
    pub fn new(provider: Provider, client_id: impl Into<String>) -> Result<Self> {
        Ok(Self {
            provider,
            client_id: client_id.into(),
            client_secret: None,
            http: http_client()?,
        })
    }
}

/// An HTTP client for OAuth2 token requests: no redirects, rustls.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::OAuth(e.to_string()))
}

/// An access token, its expiry, and the refresh token.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Tokens {
    /// The access token.
    #[serde(with = "secret_serde")]
    pub access_token: Secret,
    /// The refresh token, if the provider issued one.
    #[serde(with = "option_secret_serde")]
    pub refresh_token: Option<Secret>,
    /// When the access token expires (Unix seconds), if the provider said.
    pub expires_at: Option<u64>,
}

impl Tokens {
    /// Whether the access token expires within [`REFRESH_MARGIN_SECS`] of `now`.
    pub fn needs_refresh(&self, now: u64) -> bool {
        self.expires_at
            .is_some_and(|at| at <= now.saturating_add(REFRESH_MARGIN_SECS))
    }

    /// IMAP/SMTP credentials for `user` with the provider's mechanism.
    pub fn credentials(&self, user: &str, mechanism: SaslMechanism) -> Credentials {
        let user = user.to_owned();
        let token = self.access_token.clone();
        match mechanism {
            SaslMechanism::XOAuth2 => Credentials::XOAuth2 { user, token },
            SaslMechanism::OAuthBearer => Credentials::OAuthBearer { user, token },
        }
    }
}

/// Runs the authorization code flow with PKCE: `open_url` gets the URL to open in the
/// system browser; the redirect comes back to a loopback listener within `timeout`.
/// `login_hint` pre-fills the account at the provider. `now` is Unix seconds.
pub async fn authorize(
    client: &OAuthClient,
    login_hint: Option<&str>,
    open_url: impl FnOnce(&str) -> Result<()>,
    timeout: Duration,
    now: u64,
) -> Result<Tokens> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::OAuth(format!("binding the loopback redirect: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::OAuth(e.to_string()))?
        .port();
    // RFC 8252 §7.3 and §8.3: the literal 127.0.0.1, any port.
    let redirect = format!("http://127.0.0.1:{port}/");
    let oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_auth_uri(auth_url(&client.provider)?)
        .set_token_uri(token_url(&client.provider)?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| Error::OAuth(e.to_string()))?);
    let oauth = match &client.client_secret {
        Some(s) => oauth.set_client_secret(ClientSecret::new(s.expose().to_owned())),
        None => oauth,
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scopes(client.provider.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    for (k, v) in &client.provider.extra_params {
        request = request.add_extra_param(k.as_str(), v.as_str());
    }
    if let Some(hint) = login_hint {
        request = request.add_extra_param("login_hint", hint);
    }
    let (url, state) = request.url();
    open_url(url.as_str())?;

    let code = tokio::time::timeout(timeout, receive_redirect(&listener, state.secret()))
        .await
        .map_err(|_| Error::Timeout {
            what: "waiting for the browser to come back from the provider".into(),
        })??;
    let token = oauth
        .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
        .set_pkce_verifier(verifier)
        .request_async(&client.http)
        .await
        .map_err(|e| Error::OAuth(format!("exchanging the code: {}", describe(&e))))?;
    Ok(tokens_from(&token, None, now))
}

/// Why [`try_refresh`] got no new token.
#[derive(Debug)]
pub enum RefreshError {
    /// The provider refused the grant (`invalid_grant`: revoked, expired, the password
    /// changed) or there is no refresh token: only a new sign-in helps. The text is the
    /// provider's reason.
    Refused(String),
    /// Anything else (the network, a provider that is down): trying later may work.
    Failed(Error),
}

impl std::fmt::Display for RefreshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "the provider refused the refresh: {why}"),
            Self::Failed(e) => e.fmt(f),
        }
    }
}

/// Gets a new access token with the refresh token. Keeps the old refresh token when the
/// provider does not rotate it.
pub async fn refresh(client: &OAuthClient, tokens: &Tokens, now: u64) -> Result<Tokens> {
    try_refresh(client, tokens, now).await.map_err(|e| match e {
        RefreshError::Refused(why) => Error::OAuth(format!(
            "refreshing the token: {why}: the user must sign in again"
        )),
        RefreshError::Failed(e) => e,
    })
}

/// Like [`refresh`], telling a refused grant (sign in again) from a failure that may
/// pass.
pub async fn try_refresh(
    client: &OAuthClient,
    tokens: &Tokens,
    now: u64,
) -> std::result::Result<Tokens, RefreshError> {
    use oauth2::basic::BasicErrorResponseType;
    let Some(refresh_token) = &tokens.refresh_token else {
        return Err(RefreshError::Refused(
            "the provider issued no refresh token".into(),
        ));
    };
    let oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_auth_uri(auth_url(&client.provider).map_err(RefreshError::Failed)?)
        .set_token_uri(token_url(&client.provider).map_err(RefreshError::Failed)?);
    let oauth = match &client.client_secret {
        Some(s) => oauth.set_client_secret(ClientSecret::new(s.expose().to_owned())),
        None => oauth,
    };
    let token = oauth
        .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_owned()))
        .request_async(&client.http)
        .await
        .map_err(|e| match &e {
            oauth2::RequestTokenError::ServerResponse(r)
                if *r.error() == BasicErrorResponseType::InvalidGrant =>
            {
                RefreshError::Refused(match r.error_description() {
                    Some(d) => format!("invalid_grant ({d})"),
                    None => "invalid_grant".into(),
                })
            }
            _ => RefreshError::Failed(Error::OAuth(format!(
                "refreshing the token: {}",
                describe(&e)
            ))),
        })?;
    Ok(tokens_from(&token, Some(refresh_token), now))
}

/// The access token, refreshed first if it expires within [`REFRESH_MARGIN_SECS`].
pub async fn fresh_access_token<'t>(
    client: &OAuthClient,
    tokens: &'t mut Tokens,
    now: u64,
) -> Result<&'t Secret> {
    if tokens.needs_refresh(now) {
        *tokens = refresh(client, tokens, now).await?;
    }
    Ok(&tokens.access_token)
}

fn auth_url(p: &Provider) -> Result<AuthUrl> {
    AuthUrl::new(p.authorization_endpoint.clone()).map_err(|e| Error::OAuth(e.to_string()))
}

fn token_url(p: &Provider) -> Result<TokenUrl> {
    TokenUrl::new(p.token_endpoint.clone()).map_err(|e| Error::OAuth(e.to_string()))
}

fn describe<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn tokens_from(
    token: &oauth2::basic::BasicTokenResponse,
    old_refresh: Option<&Secret>,
    now: u64,
) -> Tokens {
    Tokens {
        access_token: Secret::new(token.access_token().secret().clone()),
        refresh_token: token
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone()))
            .or_else(|| old_refresh.cloned()),
        expires_at: token.expires_in().map(|d| now.saturating_add(d.as_secs())),
    }
}

/// Accepts connections on the loopback listener until one carries `state`; answers
/// each with a short page. Returns the code, or the provider's error.
async fn receive_redirect(listener: &TcpListener, state: &str) -> Result<Secret> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| Error::OAuth(format!("accepting the redirect: {e}")))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        // Read the request head (bounded).
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REDIRECT_REQUEST {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
        let head = String::from_utf8_lossy(&buf);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        let query = url::Url::parse(&format!("http://127.0.0.1{target}"))
            .ok()
            .map(|u| u.query_pairs().into_owned().collect::<Vec<_>>())
            .unwrap_or_default();
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if param("state").as_deref() != Some(state) {
            let _ = respond(&mut stream, 404, "Not the expected sign-in response.").await;
            continue;
        }
        if let Some(error) = param("error") {
            let _ = respond(
                &mut stream,
                400,
                "Sign-in failed. You can close this window.",
            )
            .await;
            let detail = param("error_description").unwrap_or_default();
            return Err(Error::OAuth(format!(
                "the provider refused: {error} {detail}"
            )));
        }
        let Some(code) = param("code") else {
            let _ = respond(&mut stream, 400, "No authorization code.").await;
            continue;
        };
        let _ = respond(
            &mut stream,
            200,
            "Signed in. You can close this window and return to Sealpost.",
        )
        .await;
        return Ok(Secret::new(code));
    }
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: u16,
    text: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

mod secret_serde {
    use crate::secret::Secret;

    pub fn serialize<S: serde::Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
        let s: String = serde::Deserialize::deserialize(de)?;
        Ok(Secret::new(s))
    }
}

mod option_secret_serde {
    use crate::secret::Secret;

    pub fn serialize<S: serde::Serializer>(s: &Option<Secret>, ser: S) -> Result<S::Ok, S::Error> {
        match s {
            Some(s) => ser.serialize_some(s.expose()),
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        de: D,
    ) -> Result<Option<Secret>, D::Error> {
        let s: Option<String> = serde::Deserialize::deserialize(de)?;
        Ok(s.map(Secret::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_shortly_before_they_expire() {
        let t = Tokens {
            access_token: Secret::new("a"),
            refresh_token: None,
            expires_at: Some(1000),
        };
        assert!(!t.needs_refresh(1000 - REFRESH_MARGIN_SECS - 1));
        assert!(t.needs_refresh(1000 - REFRESH_MARGIN_SECS));
        assert!(t.needs_refresh(2000));
        let never = Tokens {
            expires_at: None,
            ..t.clone()
        };
        assert!(!never.needs_refresh(u64::MAX));
        assert!(!format!("{t:?}").contains("\"a\""));
    }

    #[test]
    fn presets_name_the_right_servers() {
        let g = gmail();
        assert_eq!(g.imap, Some(Server::tls("imap.gmail.com", 993)));
        assert!(g.scopes.contains(&"https://mail.google.com/".to_owned()));
        let m = microsoft365();
        assert_eq!(m.smtp, Some(Server::starttls("smtp.office365.com", 587)));
        assert!(
            m.scopes
                .iter()
                .any(|s| s.ends_with("IMAP.AccessAsUser.All"))
        );
        assert!(m.scopes.contains(&"offline_access".to_owned()));
    }
}
