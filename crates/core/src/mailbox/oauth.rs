//! Mail accounts that sign in with OAuth2: Gmail, Microsoft 365, or any OpenID provider.
//!
//! The sign-in ([`sign_in`]) is `sealpost_mail::oauth::authorize`: authorization code with
//! PKCE, the system browser opened by the caller's `open_url`, the code coming back to a
//! loopback listener. What it leaves:
//!
//! - the provider, in the `account` row (`auth = 'oauth2'`, `oauth_provider` as JSON):
//!   its endpoints, scopes, SASL mechanism and the app's client id — what a refresh
//!   needs, nothing secret;
//! - the tokens (access token, refresh token, expiry) and the client secret of an
//!   installed app where the provider issues one, as the vault secret
//!   [`oauth_secret`] (`mail/<id>/oauth`), sealed under the vault key like a password.
//!   Like the password it travels in the settings blob (`crate::sync::settings`), so a
//!   device that gets the account gets its sign-in.
//!
//! [`super::Mailbox::credentials`] hands out the access token, refreshed first when it
//! expires within [`sealpost_mail::oauth::REFRESH_MARGIN_SECS`] of the mailbox's clock;
//! the new tokens are stored before they are used. Refreshes of one account are one at a
//! time in this process, and each looks at the vault again once it may go: providers
//! that rotate refresh tokens (and revoke the grant when an old one is used again) see
//! each refresh token once. A grant the provider refuses (revoked, expired) is
//! [`sign_in_again`]'s error, in words; the stored tokens stay as they were.
//!
//! Client ids are the app's registrations: the presets read them from
//! [`GOOGLE_CLIENT_ID_ENV`] and [`MICROSOFT_CLIENT_ID_ENV`] (or take one given), and say
//! so in words when there is none. None is built in.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use sealpost_mail::oauth::{self, OAuthClient, Provider, RefreshError, SaslMechanism, Tokens};
use sealpost_mail::{Credentials, Secret, Server};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{MailAccount, Mailbox, NewAccount, damaged, oauth_secret, random_id};
use crate::{Clock, CoreError};

/// The environment variable with the app's Google OAuth client id.
pub const GOOGLE_CLIENT_ID_ENV: &str = "SEALPOST_GOOGLE_CLIENT_ID";
/// The environment variable with the client secret Google issues to installed apps
/// (optional; it is not really secret, but Google's token endpoint asks for it).
pub const GOOGLE_CLIENT_SECRET_ENV: &str = "SEALPOST_GOOGLE_CLIENT_SECRET";
/// The environment variable with the app's Microsoft identity platform client id.
pub const MICROSOFT_CLIENT_ID_ENV: &str = "SEALPOST_MICROSOFT_CLIENT_ID";
/// How long a sign-in may wait for the browser to come back.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the user signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthChoice {
    /// Gmail / Google Workspace.
    Google,
    /// Microsoft 365 / Outlook.com.
    Microsoft,
    /// Any OpenID provider, by its issuer URL (discovery below it).
    Issuer(String),
}

impl OAuthChoice {
    /// `google` (or `gmail`), `microsoft` (or `outlook`, `office365`), or an issuer URL
    /// (`https://…`; `http://` only on loopback).
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "google" | "gmail" => return Ok(Self::Google),
            "microsoft" | "outlook" | "office365" | "microsoft365" => {
                return Ok(Self::Microsoft);
            }
            _ => {}
        }
        let url = url_like(s).ok_or_else(|| invalid("OAuth2 provider", s))?;
        Ok(Self::Issuer(url))
    }
}

/// `s` when it is an `https://` URL, or an `http://` one on loopback (a test provider).
fn url_like(s: &str) -> Option<String> {
    let rest = s.strip_prefix("https://").or_else(|| {
        s.strip_prefix("http://")
            .filter(|r| r.starts_with("127.0.0.1") || r.starts_with("localhost"))
    })?;
    let host = rest.split(['/', ':', '?', '#']).next().unwrap_or_default();
    (!host.is_empty() && !s.contains(char::is_whitespace)).then(|| s.to_owned())
}

fn invalid(what: &'static str, value: &str) -> CoreError {
    CoreError::Mail(sealpost_mail::Error::Invalid {
        what,
        value: value.to_owned(),
    })
}

