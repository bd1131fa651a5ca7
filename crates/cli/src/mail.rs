//! `sealpost mail …`: mail on this profile, through the core's mail engine
//! (`sealpost_core::mailbox`): accounts, sync, the list, reading, sending through the
//! outbox, search. `mail open` is the app's read path on one message file: decrypt,
//! verify, and print what the reader would show.
//!
//! Standard input, with `--password-stdin`: the profile password on the first line,
//! then the mail password (`account add` without `--oauth`); `send` reads the body from
//! what follows.
//!
//! `account add --oauth google|microsoft|ISSUER_URL` signs in with OAuth2 instead of a
//! password: the address to open is printed on standard error (and the browser is
//! tried), and the command waits for the browser to come back to it.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sealpost_core::keys::{self, KeySource, Keyring};
use sealpost_core::mailbox::oauth::{self as mail_oauth, AccountAuth, OAuthApp, OAuthChoice};
use sealpost_core::mailbox::{
    Compose, MailAccount, Mailbox as MailStore, MessageState, MessageSummary, NewAccount,
};
use sealpost_core::{CoreError, SystemClock, vault};
use sealpost_mail::{Secret, Server};
use sealpost_pgp::{
    BadSignature, EncryptionStatus, Mailbox, OpenedMail, SignatureStatus, open_mail,
};
use serde_json::json;
use zeroize::Zeroizing;

use crate::PasswordSource;
use crate::input::Input;
use crate::output::Out;

