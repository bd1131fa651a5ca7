//! Mail accounts: finding an address's servers, adding an account (with a password or
//! OAuth2), listing, checking and removing them. A new account gets the own key for its
//! address (made if there is none), its worker, and a settings sync that takes it, its
//! password or tokens and the key to the user's other devices — from the app and from
//! the command line alike.

use std::sync::Arc;
use std::time::Duration;

use sealpost_mail::autoconfig::{AccountSettings, AuthMethod, Discovery, Source};
use sealpost_mail::{Secret, Server};

use super::Open;
use super::mail::MailApi;
use super::views::{
    AccountSetup, MailAccountView, NewMailAccount, OAuthProvider, Security, ServerSettings,
    SetupSource,
};
use crate::mailbox::oauth::{self as mail_oauth, AccountAuth, OAuthApp, OAuthChoice};
use crate::mailbox::{MailAccount, NewAccount};
use crate::{CoreError, keys};

/// Opens a URL in the system browser; called once per sign-in and must not block (the
/// redirect is awaited after it returns).
pub type OpenUrl = Box<dyn FnOnce(&str) -> Result<(), CoreError> + Send>;

/// What an OAuth2 sign-in for a mail account needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSignIn {
    /// Where to sign in.
    pub provider: OAuthChoice,
    /// The e-mail address (the provider pre-fills it).
    pub address: String,
    /// The app's client id, when not from the environment (see `OAuthApp::for_choice`).
    pub client_id: Option<String>,
    /// The login for IMAP and SMTP (default: what discovery finds, else the address).
    pub login: Option<String>,
    /// The IMAP server (default: the preset's, else found for the address).
    pub imap: Option<ServerSettings>,
    /// The SMTP server (default: the preset's, else found for the address).
    pub smtp: Option<ServerSettings>,
    /// Extra CA certificates (PEM) this account's servers may use; empty for none.
    pub extra_roots_pem: String,
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
            extra_roots_pem: String::new(),
            timeout: mail_oauth::SIGN_IN_TIMEOUT,
        }
    }
}

impl ServerSettings {
    /// The server, checked: a host name, a port, a known security.
    pub fn to_server(&self) -> Result<Server, CoreError> {
        let host = self.host.trim();
        if host.is_empty() || self.port == 0 {
            return Err(CoreError::Mail(sealpost_mail::Error::Invalid {
                what: "server (it needs a host name and a port)",
                value: format!("{host}:{}", self.port),
            }));
        }
        Ok(match self.security {
            Security::Tls => Server::tls(host, self.port),
            Security::Starttls => Server::starttls(host, self.port),
        })
    }

    /// A server as the user edits it.
    pub fn of(s: &Server) -> Self {
        Self {
            host: s.host.clone(),
            port: s.port,
            security: match s.security {
                sealpost_mail::Security::StartTls => Security::Starttls,
                _ => Security::Tls,
            },
        }
    }
}