/// The app's registration at a provider.
#[derive(Clone)]
pub struct OAuthApp {
    /// The client id.
    pub client_id: String,
    /// The client secret of an installed app, where the provider issues one.
    pub client_secret: Option<Secret>,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl OAuthApp {
    /// The registration for `choice`: `client_id` when given, else for the presets the
    /// environment ([`GOOGLE_CLIENT_ID_ENV`], [`MICROSOFT_CLIENT_ID_ENV`]). A generic
    /// provider needs the id given: only its administrator knows it.
    pub fn for_choice(choice: &OAuthChoice, client_id: Option<String>) -> Result<Self, CoreError> {
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let given = client_id
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        let missing = |what: &str| {
            CoreError::Mail(sealpost_mail::Error::OAuth(format!(
                "no OAuth2 client id for {what}: {}",
                match choice {
                    OAuthChoice::Google => format!(
                        "register Sealpost as a desktop app in the Google Cloud console and set \
                         {GOOGLE_CLIENT_ID_ENV} (and {GOOGLE_CLIENT_SECRET_ENV}), or give one"
                    ),
                    OAuthChoice::Microsoft => format!(
                        "register Sealpost as a public client in Microsoft Entra and set \
                         {MICROSOFT_CLIENT_ID_ENV}, or give one"
                    ),
                    OAuthChoice::Issuer(_) => "ask the provider's administrator for the client \
                                               id registered for Sealpost and give it"
                        .to_owned(),
                }
            )))
        };
        match choice {
            OAuthChoice::Google => Ok(Self {
                client_id: given
                    .or_else(|| env(GOOGLE_CLIENT_ID_ENV))
                    .ok_or_else(|| missing("Google"))?,
                client_secret: env(GOOGLE_CLIENT_SECRET_ENV).map(Secret::new),
            }),
            OAuthChoice::Microsoft => Ok(Self {
                client_id: given
                    .or_else(|| env(MICROSOFT_CLIENT_ID_ENV))
                    .ok_or_else(|| missing("Microsoft"))?,
                client_secret: None,
            }),
            OAuthChoice::Issuer(issuer) => Ok(Self {
                client_id: given.ok_or_else(|| missing(issuer))?,
                client_secret: None,
            }),
        }
    }
}

/// What an OAuth2 account keeps of its provider: enough to refresh, nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthProvider {
    /// A name to show (`Gmail`, `Microsoft 365`, the issuer).
    pub name: String,
    /// The issuer of a discovered provider; `None` for the presets.
    pub issuer: Option<String>,
    /// The authorization endpoint (for a new sign-in).
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The SASL mechanism the servers expect.
    pub mechanism: SaslMechanism,
    /// The app's client id there.
    pub client_id: String,
}

impl OAuthProvider {
    fn mail_provider(&self) -> Provider {
        Provider {
            name: self.name.clone(),
            authorization_endpoint: self.authorization_endpoint.clone(),
            token_endpoint: self.token_endpoint.clone(),
            scopes: self.scopes.clone(),
            extra_params: Vec::new(),
            imap: None,
            smtp: None,
            mechanism: self.mechanism,
        }
    }
}

/// How an account logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAuth {
    /// With a password (the vault secret `mail/<id>/password`).
    Password,
    /// With OAuth2 at this provider (the tokens are the vault secret [`oauth_secret`]).
    OAuth2(OAuthProvider),
}

/// A finished sign-in: the provider, the tokens, and the servers a preset knows.
#[derive(Clone)]
pub struct OAuthGrant {
    /// The provider and the app's client id.
    pub provider: OAuthProvider,
    /// The tokens.
    pub tokens: Tokens,
    /// The app's client secret, where the provider issues one.
    pub client_secret: Option<Secret>,
    /// The IMAP server, when the preset knows it.
    pub imap: Option<Server>,
    /// The SMTP server, when the preset knows it.
    pub smtp: Option<Server>,
}

impl std::fmt::Debug for OAuthGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthGrant")
            .field("provider", &self.provider)
            .field("expires_at", &self.tokens.expires_at)
            .finish_non_exhaustive()
    }
}

