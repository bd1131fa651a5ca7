//! Mail accounts that sign in with OAuth2, for the app: the sign-in runs as an async job
//! on the session thread (it waits for the browser), like [`Session::add_mail_account`].
//! The caller opens the system browser: the desktop app with its opener plugin, tests
//! by playing the browser over HTTP.

use std::time::Duration;

use sealpost_mail::Server;

use super::Session;
use crate::CoreError;
use crate::mailbox::oauth::{self as mail_oauth, AccountAuth, OAuthApp, OAuthChoice};
use crate::mailbox::{MailAccount, Mailbox};

/// Opens a URL in the system browser; called once per sign-in, on the session thread,
/// and must not block (the redirect is awaited after it returns).
pub type OpenUrl = Box<dyn FnOnce(&str) -> Result<(), CoreError> + Send>;

/// What an OAuth2 sign-in for a mail account needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSignIn {
    /// Where to sign in.
    pub provider: OAuthChoice,
    /// The e-mail address (the provider pre-fills it).
    pub address: String,
    /// The app's client id, when not from the environment (see [`OAuthApp::for_choice`]).
    pub client_id: Option<String>,
    /// The login for IMAP and SMTP (default: what discovery finds, else the address).
    pub login: Option<String>,
    /// The IMAP server (default: the preset's, else found for the address).
    pub imap: Option<Server>,
    /// The SMTP server (default: the preset's, else found for the address).
    pub smtp: Option<Server>,
    /// How long to wait for the browser to come back.
    pub timeout: Duration,
}

impl OAuthSignIn {
    /// A sign-in at `provider` for `address`, everything else found or defaulted.
    pub fn new(provider: OAuthChoice, address: impl Into<String>) -> Self {
        Self {
            provider,
            address: address.into(),
            client_id: None,
            login: None,
            imap: None,
            smtp: None,
            timeout: mail_oauth::SIGN_IN_TIMEOUT,
        }
    }
}

impl Session {
    /// Signs in at the provider (the browser opened through `open_url`), finds the
    /// servers (the preset's, or autoconfig), checks IMAP and SMTP with the token, then
    /// stores the account (the tokens in the vault only), makes the own key for its
    /// address if there is none, and starts its worker. Nothing is stored when any step
    /// fails.
    pub async fn add_oauth_mail_account(
        &self,
        request: OAuthSignIn,
        open_url: OpenUrl,
    ) -> Result<MailAccount, CoreError> {
        // Everything that can be refused is, before the browser opens.
        let address = request.address.trim();
        if address
            .split_once('@')
            .is_none_or(|(l, d)| l.is_empty() || d.is_empty())
        {
            return Err(CoreError::BadAddress(format!(
                "{address:?} is not an e-mail address"
            )));
        }
        let app = OAuthApp::for_choice(&request.provider, request.client_id.clone())?;
        self.local(move |ctx| async move {
            let u = ctx.unlocked()?;
            let address = request.address.trim().to_owned();
            let grant = mail_oauth::sign_in(
                &request.provider,
                app,
                &address,
                open_url,
                request.timeout,
                &ctx.clock,
            )
            .await?;
            // The same trust as the account will have (extra roots only for `--demo`).
            let discovery = sealpost_mail::autoconfig::Discovery::default()
                .with_extra_roots_pem(&ctx.config.mail_extra_roots_pem)?;
            let new = mail_oauth::checked_account(
                &grant,
                &address,
                request.login,
                (request.imap, request.smtp),
                &ctx.config.mail_extra_roots_pem,
                &discovery,
            )
            .await?;
            let account =
                Mailbox::open(&u, &ctx.clock)?.add_oauth_account(&new, &grant, &ctx.clock)?;
            ctx.account_added(&u, &account)?;
            Ok(account)
        })
        .await
    }

    /// Signs an OAuth2 account in again (its grant was revoked or expired): a new
    /// sign-in at the same provider, checked against the servers, replaces the stored
    /// tokens; the account's worker starts again.
    pub async fn sign_in_mail_account_again(
        &self,
        account_id: String,
        client_id: Option<String>,
        open_url: OpenUrl,
        timeout: Duration,
    ) -> Result<(), CoreError> {
        self.local(move |ctx| async move {
            let u = ctx.unlocked()?;
            let (account, provider) = {
                let mb = Mailbox::open(&u, &ctx.clock)?;
                let account = mb.account(&account_id)?;
                match mb.auth(&account)? {
                    AccountAuth::OAuth2(p) => (account, p),
                    AccountAuth::Password => {
                        return Err(CoreError::Mail(sealpost_mail::Error::Invalid {
                            what: "account for an OAuth2 sign-in (it uses a password)",
                            value: account.address,
                        }));
                    }
                }
            };
            let choice = match &provider.issuer {
                Some(issuer) => OAuthChoice::Issuer(issuer.clone()),
                None if provider.token_endpoint.contains("googleapis.com") => OAuthChoice::Google,
                None => OAuthChoice::Microsoft,
            };
            let app = OAuthApp::for_choice(
                &choice,
                client_id.or_else(|| Some(provider.client_id.clone())),
            )?;
            let grant = mail_oauth::sign_in(
                &choice,
                app,
                &account.address,
                open_url,
                timeout,
                &ctx.clock,
            )
            .await?;
            account.check(&grant.credentials(&account.login)).await?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            mb.replace_oauth_grant(&account, &grant, &ctx.clock)?;
            drop(mb);
            ctx.start_worker(&u, account);
            ctx.sync_settings_later();
            Ok(())
        })
        .await
    }

    /// How a mail account logs in (password or OAuth2, and at which provider).
    pub async fn mail_account_auth(&self, account_id: String) -> Result<AccountAuth, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            mb.auth(&account)
        })
        .await
    }
}