impl MailApi<'_> {
    /// Finds the servers of an address (autoconfig, then well-known names), trusting
    /// `extra_roots_pem` beside the public roots (empty: this core's).
    pub async fn discover(
        &self,
        address: String,
        extra_roots_pem: String,
    ) -> Result<AccountSetup, CoreError> {
        let discovery = self.discovery(&self.extra_roots(extra_roots_pem))?;
        let found = self
            .core
            .spawn(async move {
                let found = sealpost_mail::autoconfig::discover(&discovery, &address).await?;
                Ok(setup(address, &found))
            })
            .await?;
        Ok(found)
    }

    /// Checks the account against its servers (a wrong password leaves nothing behind),
    /// then stores it (the password in the vault only), makes the own key for its
    /// address if there is none, starts its worker, and syncs the settings.
    pub async fn add_account(&self, new: NewMailAccount) -> Result<MailAccountView, CoreError> {
        let address = new.address.trim().to_owned();
        check_address(&address)?;
        let login = match new.login.trim() {
            "" => address.clone(),
            l => l.to_owned(),
        };
        let account = NewAccount {
            address,
            login,
            imap: new.imap.to_server()?,
            smtp: new.smtp.to_server()?,
            extra_roots_pem: self.extra_roots(new.extra_roots_pem),
        };
        let password = Secret::new(new.password.as_str());
        self.core
            .job(move |open| async move {
                let probe = probe(&account);
                probe
                    .check(&sealpost_mail::Credentials::password(
                        account.login.clone(),
                        password.clone(),
                    ))
                    .await?;
                let o = Arc::clone(&open);
                let stored = crate::task::blocking(move || {
                    let mb = o.mailbox()?;
                    let stored = mb.add_account(&account, &password, &*o.clock);
                    o.give_back(mb);
                    stored
                })
                .await?;
                account_added(&open, stored).await
            })
            .await
    }

    /// Signs in at the provider (the browser opened through `open_url`), finds the
    /// servers (the preset's, or autoconfig), checks IMAP and SMTP with the token, then
    /// stores the account (the tokens in the vault only), makes the own key for its
    /// address if there is none, starts its worker and syncs the settings. Nothing is
    /// stored when any step fails.
    pub async fn add_oauth_account(
        &self,
        request: OAuthSignIn,
        open_url: OpenUrl,
    ) -> Result<MailAccountView, CoreError> {
        // Everything that can be refused is, before the browser opens.
        let address = request.address.trim().to_owned();
        check_address(&address)?;
        let app = OAuthApp::for_choice(&request.provider, request.client_id.clone())?;
        let extra_roots = self.extra_roots(request.extra_roots_pem.clone());
        let discovery = self.discovery(&extra_roots)?;
        let servers = (
            request
                .imap
                .as_ref()
                .map(ServerSettings::to_server)
                .transpose()?,
            request
                .smtp
                .as_ref()
                .map(ServerSettings::to_server)
                .transpose()?,
        );
        self.core
            .job(move |open| async move {
                let grant = mail_oauth::sign_in(
                    &request.provider,
                    app,
                    &address,
                    open_url,
                    request.timeout,
                    &*open.clock,
                )
                .await?;
                let new = mail_oauth::checked_account(
                    &grant,
                    &address,
                    request.login,
                    servers,
                    &extra_roots,
                    &discovery,
                )
                .await?;
                let o = Arc::clone(&open);
                let stored = crate::task::blocking(move || {
                    let mb = o.mailbox()?;
                    let stored = mb.add_oauth_account(&new, &grant, &*o.clock);
                    o.give_back(mb);
                    stored
                })
                .await?;
                account_added(&open, stored).await
            })
            .await
    }

    /// Signs an OAuth2 account in again (its grant was revoked or expired): a new
    /// sign-in at the same provider, checked against the servers, replaces the stored
    /// tokens; the account's worker starts again.
    pub async fn sign_in_again(
        &self,
        account_id: String,
        client_id: Option<String>,
        open_url: OpenUrl,
        timeout: Duration,
    ) -> Result<(), CoreError> {
        self.core
            .job(move |open| async move {
                let mb = open.mailbox()?;
                let found = mb.account(&account_id).and_then(|a| Ok((mb.auth(&a)?, a)));
                open.give_back(mb);
                let (account, provider) = match found? {
                    (AccountAuth::OAuth2(p), a) => (a, p),
                    (AccountAuth::Password, a) => {
                        return Err(CoreError::Mail(sealpost_mail::Error::Invalid {
                            what: "account for an OAuth2 sign-in (it uses a password)",
                            value: a.address,
                        }));
                    }
                };
                let choice = match &provider.issuer {
                    Some(issuer) => OAuthChoice::Issuer(issuer.clone()),
                    None if provider.token_endpoint.contains("googleapis.com") => {
                        OAuthChoice::Google
                    }
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
                    &*open.clock,
                )
                .await?;
                account.check(&grant.credentials(&account.login)).await?;
                let (o, a) = (Arc::clone(&open), account.clone());
                crate::task::blocking(move || {
                    let mb = o.mailbox()?;
                    let replaced = mb.replace_oauth_grant(&a, &grant, &*o.clock);
                    o.give_back(mb);
                    replaced
                })
                .await?;
                open.start_worker(account);
                open.sync_settings_later();
                Ok(())
            })
            .await
    }

    /// The mail accounts, oldest first.
    pub async fn accounts(&self) -> Result<Vec<MailAccountView>, CoreError> {
        self.core
            .with_store(|_, mb| {
                mb.accounts()?
                    .into_iter()
                    .map(|a| Ok(view(&a, &mb.auth(&a)?)))
                    .collect()
            })
            .await
    }

    /// Removes a mail account from this device and, through the settings, from the
    /// user's other devices (its worker stops first); refused while it holds unsent mail
    /// or drafts.
    pub async fn remove_account(&self, account_id: String) -> Result<(), CoreError> {
        let worker = self.core.open()?.workers_mut().remove(&account_id);
        let removed = self
            .core
            .with_store(move |_, mb| {
                let account = mb.account(&account_id)?;
                Ok(mb.remove_account(&account.id).map_err(|e| (e, account)))
            })
            .await;
        drop(worker);
        // Held again only now: nothing here keeps the keys past a lock that came meanwhile.
        let open = self.core.open();
        match removed {
            Ok(Ok(())) => {
                // The removal reaches the other devices.
                if let Ok(open) = open {
                    open.sync_settings_later();
                }
                Ok(())
            }
            Ok(Err((e, account))) => {
                // Still there: its worker goes on.
                if let Ok(open) = open {
                    open.start_worker(account);
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Logs in to IMAP (listing the folders) and to SMTP with the account's stored
    /// password or token, without sending: what fails is said in words.
    pub async fn test_account(
        &self,
        account: Option<String>,
    ) -> Result<MailAccountView, CoreError> {
        self.core
            .job(move |open| async move {
                let mut mb = open.mailbox()?;
                let result = async {
                    let account = super::mail::pick(&mb, account.as_deref())?;
                    mb.test_account(&account).await?;
                    Ok(view(&account, &mb.auth(&account)?))
                }
                .await;
                open.give_back(mb);
                result
            })
            .await
    }

    /// The account's extra CA roots: the given ones, else this core's (the demo's).
    fn extra_roots(&self, given: String) -> String {
        if given.trim().is_empty() {
            self.core.config().mail_extra_roots_pem.clone()
        } else {
            given
        }
    }

    /// Where autoconfig looks: the usual places, or the one URL template the core was
    /// given; trusting the account's extra CA too.
    fn discovery(&self, extra_roots_pem: &str) -> Result<Discovery, CoreError> {
        let mut d = Discovery::default();
        if let Some(url) = &self.core.config().autoconfig_url {
            d.autoconfig_urls = vec![url.clone()];
            d.imap_guesses.clear();
            d.smtp_guesses.clear();
        }
        Ok(d.with_extra_roots_pem(extra_roots_pem)?)
    }
}

/// What follows a new mail account once it is stored: the own key for its address (made
/// if there is none), its worker, and a settings sync so the key, the account and its
/// password or tokens reach the other devices.
async fn account_added(
    open: &Arc<Open>,
    account: MailAccount,
) -> Result<MailAccountView, CoreError> {
    let o = Arc::clone(open);
    let address = account.address.clone();
    let auth = crate::task::blocking(move || {
        let user = o.u.info().user_name.clone();
        keys::ensure_own_key(&o.u, &user, &[&address], &*o.clock)?;
        let mb = o.mailbox()?;
        let auth = mb.account(&address).and_then(|a| mb.auth(&a));
        o.give_back(mb);
        auth
    })
    .await?;
    let shown = view(&account, &auth);
    open.start_worker(account);
    open.sync_settings_later();
    Ok(shown)
}

/// An account that exists only to check its connection settings before it is stored.
fn probe(new: &NewAccount) -> MailAccount {
    MailAccount {
        id: String::new(),
        address: new.address.clone(),
        login: new.login.clone(),
        imap: new.imap.clone(),
        smtp: new.smtp.clone(),
        extra_roots_pem: new.extra_roots_pem.clone(),
    }
}

fn check_address(address: &str) -> Result<(), CoreError> {
    if address
        .split_once('@')
        .is_none_or(|(l, d)| l.is_empty() || d.is_empty())
    {
        return Err(CoreError::BadAddress(format!(
            "{address:?} is not an e-mail address"
        )));
    }
    Ok(())
}

pub(super) fn view(a: &MailAccount, auth: &AccountAuth) -> MailAccountView {
    MailAccountView {
        id: a.id.clone(),
        address: a.address.clone(),
        login: a.login.clone(),
        imap: ServerSettings::of(&a.imap),
        smtp: ServerSettings::of(&a.smtp),
        signed_in_at: match auth {
            AccountAuth::OAuth2(p) => Some(p.name.clone()),
            AccountAuth::Password => None,
        },
    }
}

fn setup(address: String, s: &AccountSettings) -> AccountSetup {
    let host = s.imap.host.to_ascii_lowercase();
    AccountSetup {
        address,
        login: s.imap_username.clone(),
        imap: ServerSettings::of(&s.imap),
        smtp: ServerSettings::of(&s.smtp),
        source: match s.source {
            Source::Autoconfig { .. } => SetupSource::Autoconfig,
            _ => SetupSource::Guess,
        },
        oauth: match s.auth {
            AuthMethod::OAuth2 if host.ends_with("gmail.com") || host.ends_with("google.com") => {
                Some(OAuthProvider::Google)
            }
            AuthMethod::OAuth2 => Some(OAuthProvider::Microsoft),
            _ => None,
        },
    }
}
