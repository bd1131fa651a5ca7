//! A private GnuPG home for interoperability tests: a temporary `GNUPGHOME` in which the
//! real `gpg` (Debian's `gnupg` package) runs with `--batch --homedir`.
//!
//! ```no_run
//! use sealpost_testkit::gnupg::GnupgHome;
//!
//! let home = GnupgHome::new()?;
//! let fpr = home.quick_gen_key("Carol <carol@example.org>", Some("pass phrase"))?;
//! let public = home.export_public(&fpr)?;
//! let out = home.run_ok(&["--armor", "--encrypt", "--recipient", &fpr], b"hello")?;
//! # let _ = (public, out);
//! # Ok::<(), sealpost_testkit::gnupg::GnupgError>(())
//! ```
//!
//! Dropping the home stops its `gpg-agent` (`gpgconf --kill all`) and deletes it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// What can go wrong running `gpg`.
#[derive(Debug, thiserror::Error)]
pub enum GnupgError {
    /// A directory could not be made or `gpg` could not be started or fed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `gpg` exited with a failure status.
    #[error("gpg {args} failed ({status}): {stderr}")]
    Failed {
        /// The arguments it ran with.
        args: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// A key listing did not contain what was looked for.
    #[error("no fingerprint found for {0:?}")]
    NoFingerprint(String),
}

/// A temporary GnuPG home directory; deleted (agent stopped) on drop.
#[derive(Debug)]
pub struct GnupgHome {
    dir: TempDir,
}

impl GnupgHome {
    /// Makes an empty home (mode 0700, as gpg requires).
    pub fn new() -> Result<Self, GnupgError> {
        let dir = tempfile::Builder::new()
            .prefix("sp-gnupg-")
            .tempdir()
            .map_err(|source| GnupgError::Io {
                what: "creating the GnuPG home",
                source,
            })?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).map_err(
                |source| GnupgError::Io {
                    what: "setting the GnuPG home's mode",
                    source,
                },
            )?;
        }
        Ok(Self { dir })
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `gpg --batch --homedir <home> --no-tty --pinentry-mode loopback` command, for
    /// callers that need more control (timing, say).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.arg("--batch")
            .arg("--homedir")
            .arg(self.dir.path())
            .args(["--no-tty", "--pinentry-mode", "loopback"]);
        cmd
    }

    /// Runs gpg with `args`, feeding `stdin`; returns its output whatever the status.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Result<Output, GnupgError> {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| GnupgError::Io {
                what: "starting gpg",
                source,
            })?;
        // Feed stdin from a thread so a large output cannot deadlock against it.
        let input = stdin.to_vec();
        let mut pipe = child.stdin.take();
        let feeder = std::thread::spawn(move || -> std::io::Result<()> {
            if let Some(pipe) = pipe.as_mut() {
                pipe.write_all(&input)?;
            }
            Ok(())
        });
        let output = child.wait_with_output().map_err(|source| GnupgError::Io {
            what: "waiting for gpg",
            source,
        })?;
        // gpg may stop reading early (e.g. on bad input); a broken pipe is not our error.
        let _ = feeder.join();
        Ok(output)
    }

    /// Runs gpg and fails unless it exits successfully; returns its stdout.
    pub fn run_ok(&self, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, GnupgError> {
        let output = self.run(args, stdin)?;
        if !output.status.success() {
            return Err(GnupgError::Failed {
                args: args.join(" "),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(output.stdout)
    }

    /// Imports keys (public or secret, armored or binary). A passphrase-protected secret
    /// key imports without its passphrase.
    pub fn import(&self, keys: &[u8]) -> Result<(), GnupgError> {
        self.run_ok(&["--import"], keys).map(|_| ())
    }

    /// Generates a key for `user_id` the way a GnuPG user would: an ed25519 primary key
    /// (sign, certify) and a cv25519 encryption subkey, valid for two years, protected by
    /// `passphrase` (none if `None`). Returns the primary fingerprint (hex, upper case).
    pub fn quick_gen_key(
        &self,
        user_id: &str,
        passphrase: Option<&str>,
    ) -> Result<String, GnupgError> {
        let pass = passphrase.unwrap_or("");
        self.run_ok(
            &[
                "--passphrase",
                pass,
                "--quick-gen-key",
                user_id,
                "ed25519",
                "sign,cert",
                "2y",
            ],
            b"",
        )?;
        let fpr = self.fingerprint(user_id)?;
        self.run_ok(
            &[
                "--passphrase",
                pass,
                "--quick-add-key",
                &fpr,
                "cv25519",
                "encr",
                "2y",
            ],
            b"",
        )?;
        Ok(fpr)
    }

    /// The fingerprint of the first key matching `query`.
    pub fn fingerprint(&self, query: &str) -> Result<String, GnupgError> {
        let listing = self.run_ok(&["--with-colons", "--list-keys", query], b"")?;
        String::from_utf8_lossy(&listing)
            .lines()
            .find_map(|line| {
                let mut fields = line.split(':');
                (fields.next() == Some("fpr"))
                    .then(|| fields.nth(8).map(str::to_owned))
                    .flatten()
            })
            .ok_or_else(|| GnupgError::NoFingerprint(query.to_owned()))
    }

    /// The armored public key of `fpr`.
    pub fn export_public(&self, fpr: &str) -> Result<Vec<u8>, GnupgError> {
        self.run_ok(&["--armor", "--export", fpr], b"")
    }

    /// The armored secret key of `fpr`, as GnuPG stores it (protected by its passphrase,
    /// which must be given to export).
    pub fn export_secret(
        &self,
        fpr: &str,
        passphrase: Option<&str>,
    ) -> Result<Vec<u8>, GnupgError> {
        self.run_ok(
            &[
                "--passphrase",
                passphrase.unwrap_or(""),
                "--armor",
                "--export-secret-keys",
                fpr,
            ],
            b"",
        )
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        // Stop this home's agent (and keyboxd/dirmngr if any); errors do not matter here.
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.dir.path())
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
