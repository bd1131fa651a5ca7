//! Where passwords, codes and values come from: the terminal without echo, or standard
//! input one line each (`--password-stdin`). Every buffer that held one is wiped.

use std::io::{BufRead, IsTerminal, Read};

use anyhow::{Context, bail};
use sealpost_crypto::{Password, RecoveryCode, SecretVec};
use zeroize::Zeroizing;

/// Reads secrets for one command.
pub struct Input {
    from_stdin: bool,
}

impl Input {
    pub fn new(from_stdin: bool) -> Self {
        Self { from_stdin }
    }

    fn line(&mut self, what: &str) -> anyhow::Result<Zeroizing<String>> {
        let mut line = Zeroizing::new(String::new());
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("cannot read the {what} from standard input"))?;
        if n == 0 {
            bail!("expected the {what} on standard input, found the end of input");
        }
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        Ok(line)
    }

    fn prompt(&mut self, prompt: &str, what: &str) -> anyhow::Result<Zeroizing<String>> {
        if self.from_stdin {
            return self.line(what);
        }
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .with_context(|| {
                format!("cannot read the {what} from the terminal; use --password-stdin")
            })
    }

    /// A password.
    pub fn password(&mut self, prompt: &str) -> anyhow::Result<Password> {
        let raw = self.prompt(prompt, "password")?;
        Ok(Password::new(&raw)?)
    }

    /// A new password, typed twice on a terminal.
    pub fn new_password(&mut self, prompt: &str, again: &str) -> anyhow::Result<Password> {
        let raw = self.prompt(prompt, "new password")?;
        if !self.from_stdin {
            let repeat = self.prompt(again, "new password")?;
            if *repeat != *raw {
                bail!("the two passwords differ; nothing was changed");
            }
        }
        Ok(Password::new(&raw)?)
    }

    /// A recovery code; a typo is reported before anything else happens.
    pub fn recovery_code(&mut self, prompt: &str) -> anyhow::Result<RecoveryCode> {
        let raw = self.prompt(prompt, "recovery code")?;
        Ok(RecoveryCode::parse(&raw).map_err(sealpost_core::CoreError::BadRecoveryCode)?)
    }

    /// Everything left on standard input, as a secret value.
    pub fn rest(&mut self, prompt: &str) -> anyhow::Result<SecretVec> {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprintln!("{prompt}");
        }
        let mut value = Zeroizing::new(Vec::new());
        stdin
            .lock()
            .read_to_end(&mut value)
            .context("cannot read the value from standard input")?;
        Ok(SecretVec::new(std::mem::take(&mut *value)))
    }
}
