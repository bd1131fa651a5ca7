//! `sealpost mail account …`: adding (with a password, or OAuth2 in the browser),
//! checking and listing mail accounts.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, bail};
use sealpost_core::api::{
    MailAccountView, NewMailAccount, OAuthChoice, OAuthSignIn, SIGN_IN_TIMEOUT, Security,
    ServerSettings,
};
use serde_json::json;
use zeroize::Zeroizing;

use crate::input::Input;
use crate::mail::AccountCmd;
use crate::output::Out;
use crate::shell::Shell;

/// The IMAP and SMTP servers given on the command line, and an extra CA's PEM text.
struct Given {
    extra_roots_pem: String,
    imap: Option<ServerSettings>,
    smtp: Option<ServerSettings>,
}

impl Given {
    fn read(
        ca_file: Option<&Path>,
        imap: Option<&str>,
        smtp: Option<&str>,
        starttls: bool,
    ) -> anyhow::Result<Self> {
        let extra_roots_pem = match ca_file {
            Some(f) => std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?,
            None => String::new(),
        };
        let server = |s: Option<&str>| s.map(|s| host_port(s, starttls)).transpose();
        Ok(Self {
            extra_roots_pem,
            imap: server(imap)?,
            smtp: server(smtp)?,
        })
    }
}

fn host_port(s: &str, starttls: bool) -> anyhow::Result<ServerSettings> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("{s:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("{s:?}: the port is not a number"))?;
    Ok(ServerSettings {
        host: host.to_owned(),
        port,
        security: if starttls {
            Security::Starttls
        } else {
            Security::Tls
        },
    })
}

/// The mail password: a line of standard input, or the terminal without echo. Not
/// normalised (the server compares bytes).
fn mail_password(from_stdin: bool, address: &str) -> anyhow::Result<Zeroizing<String>> {
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
    Ok(line)
}

fn account_text(a: &MailAccountView) -> String {
    let mut text = format!(
        "{} (IMAP {}:{}, SMTP {}:{})",
        a.address, a.imap.host, a.imap.port, a.smtp.host, a.smtp.port
    );
    if let Some(at) = &a.signed_in_at {
        text.push_str(&format!(", signed in at {at}"));
    }
    text
}

pub fn account(cmd: AccountCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    match cmd {
        AccountCmd::Add {
            address,
            oauth,
            client_id,
            no_browser,
            login,
            imap,
            smtp,
            starttls,
            ca_file,
            source,
        } => {
            let given = Given::read(
                ca_file.as_deref(),
                imap.as_deref(),
                smtp.as_deref(),
                starttls,
            )?;
            let mut input = Input::new(source.password_stdin);
            let (shell, _) = Shell::unlocked(dir, &mut input)?;
            let added = match oauth {
                Some(provider) => {
                    let request = OAuthSignIn {
                        client_id,
                        login,
                        imap: given.imap,
                        smtp: given.smtp,
                        extra_roots_pem: given.extra_roots_pem,
                        ..OAuthSignIn::new(OAuthChoice::parse(&provider)?, address.clone())
                    };
                    let open = Box::new(move |url: &str| {
                        show_sign_in_url(url, &address, !no_browser);
                        Ok(())
                    });
                    shell.run(shell.core.mail().add_oauth_account(request, open))?
                }
                None => {
                    let password = mail_password(source.password_stdin, &address)?;
                    add_with_password(&shell, address, login, given, password)?
                }
            };
            out.value(&json!(added), &format!("added {}", account_text(&added)));
            shell.finish();
        }
        AccountCmd::Test { which, source } => {
            let shell = Shell::open(dir, &source)?;
            let tested = shell.run(shell.core.mail().test_account(which.account))?;
            out.message(&format!("{}: IMAP and SMTP work", tested.address));
        }
        AccountCmd::List { source } => {
            let shell = Shell::open(dir, &source)?;
            let all = shell.run(shell.core.mail().accounts())?;
            let text = all
                .iter()
                .map(|a| format!("{}  {}", account_text(a), a.id))
                .collect::<Vec<_>>()
                .join("\n");
            out.value(&json!(all), &text);
        }
    }
    Ok(())
}

/// Adds an account with a password: the servers given, else found for the address.
fn add_with_password(
    shell: &Shell,
    address: String,
    login: Option<String>,
    given: Given,
    password: Zeroizing<String>,
) -> anyhow::Result<MailAccountView> {
    let mail = shell.core.mail();
    let (imap, smtp, found_login) = match (given.imap, given.smtp) {
        (Some(i), Some(s)) => (i, s, None),
        (i, s) => {
            let found = shell.run(mail.discover(address.clone(), given.extra_roots_pem.clone()))?;
            (
                i.unwrap_or(found.imap),
                s.unwrap_or(found.smtp),
                Some(found.login),
            )
        }
    };
    shell.run(mail.add_account(NewMailAccount {
        login: login.or(found_login).unwrap_or_else(|| address.clone()),
        address,
        imap,
        smtp,
        password,
        extra_roots_pem: given.extra_roots_pem,
    }))
}

/// Shows the OAuth2 sign-in address on standard error (standard output stays the
/// command's answer) and, when `browser`, tries the system browser; a browser that does
/// not start is no error: the address is there to open by hand.
fn show_sign_in_url(url: &str, address: &str, browser: bool) {
    eprintln!(
        "To sign in {address}, open this address in a browser:\n\n  {url}\n\n\
         Waiting for the sign-in to finish (up to {} minutes)...",
        SIGN_IN_TIMEOUT.as_secs() / 60
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
