//! `sealpost mail …`: mail on this profile through the core's API: accounts, sync, the
//! list, reading, sending through the outbox, search. `mail read` and `mail open` print
//! the reader's view, the same as the app's.
//!
//! Standard input, with `--password-stdin`: the profile password on the first line,
//! then the mail password (`account add` without `--oauth`); `send` reads the body from
//! what follows.
//!
//! `account add --oauth google|microsoft|ISSUER_URL` signs in with OAuth2 instead of a
//! password: the address to open is printed on standard error (and the browser is
//! tried), and the command waits for the browser to come back to it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sealpost_core::CoreError;
use sealpost_core::api::{
    ComposeRequest, MAX_PAGE, MessageState, MessageSummary, MessageView, parse_flag,
};
use serde_json::json;
use zeroize::Zeroizing;

use crate::PasswordSource;
use crate::input::Input;
use crate::mail_account::account;
use crate::output::Out;
use crate::shell::Shell;

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
        /// How many rows (at most 500).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Where the rows start (0: the newest).
        #[arg(long, default_value_t = 0)]
        offset: u32,
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
        which: Which,
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
    pub account: Option<String>,
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

/// The reader's view as a person reads it.
fn view_text(v: &MessageView) -> String {
    format!(
        "From: {}\nSubject: {}\n[{}; {}]\n\n{}",
        v.from,
        v.subject,
        if v.encryption_text.is_empty() {
            v.encryption.as_str()
        } else {
            v.encryption_text.as_str()
        },
        v.signature.text,
        v.text
    )
}

pub fn run(cmd: MailCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    match cmd {
        MailCmd::Open { file, source } => open_file(dir, &file, &source, out),
        MailCmd::Account(cmd) => account(cmd, dir, out),
        MailCmd::Sync { which, source } => sync(dir, which.account, &source, out),
        MailCmd::List {
            folder,
            limit,
            offset,
            which,
            source,
        } => {
            let shell = Shell::open(dir, &source)?;
            let account = one_account(&shell, which.account)?;
            let page = shell.run(shell.core.mail().messages(account, folder, offset, limit))?;
            out.value(&json!(page.items), &list_text(&page.items));
            Ok(())
        }
        MailCmd::Read { id, source } => {
            let shell = Shell::open(dir, &source)?;
            let view = shell.run(shell.core.mail().open_message(id))?;
            out.value(&json!(view), &view_text(&view));
            shell.finish();
            Ok(())
        }
        MailCmd::Flag {
            id,
            add,
            remove,
            which,
            source,
        } => flag(dir, id, (add, remove), which.account, &source, out),
        MailCmd::Move {
            id,
            folder,
            which: _,
            source,
        } => {
            let shell = Shell::open(dir, &source)?;
            shell.run(shell.core.mail().move_message(id, folder.clone()))?;
            out.message(&format!("message {id} moved to {folder}"));
            shell.finish();
            Ok(())
        }
        MailCmd::Send {
            to,
            cc,
            subject,
            encrypt,
            which,
            source,
        } => send(dir, (to, cc, subject, encrypt), which.account, &source, out),
        MailCmd::Outbox(cmd) => outbox(cmd, dir, out),
        MailCmd::Search {
            words,
            which,
            source,
        } => {
            let shell = Shell::open(dir, &source)?;
            let account = one_account(&shell, which.account)?;
            let page = shell.run(shell.core.mail().search(account, words.join(" "), MAX_PAGE))?;
            out.value(&json!(page.items), &list_text(&page.items));
            Ok(())
        }
    }
}

/// The account a command names, or the only one (by id, for the calls that need one).
fn one_account(shell: &Shell, which: Option<String>) -> anyhow::Result<String> {
    let accounts = shell.run(shell.core.mail().accounts())?;
    let found = match &which {
        Some(a) => accounts
            .iter()
            .find(|x| x.id == *a || x.address.eq_ignore_ascii_case(a)),
        None if accounts.len() == 1 => accounts.first(),
        None if accounts.is_empty() => {
            return Err(CoreError::NoMailAccount(
                "(none yet: add one with `sealpost mail account add`)".into(),
            )
            .into());
        }
        None => bail!("this profile has several mail accounts: choose one with --account"),
    };
    Ok(found
        .ok_or_else(|| CoreError::NoMailAccount(which.unwrap_or_default()))?
        .id
        .clone())
}