impl OAuthGrant {
    /// IMAP/SMTP credentials for `login` with the access token as it is.
    pub fn credentials(&self, login: &str) -> Credentials {
        self.tokens.credentials(login, self.provider.mechanism)
    }
}

/// The vault secret's content.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredTokens {
    tokens: Tokens,
    client_secret: Option<Zeroizing<String>>,
}

/// The provider for `choice`: a preset, or discovery at the issuer.
pub async fn provider(choice: &OAuthChoice) -> Result<Provider, CoreError> {
    Ok(match choice {
        OAuthChoice::Google => oauth::gmail(),
        OAuthChoice::Microsoft => oauth::microsoft365(),
        OAuthChoice::Issuer(issuer) => oauth::discover(&oauth::http_client()?, issuer).await?,
    })
}

/// Signs in at the provider of `choice` for `address`: `open_url` gets the URL to open
/// in the system browser; the browser must come back within `timeout`.
pub async fn sign_in(
    choice: &OAuthChoice,
    app: OAuthApp,
    address: &str,
    open_url: impl FnOnce(&str) -> Result<(), CoreError>,
    timeout: Duration,
    clock: &dyn Clock,
) -> Result<OAuthGrant, CoreError> {
    let provider = provider(choice).await?;
    let mut client = OAuthClient::new(provider, app.client_id.clone())?;
    client.client_secret = app.client_secret.clone();
    let tokens = oauth::authorize(
        &client,
        Some(address),
        |url| {
            open_url(url).map_err(|e| {
                sealpost_mail::Error::OAuth(format!("could not open the browser: {e}"))
            })
        },
        timeout,
        unix_now(clock),
    )
    .await?;
    let p = client.provider;
    Ok(OAuthGrant {
        provider: OAuthProvider {
            name: p.name,
            issuer: match choice {
                OAuthChoice::Issuer(i) => Some(i.trim_end_matches('/').to_owned()),
                _ => None,
            },
            authorization_endpoint: p.authorization_endpoint,
            token_endpoint: p.token_endpoint,
            scopes: p.scopes,
            mechanism: p.mechanism,
            client_id: app.client_id,
        },
        tokens,
        client_secret: app.client_secret,
        imap: p.imap,
        smtp: p.smtp,
    })
}

/// The error of a grant the provider refused: the user must sign in again.
pub fn sign_in_again(account: &MailAccount, provider: &OAuthProvider, why: &str) -> CoreError {
    CoreError::OAuthSignInRequired(format!(
        "{} is no longer signed in at {} ({why}): sign in to the account again",
        account.address, provider.name
    ))
}

fn unix_now(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.now_unix()).unwrap_or(0)
}

/// One lock per account: refreshes of an account in this process go one at a time.
fn refresh_lock(account_id: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(|| Mutex::new(BTreeMap::new()));
    let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(locks.entry(account_id.to_owned()).or_default())
}

impl Mailbox {
    /// Adds an account that signed in with OAuth2; its tokens go into the vault only.
    pub fn add_oauth_account(
        &self,
        new: &NewAccount,
        grant: &OAuthGrant,
        clock: &dyn Clock,
    ) -> Result<MailAccount, CoreError> {
        let id = random_id()?;
        let provider = serde_json::to_string(&grant.provider)
            .map_err(|e| CoreError::Internal(format!("the OAuth2 provider: {e}")))?;
        self.store_tokens(&id, &grant.tokens, grant.client_secret.as_ref(), clock)?;
        let inserted = self.insert_account(
            &id,
            &super::roster::Row::new(new, "oauth2", provider, clock.now_unix()),
        );
        if let Err(e) = inserted {
            // Nothing half-made stays behind.
            let _ = self.u.delete_secret(&oauth_secret(&id));
            return Err(e);
        }
        self.publish_account(&id)?;
        self.account(&id)
    }