#[derive(Subcommand, Debug)]
pub enum MailCmd {
    /// Open a stored message (an RFC 5322 file) as the reader would: the parts, the
    /// protected subject, the encryption and signature status. A valid Autocrypt key in
    /// its headers is remembered for the sender.
    Open {
        /// The message file.
        file: PathBuf,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Mail accounts: add, test, list.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Fetch new mail, flags and deletions from the server; send what waits in the outbox.
    Sync {
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// List a folder's messages, newest first.
    List {
        /// The folder (its IMAP name).
        #[arg(long, default_value = "INBOX")]
        folder: String,
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Read a message by its id from `mail list`: decrypted and verified.
    Read {
        /// The message id.
        id: i64,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Set or clear flags of a message, on the server too (`seen`, `flagged`,
    /// `answered`, `deleted`, `draft`, or a keyword such as `$Forwarded`).
    Flag {
        /// The message id.
        id: i64,
        /// A flag to set (repeat for several).
        #[arg(long)]
        add: Vec<String>,
        /// A flag to clear (repeat for several).
        #[arg(long)]
        remove: Vec<String>,
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Move a message to another folder, on the server too; the next `mail sync` lists
    /// it there.
    Move {
        /// The message id.
        id: i64,
        /// The destination folder (its IMAP name).
        folder: String,
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Send a message; the text is read from standard input (after the password). It
    /// waits in the outbox until the server has it and a copy is in Sent.
    Send {
        /// A recipient (repeat for several).
        #[arg(long, required = true)]
        to: Vec<String>,
        /// A copy recipient (repeat for several).
        #[arg(long)]
        cc: Vec<String>,
        /// The subject.
        #[arg(long)]
        subject: String,
        /// Encrypt and sign (refused when a recipient has no known key).
        #[arg(long)]
        encrypt: bool,
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// The outbox: list it, or answer for a message that may have been sent (the app
    /// was stopped while the server took it, and it is not in Sent): send it again, or
    /// discard it. Such a message is never sent again without being told to.
    #[command(subcommand)]
    Outbox(OutboxCmd),
    /// Find messages containing every word (whole words, any case; encrypted mail too).
    Search {
        /// The words.
        #[arg(required = true)]
        words: Vec<String>,
        #[command(flatten)]
        source: PasswordSource,
    },
}

#[derive(Subcommand, Debug)]
pub enum OutboxCmd {
    /// What waits: `queued`, `sending`, `inDoubt` (may have been sent) or `sent` (its
    /// copy in Sent not made yet).
    List {
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Send an entry in doubt again (with the next `mail sync`).
    Resend {
        /// The entry's id from `mail outbox list`.
        id: i64,
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Do not send an entry (in doubt, or not sent yet).
    Discard {
        /// The entry's id from `mail outbox list`.
        id: i64,
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        source: PasswordSource,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Add an account. The mail password is read after the profile password and kept
    /// only in the vault; with --oauth the account signs in at the provider instead
    /// (the tokens are kept only in the vault). Without --imap and --smtp the servers
    /// are the provider's or are looked up (autoconfig, then the usual names).
    Add {
        /// The e-mail address.
        #[arg(long)]
        address: String,
        /// Sign in with OAuth2 instead of a password: `google`, `microsoft`, or the
        /// issuer URL of an OpenID provider. Prints the address to open in a browser
        /// and waits for the sign-in.
        #[arg(long, value_name = "google|microsoft|ISSUER_URL")]
        oauth: Option<String>,
        /// The app's OAuth2 client id at the provider (default for google and
        /// microsoft: $SEALPOST_GOOGLE_CLIENT_ID, $SEALPOST_MICROSOFT_CLIENT_ID).
        #[arg(long, requires = "oauth")]
        client_id: Option<String>,
        /// With --oauth: only print the address to open, do not start a browser.
        #[arg(long, requires = "oauth")]
        no_browser: bool,
        /// The login name (default: the address).
        #[arg(long)]
        login: Option<String>,
        /// The IMAP server, HOST:PORT.
        #[arg(long, value_name = "HOST:PORT")]
        imap: Option<String>,
        /// The SMTP server, HOST:PORT.
        #[arg(long, value_name = "HOST:PORT")]
        smtp: Option<String>,
        /// The given servers use STARTTLS, not implicit TLS.
        #[arg(long)]
        starttls: bool,
        /// Also trust the CA certificates in this PEM file for this account.
        #[arg(long, value_name = "PEM")]
        ca_file: Option<PathBuf>,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Log in to IMAP and SMTP (nothing is sent) and say what fails, in words.
    Test {
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// List the accounts.
    List {
        #[command(flatten)]
        source: PasswordSource,
    },
}

/// Which account a command is about.
#[derive(Args, Debug)]
pub struct Which {
    /// The account's address (default: the only account).
    #[arg(long)]
    account: Option<String>,
}

fn mailbox(m: &Mailbox) -> serde_json::Value {
    json!({ "name": m.name, "address": m.address })
}

fn bad_reason(r: &BadSignature) -> &'static str {
    match r {
        BadSignature::Invalid => "invalid",
        BadSignature::UnknownKey => "unknown_key",
        BadSignature::NotFromSender => "not_from_sender",
        BadSignature::NoSender => "no_sender",
        BadSignature::Expired => "expired",
        BadSignature::Revoked => "revoked",
        BadSignature::InvalidKey => "invalid_key",
        BadSignature::SeveralSignatures => "several_signatures",
        _ => "other",
    }
}

/// The status a UI shows, in words and as a stable code.
pub(crate) fn signature_json(s: &SignatureStatus) -> serde_json::Value {
    match s {
        SignatureStatus::Verified { signer } => json!({
            "status": "verified", "signer": signer.to_hex(),
        }),
        SignatureStatus::ValidUnconfirmed { signer } => json!({
            "status": "valid_unconfirmed", "signer": signer.to_hex(),
        }),
        SignatureStatus::Bad { reason, signer } => json!({
            "status": "bad",
            "reason": bad_reason(reason),
            "signer": signer.as_ref().map(|f| f.to_hex()),
        }),
        SignatureStatus::Unsigned => json!({ "status": "unsigned" }),
        // A status this build does not know is never shown as good.
        _ => json!({ "status": "bad", "reason": "other" }),
    }
}

fn encryption_json(e: &EncryptionStatus) -> serde_json::Value {
    match e {
        EncryptionStatus::Encrypted => json!({ "status": "encrypted" }),
        EncryptionStatus::NotEncrypted => json!({ "status": "not_encrypted" }),
        EncryptionStatus::CannotDecrypt(why) => json!({
            "status": "cannot_decrypt", "reason": why.to_string(),
        }),
    }
}

fn opened_json(m: &OpenedMail) -> serde_json::Value {
    json!({
        "subject": m.subject,
        "subjectProtected": m.subject_protected,
        "from": m.from.as_ref().map(mailbox),
        "to": m.to.iter().map(mailbox).collect::<Vec<_>>(),
        "cc": m.cc.iter().map(mailbox).collect::<Vec<_>>(),
        "date": m.date,
        "messageId": m.message_id,
        "text": m.text,
        "html": m.html,
        "attachments": m.attachments.iter().map(|a| json!({
            "name": a.name, "contentType": a.content_type, "size": a.data.len(),
        })).collect::<Vec<_>>(),
        "encryption": encryption_json(&m.encryption),
        "signature": signature_json(&m.signature),
    })
}

fn summary(m: &OpenedMail) -> String {
    let signature = match &m.signature {
        SignatureStatus::Verified { signer } => format!("signed, key confirmed ({signer})"),
        SignatureStatus::ValidUnconfirmed { signer } => {
            format!("signed by a key not yet confirmed ({signer})")
        }
        SignatureStatus::Bad { reason, .. } => format!("BAD signature ({})", bad_reason(reason)),
        SignatureStatus::Unsigned => "not signed".into(),
        _ => "BAD signature".into(),
    };
    let encryption = match &m.encryption {
        EncryptionStatus::Encrypted => "encrypted".to_owned(),
        EncryptionStatus::NotEncrypted => "not encrypted".to_owned(),
        EncryptionStatus::CannotDecrypt(why) => format!("cannot decrypt: {why}"),
    };
    format!(
        "From: {}\nSubject: {}\n[{encryption}; {signature}]\n\n{}",
        m.from.as_ref().map_or(String::new(), |f| f.address.clone()),
        m.subject.as_deref().unwrap_or(""),
        m.text.as_deref().unwrap_or("")
    )
}

pub fn run(cmd: MailCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    let clock = SystemClock;
    match cmd {
        MailCmd::Open { file, source } => {
            let raw = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let u = vault::open(dir)?
                .unlock(&Input::new(source.password_stdin).password("Password: ")?)?;
            let ring = Keyring::load(&u, &clock)?;
            let opened = open_mail(&raw, &ring.context(keys::system_time(&clock)))?;
            let mut v = opened_json(&opened);
            if let (Some(ac), Some(map)) = (&opened.autocrypt, v.as_object_mut()) {
                let bytes = sealpost_pgp::contact::public_bytes(&ac.cert)?;
                let seen = keys::observe_key(&u, &ac.addr, &bytes, KeySource::Autocrypt, &clock);
                let mut a = match &seen {
                    Ok(o) => crate::key::observation_json(o),
                    Err(e) => json!({ "observation": "refused", "reason": e.to_string() }),
                };
                if let Some(am) = a.as_object_mut() {
                    am.insert("addr".into(), json!(ac.addr));
                    am.insert("fingerprint".into(), json!(ac.fingerprint().to_hex()));
                }
                map.insert("autocrypt".into(), a);
            }
            out.value(&v, &summary(&opened));
        }
        other => engine(other, dir, out)?,
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn unlock(dir: &Path, input: &mut Input) -> anyhow::Result<vault::Unlocked> {
    Ok(vault::open(dir)?.unlock(&input.password("Password: ")?)?)
}

/// The mail password: a line of standard input, or the terminal without echo. Not
/// normalised (the server compares bytes).
fn mail_password(from_stdin: bool, address: &str) -> anyhow::Result<Secret> {
    let mut line = Zeroizing::new(String::new());
    if from_stdin {
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the mail password from standard input")?;
        if n == 0 {
            bail!("expected the mail password on standard input, found the end of input");
        }
        while line.ends_with('\n') || line.ends_with('\r') {
            line.pop();
        }
    } else {
        line = Zeroizing::new(
            rpassword::prompt_password(format!("Mail password for {address}: "))
                .context("cannot read the mail password from the terminal; use --password-stdin")?,
        );
    }
    Ok(Secret::new(line.as_str()))
}

/// Where `mail account add` looks for settings: the usual places, trusting the
/// account's extra CA too. [`AUTOCONFIG_URL_ENV`] replaces the places with one URL
/// template (tests serve the document from loopback).
fn discovery(extra_roots_pem: &str) -> anyhow::Result<sealpost_mail::autoconfig::Discovery> {
    let mut d = sealpost_mail::autoconfig::Discovery::default();
    if let Some(url) = std::env::var(AUTOCONFIG_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
    {
        d.autoconfig_urls = vec![url];
        d.imap_guesses.clear();
        d.smtp_guesses.clear();
    }
    Ok(d.with_extra_roots_pem(extra_roots_pem)?)
}

/// An autoconfig URL template (`{domain}`, `{email}`) to use instead of the usual ones.
const AUTOCONFIG_URL_ENV: &str = "SEALPOST_AUTOCONFIG_URL";

/// The IMAP and SMTP servers given on the command line, if any.
type GivenServers = (Option<Server>, Option<Server>);

/// What `mail account add` was told instead of finding it: the extra CA file's text
/// (empty without one) and the IMAP and SMTP servers given as `HOST:PORT`.
fn given_servers(
    ca_file: Option<&std::path::Path>,
    imap: Option<&str>,
    smtp: Option<&str>,
    starttls: bool,
) -> anyhow::Result<(String, GivenServers)> {
    let extra_roots_pem = match ca_file {
        Some(f) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        None => String::new(),
    };
    let server = |s: Option<&str>| s.map(|s| host_port(s, starttls)).transpose();
    Ok((extra_roots_pem, (server(imap)?, server(smtp)?)))
}

fn host_port(s: &str, starttls: bool) -> anyhow::Result<Server> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("{s:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("{s:?}: the port is not a number"))?;
    Ok(if starttls {
        Server::starttls(host, port)
    } else {
        Server::tls(host, port)
    })
}

fn pick(mb: &MailStore<'_>, which: &Which) -> anyhow::Result<MailAccount> {
    if let Some(a) = &which.account {
        return Ok(mb.account(a)?);
    }
    let mut all = mb.accounts()?;
    match all.len() {
        0 => Err(CoreError::NoMailAccount(
            "(none yet: add one with `sealpost mail account add`)".into(),
        )
        .into()),
        1 => Ok(all.remove(0)),
        _ => bail!("this profile has several mail accounts: choose one with --account"),
    }
}

fn account_json(a: &MailAccount, auth: &AccountAuth) -> serde_json::Value {
    let (kind, provider) = match auth {
        AccountAuth::Password => ("password", None),
        AccountAuth::OAuth2(p) => ("oauth2", Some(p.name.as_str())),
    };
    json!({
        "id": a.id,
        "address": a.address,
        "login": a.login,
        "imap": a.imap,
        "smtp": a.smtp,
        "auth": kind,
        "provider": provider,
    })
}

/// Shows the OAuth2 sign-in address on standard error (standard output stays the
/// command's answer) and, when `browser`, tries the system browser; a browser that does
/// not start is no error: the address is there to open by hand.
fn show_sign_in_url(url: &str, address: &str, browser: bool) {
    eprintln!(
        "To sign in {address}, open this address in a browser:\n\n  {url}\n\n\
         Waiting for the sign-in to finish (up to {} minutes)...",
        mail_oauth::SIGN_IN_TIMEOUT.as_secs() / 60
    );
    if browser {
        let mut cmd = if cfg!(target_os = "macos") {
            std::process::Command::new("open")
        } else if cfg!(windows) {
            let mut c = std::process::Command::new("rundll32");
            c.arg("url.dll,FileProtocolHandler");
            c
        } else {
            std::process::Command::new("xdg-open")
        };
        let _ = cmd
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

fn list_text(list: &[MessageSummary]) -> String {
    if list.is_empty() {
        return "(no messages)".into();
    }
    list.iter()
        .map(|m| {
            let mut marks = String::new();
            if !m.flags.iter().any(|f| f == "\\Seen") {
                marks.push('*');
            }
            if m.encrypted {
                marks.push_str(" [encrypted]");
            }
            if m.signed {
                marks.push_str(" [signed]");
            }
            match m.state {
                MessageState::Unreadable => format!(
                    "{:>5}  (unreadable message, {} bytes, kept as received)",
                    m.id, m.size
                ),
                _ => format!("{:>5}{marks}  {}  {}", m.id, m.from, m.subject),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every command that works on the mail store.
fn engine(cmd: MailCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    let clock = SystemClock;
    let rt = runtime()?;
    match cmd {
        MailCmd::Open { .. } => bail!("`mail open` does not use the mail store"),
        MailCmd::Account(AccountCmd::Add {
            address,
            oauth: Some(provider),
            client_id,
            no_browser,
            login,
            imap,
            smtp,
            starttls,
            ca_file,
            source,
        }) => {
            // Everything that can be refused is, before the browser opens.
            let choice = OAuthChoice::parse(&provider)?;
            let app = OAuthApp::for_choice(&choice, client_id)?;
            let (extra_roots_pem, given) = given_servers(
                ca_file.as_deref(),
                imap.as_deref(),
                smtp.as_deref(),
                starttls,
            )?;
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let grant = rt.block_on(mail_oauth::sign_in(
                &choice,
                app,
                &address,
                |url| {
                    show_sign_in_url(url, &address, !no_browser);
                    Ok(())
                },
                mail_oauth::SIGN_IN_TIMEOUT,
                &clock,
            ))?;
            let new = rt.block_on(mail_oauth::checked_account(
                &grant,
                &address,
                login,
                given,
                &extra_roots_pem,
                &discovery(&extra_roots_pem)?,
            ))?;
            let mb = MailStore::open(&u, &clock)?;
            let account = mb.add_oauth_account(&new, &grant, &clock)?;
            let auth = mb.auth(&account)?;
            out.value(
                &account_json(&account, &auth),
                &format!(
                    "added {} signed in at {} (IMAP {}:{}, SMTP {}:{})",
                    account.address,
                    grant.provider.name,
                    account.imap.host,
                    account.imap.port,
                    account.smtp.host,
                    account.smtp.port
                ),
            );
        }
        MailCmd::Account(AccountCmd::Add {
            address,
            oauth: None,
            login,
            imap,
            smtp,
            starttls,
            ca_file,
            source,
            ..
        }) => {
            let mut input = Input::new(source.password_stdin);
            let u = unlock(dir, &mut input)?;
            let password = mail_password(source.password_stdin, &address)?;
            let (extra_roots_pem, given) = given_servers(
                ca_file.as_deref(),
                imap.as_deref(),
                smtp.as_deref(),
                starttls,
            )?;
            let (imap, smtp, found_login) = match given {
                (Some(i), Some(s)) => (i, s, None),
                (i, s) => {
                    let settings = rt.block_on(sealpost_mail::autoconfig::discover(
                        &discovery(&extra_roots_pem)?,
                        &address,
                    ))?;
                    (
                        i.unwrap_or(settings.imap),
                        s.unwrap_or(settings.smtp),
                        Some(settings.imap_username),
                    )
                }
            };
            let mb = MailStore::open(&u, &clock)?;
            let account = mb.add_account(
                &NewAccount {
                    login: login.or(found_login).unwrap_or_else(|| address.clone()),
                    address,
                    imap,
                    smtp,
                    extra_roots_pem,
                },
                &password,
                &clock,
            )?;
            out.value(
                &account_json(&account, &AccountAuth::Password),
                &format!(
                    "added {} (IMAP {}:{}, SMTP {}:{})",
                    account.address,
                    account.imap.host,
                    account.imap.port,
                    account.smtp.host,
                    account.smtp.port
                ),
            );
        }
        MailCmd::Account(AccountCmd::Test { which, source }) => {
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let account = pick(&mb, &which)?;
            rt.block_on(mb.test_account(&account))?;
            out.message(&format!("{}: IMAP and SMTP work", account.address));
        }
        MailCmd::Account(AccountCmd::List { source }) => {
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let all = mb
                .accounts()?
                .into_iter()
                .map(|a| Ok((mb.auth(&a)?, a)))
                .collect::<Result<Vec<_>, CoreError>>()?;
            let text = all
                .iter()
                .map(|(auth, a)| match auth {
                    AccountAuth::Password => format!("{}  {}", a.address, a.id),
                    AccountAuth::OAuth2(p) => {
                        format!("{}  {}  (signed in at {})", a.address, a.id, p.name)
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.value(
                &json!(
                    all.iter()
                        .map(|(auth, a)| account_json(a, auth))
                        .collect::<Vec<_>>()
                ),
                &text,
            );
        }
        MailCmd::Sync { which, source } => {
            let mut input = Input::new(source.password_stdin);
            let pw = input.password("Password: ")?;
            let u = vault::open(dir)?.unlock(&pw)?;
            let mb = MailStore::open(&u, &clock)?;
            let account = pick(&mb, &which)?;
            let flushed = rt.block_on(mb.flush_outbox(&account, &clock))?;
            let report = rt.block_on(mb.sync(&account, &clock))?;
            // Proof mails of the key directory are confirmed by themselves.
            let mut published = Vec::new();
            for token in &report.directory_tokens {
                match sealpost_core::sync::confirm_published_key(&u, &pw, token, &clock) {
                    Ok(entry) => published.push(entry.address.to_string()),
                    // Someone else's claim, or spent already: nothing to do.
                    Err(sealpost_core::CoreError::Sync(e))
                        if e.api_code() == Some("unknown_token") => {}
                    Err(e) => out.warning(&format!(
                        "a key directory proof mail could not be confirmed: {e}"
                    )),
                }
            }
            for address in &published {
                if !out.is_json() {
                    out.message(&format!("published the key for {address}"));
                }
            }
            out.value(
                &json!({ "sync": report, "outbox": flushed, "publishedKeys": published }),
                &format!(
                    "{} folders: {} new, {} removed, {} flag changes, {} unreadable; outbox: {} sent{}",
                    report.folders,
                    report.new,
                    report.removed,
                    report.flags_changed,
                    report.unreadable,
                    flushed.cleared,
                    if flushed.in_doubt.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", {} may have been sent (see `sealpost mail outbox list`)",
                            flushed.in_doubt.len()
                        )
                    }
                ),
            );
        }
        MailCmd::Outbox(OutboxCmd::List { which, source }) => {
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let account = pick(&mb, &which)?;
            let entries = mb.outbox(&account)?;
            let text = entries
                .iter()
                .map(|e| {
                    format!(
                        "{}  {}  to {}  \"{}\"{}",
                        e.id,
                        e.state,
                        e.recipients.join(", "),
                        e.subject,
                        if e.last_error.is_empty() {
                            String::new()
                        } else {
                            format!("  ({})", e.last_error)
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.value(&json!(entries), &text);
        }
        MailCmd::Outbox(OutboxCmd::Resend { id, which, source }) => {
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let account = pick(&mb, &which)?;
            mb.resend_outbox_entry(&account, id)?;
            out.message(&format!("{id} goes again with the next `mail sync`"));
        }
        MailCmd::Outbox(OutboxCmd::Discard { id, which, source }) => {
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let account = pick(&mb, &which)?;
            mb.discard_outbox_entry(&account, id)?;
            out.message(&format!("{id} is discarded"));
        }
        MailCmd::List {
            folder,
            which,
            source,
        } => {
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let account = pick(&mb, &which)?;
            let list = mb.list(&account, &folder)?;
            out.value(&json!(list), &list_text(&list));
        }
        MailCmd::Read { id, source } => {
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let read = mb.read(id, &clock)?;
            let s = &read.summary;
            match &read.opened {
                Some(opened) => {
                    let mut v = opened_json(opened);
                    if let Some(map) = v.as_object_mut() {
                        map.insert("id".into(), json!(s.id));
                        map.insert("folder".into(), json!(s.folder));
                        map.insert("flags".into(), json!(s.flags));
                        map.insert("state".into(), json!(s.state));
                    }
                    out.value(&v, &summary(opened));
                }
                None => out.value(
                    &json!({ "id": s.id, "folder": s.folder, "state": s.state, "size": s.size }),
                    &format!(
                        "message {} is unreadable: kept as received ({} bytes)",
                        s.id, s.size
                    ),
                ),
            }
        }
        MailCmd::Flag {
            id,
            add,
            remove,
            which,
            source,
        } => {
            let parse = |v: &[String]| -> Result<Vec<_>, CoreError> {
                v.iter()
                    .map(|f| sealpost_core::mailbox::parse_flag(f))
                    .collect()
            };
            let (add, remove) = (parse(&add)?, parse(&remove)?);
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let account = pick(&mb, &which)?;
            rt.block_on(mb.set_flags(&account, id, &add, &remove))?;
            let flags = mb.summary(id)?.flags;
            out.value(
                &json!({ "id": id, "flags": flags }),
                &format!("message {id}: {}", flags.join(" ")),
            );
        }
        MailCmd::Move {
            id,
            folder,
            which,
            source,
        } => {
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let account = pick(&mb, &which)?;
            rt.block_on(mb.move_message(&account, id, &folder))?;
            out.message(&format!("message {id} moved to {folder}"));
        }
        MailCmd::Send {
            to,
            cc,
            subject,
            encrypt,
            which,
            source,
        } => {
            let mut input = Input::new(source.password_stdin);
            let u = unlock(dir, &mut input)?;
            let mb = MailStore::open(&u, &clock)?;
            let account = pick(&mb, &which)?;
            let body = input.rest("Type the message, then end it with Ctrl-D:")?;
            let text = Zeroizing::new(
                String::from_utf8(body.expose().to_vec())
                    .context("the message text is not UTF-8")?,
            );
            let entry = mb.queue(
                &account,
                &Compose {
                    to,
                    cc,
                    subject,
                    text: text.to_string(),
                    encrypt,
                    ..Compose::default()
                },
                &clock,
            )?;
            let report = rt.block_on(mb.flush_outbox(&account, &clock))?;
            if let Some((_, why)) = report.failed.iter().find(|(id, _)| *id == entry.id) {
                bail!(
                    "not sent yet: {why}; it waits in the outbox and goes with the next `mail sync`"
                );
            }
            out.value(
                &json!({ "messageId": entry.message_id, "encrypted": encrypt, "status": "sent" }),
                &format!("sent <{}>", entry.message_id),
            );
        }
        MailCmd::Search { words, source } => {
            let u = unlock(dir, &mut Input::new(source.password_stdin))?;
            let mb = MailStore::open(&u, &clock)?;
            let list = mb.search(&words.join(" "))?;
            out.value(&json!(list), &list_text(&list));
        }
    }
    Ok(())
}