fn open_file(dir: &Path, file: &Path, source: &PasswordSource, out: &Out) -> anyhow::Result<()> {
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let shell = Shell::open(dir, source)?;
    let opened = shell.run(shell.core.mail().open_file(raw))?;
    out.value(&json!(opened), &view_text(&opened.message));
    shell.finish();
    Ok(())
}

fn sync(
    dir: &Path,
    account: Option<String>,
    source: &PasswordSource,
    out: &Out,
) -> anyhow::Result<()> {
    let shell = Shell::open(dir, source)?;
    let synced = shell.run(shell.core.mail().sync_once(account))?;
    if !out.is_json() {
        for address in &synced.published_keys {
            out.message(&format!("published the key for {address}"));
        }
    }
    let outbox = &synced.outbox;
    out.value(
        &json!(synced),
        &format!(
            "{} folders: {} new, {} removed, {} flag changes, {} unreadable; outbox: {} sent{}",
            synced.folders,
            synced.new,
            synced.removed,
            synced.flags_changed,
            synced.unreadable,
            outbox.cleared,
            if outbox.in_doubt.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} may have been sent (see `sealpost mail outbox list`)",
                    outbox.in_doubt.len()
                )
            }
        ),
    );
    shell.finish();
    Ok(())
}

/// Sets and clears flags here, then tells the server at once (a sync of the account).
fn flag(
    dir: &Path,
    id: i64,
    (add, remove): (Vec<String>, Vec<String>),
    account: Option<String>,
    source: &PasswordSource,
    out: &Out,
) -> anyhow::Result<()> {
    let parse =
        |v: &[String]| -> Result<Vec<_>, CoreError> { v.iter().map(|f| parse_flag(f)).collect() };
    let (add, remove) = (parse(&add)?, parse(&remove)?);
    let shell = Shell::open(dir, source)?;
    let mail = shell.core.mail();
    shell.run(mail.set_flags(id, add, remove))?;
    shell.run(mail.sync_once(account))?;
    let flags = shell.run(mail.summary(id))?.flags;
    out.value(
        &json!({ "id": id, "flags": flags }),
        &format!("message {id}: {}", flags.join(" ")),
    );
    shell.finish();
    Ok(())
}

/// Puts the message in the outbox and sends it now; a failure leaves it waiting there.
fn send(
    dir: &Path,
    (to, cc, subject, encrypt): (Vec<String>, Vec<String>, String, bool),
    account: Option<String>,
    source: &PasswordSource,
    out: &Out,
) -> anyhow::Result<()> {
    let mut input = Input::new(source.password_stdin);
    let (shell, _) = Shell::unlocked(dir, &mut input)?;
    let account_id = one_account(&shell, account)?;
    let body = input.rest("Type the message, then end it with Ctrl-D:")?;
    let text = Zeroizing::new(
        String::from_utf8(body.expose().to_vec()).context("the message text is not UTF-8")?,
    );
    let message_id = shell.run(shell.core.compose().send(ComposeRequest {
        account_id: account_id.clone(),
        to,
        cc,
        subject,
        body: text.to_string(),
        encrypt,
        ..ComposeRequest::default()
    }))?;
    let report = shell.run(shell.core.mail().flush_outbox(Some(account_id)))?;
    if let Some((_, why)) = report.failed.first() {
        bail!("not sent yet: {why}; it waits in the outbox and goes with the next `mail sync`");
    }
    out.value(
        &json!({ "messageId": message_id, "encrypted": encrypt, "status": "sent" }),
        &format!("sent <{message_id}>"),
    );
    shell.finish();
    Ok(())
}

fn outbox(cmd: OutboxCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    match cmd {
        OutboxCmd::List { which, source } => {
            let shell = Shell::open(dir, &source)?;
            let entries = shell.run(shell.core.compose().outbox(which.account))?;
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
        OutboxCmd::Resend { id, which, source } => {
            let shell = Shell::open(dir, &source)?;
            shell.run(shell.core.compose().resend(which.account, id))?;
            out.message(&format!("{id} goes again with the next `mail sync`"));
        }
        OutboxCmd::Discard { id, which, source } => {
            let shell = Shell::open(dir, &source)?;
            shell.run(shell.core.compose().discard(which.account, id))?;
            out.message(&format!("{id} is discarded"));
        }
    }
    Ok(())
}