    /// Replaces the tokens (and the provider) of an OAuth2 account after a new sign-in
    /// (when the old grant was refused). Refused for a password account.
    pub fn replace_oauth_grant(
        &self,
        account: &MailAccount,
        grant: &OAuthGrant,
        clock: &dyn Clock,
    ) -> Result<(), CoreError> {
        if self.auth(account)? == AccountAuth::Password {
            return Err(invalid("account for an OAuth2 sign-in", &account.address));
        }
        let provider = serde_json::to_string(&grant.provider)
            .map_err(|e| CoreError::Internal(format!("the OAuth2 provider: {e}")))?;
        self.store_tokens(
            &account.id,
            &grant.tokens,
            grant.client_secret.as_ref(),
            clock,
        )?;
        self.conn.execute(
            "UPDATE account SET oauth_provider = ?2 WHERE id = ?1",
            params![account.id, provider],
        )?;
        self.publish_account(&account.id)
    }

    /// How `account` logs in.
    pub fn auth(&self, account: &MailAccount) -> Result<AccountAuth, CoreError> {
        let row: Option<(String, String)> = self
            .conn
            .prepare_cached("SELECT auth, oauth_provider FROM account WHERE id = ?1")?
            .query_row([&account.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (auth, provider) = row.ok_or_else(|| CoreError::NoMailAccount(account.id.clone()))?;
        if auth != "oauth2" {
            return Ok(AccountAuth::Password);
        }
        let provider = serde_json::from_str(&provider)
            .map_err(|e| damaged(format!("the OAuth2 provider of {}", account.address), e))?;
        Ok(AccountAuth::OAuth2(provider))
    }

    /// The OAuth2 credentials of `account`, the access token refreshed when due.
    pub(super) async fn oauth_credentials(&mut self,
        account: &MailAccount,
        provider: &OAuthProvider,
    ) -> Result<Credentials, CoreError> {
        let stored = self.stored_tokens(account)?;
        if !stored.tokens.needs_refresh(unix_now(&*self.clock)) {
            return Ok(stored
                .tokens
                .credentials(&account.login, provider.mechanism));
        }
        let lock = refresh_lock(&account.id);
        let _one_at_a_time = lock.lock().await;
        // Another refresh may have stored new tokens while this one waited.
        let stored = self.stored_tokens(account)?;
        let now = unix_now(&*self.clock);
        if !stored.tokens.needs_refresh(now) {
            return Ok(stored
                .tokens
                .credentials(&account.login, provider.mechanism));
        }
        let mut client = OAuthClient::new(provider.mail_provider(), provider.client_id.clone())?;
        client.client_secret = stored
            .client_secret
            .as_ref()
            .map(|s| Secret::new(s.as_str()));
        let fresh = match oauth::try_refresh(&client, &stored.tokens, now).await {
            Ok(t) => t,
            Err(RefreshError::Refused(why)) => {
                return Err(sign_in_again(account, provider, &why));
            }
            Err(RefreshError::Failed(e)) => return Err(e.into()),
        };
        // Stored before used: a rotated refresh token must not be lost.
        self.store_tokens(
            &account.id,
            &fresh,
            client.client_secret.as_ref(),
            &*self.clock,
        )?;
        Ok(fresh.credentials(&account.login, provider.mechanism))
    }

    fn stored_tokens(&self, account: &MailAccount) -> Result<StoredTokens, CoreError> {
        let plain = self.u.secret(&oauth_secret(&account.id))?.ok_or_else(|| {
            CoreError::NoMailAccount(format!(
                "{} has no OAuth2 sign-in on this device: sign in to the account again",
                account.address
            ))
        })?;
        serde_json::from_slice(plain.expose())
            .map_err(|e| damaged(format!("the OAuth2 tokens of {}", account.address), e))
    }

    fn store_tokens(
        &self,
        id: &str,
        tokens: &Tokens,
        client_secret: Option<&Secret>,
        clock: &dyn Clock,
    ) -> Result<(), CoreError> {
        let stored = StoredTokens {
            tokens: tokens.clone(),
            client_secret: client_secret.map(|s| Zeroizing::new(s.expose().to_owned())),
        };
        let plain = Zeroizing::new(
            serde_json::to_vec(&stored)
                .map_err(|e| CoreError::Internal(format!("the OAuth2 tokens: {e}")))?,
        );
        self.u.put_secret(&oauth_secret(id), &plain, clock)
    }
}

/// The account to store for a finished sign-in: the servers given, else the preset's,
/// else found for the address (`discovery`); the login given, else what discovery
/// found, else the address. Checked with the token (IMAP login and folder list, SMTP
/// login) before anything is stored.
pub async fn checked_account(
    grant: &OAuthGrant,
    address: &str,
    login: Option<String>,
    servers: (Option<Server>, Option<Server>),
    extra_roots_pem: &str,
    discovery: &sealpost_mail::autoconfig::Discovery,
) -> Result<NewAccount, CoreError> {
    let address = address.trim();
    let (imap, smtp) = (
        servers.0.or_else(|| grant.imap.clone()),
        servers.1.or_else(|| grant.smtp.clone()),
    );
    let (imap, smtp, found_login) = match (imap, smtp) {
        (Some(i), Some(s)) => (i, s, None),
        (i, s) => {
            let found = sealpost_mail::autoconfig::discover(discovery, address).await?;
            (
                i.unwrap_or(found.imap),
                s.unwrap_or(found.smtp),
                Some(found.imap_username),
            )
        }
    };
    let new = NewAccount {
        address: address.to_owned(),
        login: login.or(found_login).unwrap_or_else(|| address.to_owned()),
        imap,
        smtp,
        extra_roots_pem: extra_roots_pem.to_owned(),
    };
    let probe = MailAccount {
        id: String::new(),
        address: new.address.clone(),
        login: new.login.clone(),
        imap: new.imap.clone(),
        smtp: new.smtp.clone(),
        extra_roots_pem: new.extra_roots_pem.clone(),
    };
    probe.check(&grant.credentials(&new.login)).await?;
    Ok(new)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_named_or_given_by_url() {
        assert_eq!(OAuthChoice::parse("Google").unwrap(), OAuthChoice::Google);
        assert_eq!(
            OAuthChoice::parse("outlook").unwrap(),
            OAuthChoice::Microsoft
        );
        assert_eq!(
            OAuthChoice::parse("https://id.example.org/realms/mail").unwrap(),
            OAuthChoice::Issuer("https://id.example.org/realms/mail".into())
        );
        assert_eq!(
            OAuthChoice::parse("http://127.0.0.1:8080").unwrap(),
            OAuthChoice::Issuer("http://127.0.0.1:8080".into())
        );
        // Plain HTTP is for a provider on this machine only; nonsense is refused.
        assert!(OAuthChoice::parse("http://id.example.org").is_err());
        assert!(OAuthChoice::parse("yahoo").is_err());
        assert!(OAuthChoice::parse("https://").is_err());
    }

    #[test]
    fn a_generic_provider_needs_a_client_id_and_none_is_invented() {
        let issuer = OAuthChoice::Issuer("https://id.example.org".into());
        let e = OAuthApp::for_choice(&issuer, None).unwrap_err();
        assert!(e.to_string().contains("client id"), "{e}");
        let app = OAuthApp::for_choice(&issuer, Some(" sealpost ".into())).unwrap();
        assert_eq!(app.client_id, "sealpost");
        // A given id wins over the environment, for the presets too.
        let app = OAuthApp::for_choice(&OAuthChoice::Microsoft, Some("given".into())).unwrap();
        assert_eq!(app.client_id, "given");
    }

    #[test]
    fn stored_tokens_round_trip_and_debug_shows_no_token() {
        let stored = StoredTokens {
            tokens: Tokens {
                access_token: Secret::new("access-123"),
                refresh_token: Some(Secret::new("refresh-456")),
                expires_at: Some(99),
            },
            client_secret: None,
        };
        let json = serde_json::to_vec(&stored).unwrap();
        let back: StoredTokens = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.tokens.access_token, Secret::new("access-123"));
        assert_eq!(back.tokens.expires_at, Some(99));
        let grant = OAuthGrant {
            provider: OAuthProvider {
                name: "p".into(),
                issuer: None,
                authorization_endpoint: "https://a".into(),
                token_endpoint: "https://t".into(),
                scopes: vec![],
                mechanism: SaslMechanism::XOAuth2,
                client_id: "c".into(),
            },
            tokens: back.tokens,
            client_secret: Some(Secret::new("cs-789")),
            imap: None,
            smtp: None,
        };
        let debug = format!("{grant:?}");
        for secret in ["access-123", "refresh-456", "cs-789"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
