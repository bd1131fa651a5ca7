//! SoftHSMv2 tokens for tests, each in a private directory with its own config file.
//!
//! # Why tests using a token run in a child process
//!
//! SoftHSMv2 reads its configuration file from the environment variable `SOFTHSM2_CONF`,
//! once, at `C_Initialize`, and a PKCS#11 module is initialized once per process. A test
//! cannot set that variable for itself: changing the environment of a multi-threaded
//! process is unsound (`set_var` is `unsafe` in edition 2024, and the workspace forbids
//! unsafe code), and under plain `cargo test` all tests of a binary share one process and
//! so would share one initialized SoftHSM with one token directory.
//!
//! So [`in_child_process`] re-executes the running test binary for exactly one test,
//! with `SOFTHSM2_CONF` set through [`std::process::Command::env`] (which is safe: it
//! only touches the child's environment block). The parent creates the token, waits for
//! the child, forwards its output and fails if the child failed or did not run the test
//! body at all (a marker file proves it ran, so a misspelt test name cannot pass
//! silently). The child sees its marker variables and runs the body with the token. This
//! works the same under `cargo test` (shared process) and `cargo nextest` (one process
//! per test) and costs one extra process start per test.
//!
//! ```no_run
//! use sealpost_testkit::softhsm::in_child_process;
//!
//! #[test]
//! fn seals_with_softhsm() {
//!     in_child_process("seals_with_softhsm", |token| {
//!         // SOFTHSM2_CONF points at token.conf_path() here; use token.module_path(),
//!         // token.label(), token.user_pin().
//!     });
//! }
//! ```
//!
//! Tokens made with [`SoftHsmToken::sibling`] share the directory and config file, so one
//! process can use several tokens; make them before the module is first initialized.
//!
//! A [`SoftHsmToken`] can also be handed to a server started as a separate process:
//! pass [`SoftHsmToken::env`] to its `Command`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where Debian's `softhsm2` package installs the PKCS#11 module.
pub const MODULE_PATH: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The variable SoftHSMv2 reads its config file path from.
pub const CONF_ENV: &str = "SOFTHSM2_CONF";

/// Set in a re-executed child: the test it runs.
const CHILD_TEST_ENV: &str = "SEALPOST_SOFTHSM_CHILD_TEST";
/// Set in a re-executed child: the token label, then the user and SO PINs.
const CHILD_LABEL_ENV: &str = "SEALPOST_SOFTHSM_LABEL";
const CHILD_PIN_ENV: &str = "SEALPOST_SOFTHSM_PIN";
const CHILD_SO_PIN_ENV: &str = "SEALPOST_SOFTHSM_SO_PIN";
/// Set in a re-executed child: the file it creates once the body has passed.
const CHILD_DONE_ENV: &str = "SEALPOST_SOFTHSM_DONE";

static NEXT_TOKEN: AtomicU32 = AtomicU32::new(0);

/// What can go wrong setting up a token.
#[derive(Debug, thiserror::Error)]
pub enum SoftHsmError {
    /// A file or directory could not be made, or a program could not be started.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `softhsm2-util` is missing (install the `softhsm2` package).
    #[error("softhsm2-util not found: install the softhsm2 package (scripts/install-deps.sh)")]
    NotInstalled,
    /// `softhsm2-util --init-token` failed.
    #[error("softhsm2-util --init-token failed ({status}): {output}")]
    InitFailed {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its stdout and stderr.
        output: String,
    },
    /// [`SoftHsmToken::from_env`] was called without the variables of a child process.
    #[error("not in a SoftHSM test child process ({0} is unset)")]
    NotAChild(&'static str),
}

/// An initialized SoftHSMv2 token in a temporary directory, removed when the last token
/// sharing it is dropped (except in a child process, where the parent owns it).
#[derive(Debug, Clone)]
pub struct SoftHsmToken {
    /// Keeps the directory alive; `None` in a child process.
    dir: Option<Arc<tempfile::TempDir>>,
    conf: PathBuf,
    label: String,
    user_pin: String,
    so_pin: String,
}

impl SoftHsmToken {
    /// Makes a temporary directory with a `softhsm2.conf` (token directory inside it,
    /// file object store, log level ERROR) and initializes one token with a unique label.
    pub fn new() -> Result<Self, SoftHsmError> {
        let dir = tempfile::Builder::new()
            .prefix("sealpost-softhsm-")
            .tempdir()
            .map_err(|source| io("creating a temporary directory", source))?;
        let tokens = dir.path().join("tokens");
        fs::create_dir(&tokens).map_err(|source| io("creating the token directory", source))?;
        let conf = dir.path().join("softhsm2.conf");
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .map_err(|source| io("writing softhsm2.conf", source))?;
        Self::init(Some(Arc::new(dir)), conf)
    }

    /// Another token with a fresh label in the same directory and config file, so the
    /// same process (one `SOFTHSM2_CONF`) can use both. SoftHSMv2 lists tokens at
    /// `C_Initialize`: make siblings before the module is first used.
    pub fn sibling(&self) -> Result<Self, SoftHsmError> {
        Self::init(self.dir.clone(), self.conf.clone())
    }

    /// The token of a child process started by [`in_child_process`], from its
    /// environment.
    pub fn from_env() -> Result<Self, SoftHsmError> {
        let var = |name: &'static str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .ok_or(SoftHsmError::NotAChild(name))
        };
        let text = |name: &'static str| {
            var(name)?
                .into_string()
                .map_err(|_| SoftHsmError::NotAChild(name))
        };
        Ok(Self {
            dir: None,
            conf: PathBuf::from(var(CONF_ENV)?),
            label: text(CHILD_LABEL_ENV)?,
            user_pin: text(CHILD_PIN_ENV)?,
            so_pin: text(CHILD_SO_PIN_ENV)?,
        })
    }

    fn init(dir: Option<Arc<tempfile::TempDir>>, conf: PathBuf) -> Result<Self, SoftHsmError> {
        let n = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        // Unique on this machine while the process lives; at most 32 bytes.
        let label = format!("sealpost-{}-{n}", std::process::id());
        let user_pin = format!("user-{n}-4711");
        let so_pin = format!("so-{n}-0815");
        let output = Command::new("softhsm2-util")
            .env(CONF_ENV, &conf)
            .args(["--init-token", "--free", "--label", &label])
            .args(["--so-pin", &so_pin, "--pin", &user_pin])
            .output()
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    SoftHsmError::NotInstalled
                } else {
                    io("running softhsm2-util", source)
                }
            })?;
        if !output.status.success() {
            return Err(SoftHsmError::InitFailed {
                status: output.status,
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        Ok(Self {
            dir,
            conf,
            label,
            user_pin,
            so_pin,
        })
    }

    /// The `softhsm2.conf` to put in `SOFTHSM2_CONF`.
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// The PKCS#11 module, [`MODULE_PATH`].
    pub fn module_path(&self) -> &Path {
        Path::new(MODULE_PATH)
    }

    /// The token's label (find the slot by it).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The user PIN.
    pub fn user_pin(&self) -> &str {
        &self.user_pin
    }

    /// The security officer PIN.
    pub fn so_pin(&self) -> &str {
        &self.so_pin
    }

    /// The environment a process needs to see this token: `SOFTHSM2_CONF`.
    pub fn env(&self) -> [(&'static str, &Path); 1] {
        [(CONF_ENV, &self.conf)]
    }
}

/// Runs `body` with a fresh token in a child process of the current test binary that has
/// `SOFTHSM2_CONF` set (see the module docs). `test` is the test's path as the test
/// harness names it (`my_test`, or `module::tests::my_test` in a unit test).
///
/// In the parent this creates the token, runs the child and panics with the child's
/// output if it failed or never ran the body; in the child it runs `body`.
#[allow(clippy::panic)] // A test helper: a failed child is a failed test.
pub fn in_child_process(test: &str, body: impl FnOnce(&SoftHsmToken)) {
    if std::env::var_os(CHILD_TEST_ENV).as_deref() == Some(test.as_ref()) {
        let token = SoftHsmToken::from_env().unwrap_or_else(|e| panic!("{e}"));
        body(&token);
        if let Some(done) = std::env::var_os(CHILD_DONE_ENV)
            && let Err(e) = fs::write(&done, b"ok")
        {
            panic!("cannot write the child's marker file: {e}");
        }
        return;
    }

    let token = SoftHsmToken::new().unwrap_or_else(|e| panic!("{e}"));
    let done = token
        .conf
        .with_file_name(format!("child-done-{}", token.label));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let output = Command::new(&exe)
        .args(["--exact", test, "--nocapture", "--include-ignored"])
        .args(["--test-threads", "1"])
        .env(CONF_ENV, &token.conf)
        .env(CHILD_TEST_ENV, test)
        .env(CHILD_LABEL_ENV, &token.label)
        .env(CHILD_PIN_ENV, &token.user_pin)
        .env(CHILD_SO_PIN_ENV, &token.so_pin)
        .env(CHILD_DONE_ENV, &done)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Forward the child's output into the parent's (captured) test output.
    eprint!("{stdout}{stderr}");
    if !output.status.success() {
        panic!(
            "SoftHSM child process for `{test}` failed ({})",
            output.status
        );
    }
    if !done.exists() {
        panic!(
            "SoftHSM child process for `{test}` did not run the test body: is `{test}` the \
             test's full name in this binary?"
        );
    }
}

fn io(what: &str, source: std::io::Error) -> SoftHsmError {
    SoftHsmError::Io {
        what: what.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_initialized_in_its_own_directory_and_removed_on_drop() {
        let token = SoftHsmToken::new().unwrap();
        let dir = token.conf_path().parent().unwrap().to_owned();
        let conf = fs::read_to_string(token.conf_path()).unwrap();
        assert!(conf.contains(&format!(
            "directories.tokendir = {}",
            dir.join("tokens").display()
        )));
        assert!(conf.contains("objectstore.backend = file"));
        // softhsm2-util made one token directory.
        assert_eq!(fs::read_dir(dir.join("tokens")).unwrap().count(), 1);
        assert!(token.label().len() <= 32);
        assert_eq!(token.module_path(), Path::new(MODULE_PATH));

        let sibling = token.sibling().unwrap();
        assert_ne!(sibling.label(), token.label());
        assert_eq!(sibling.conf_path(), token.conf_path());
        assert_eq!(fs::read_dir(dir.join("tokens")).unwrap().count(), 2);

        drop(token);
        assert!(dir.exists(), "the sibling still holds the directory");
        drop(sibling);
        assert!(!dir.exists());
    }

    #[test]
    fn softhsm2_util_sees_the_token_through_the_conf() {
        let token = SoftHsmToken::new().unwrap();
        let out = Command::new("softhsm2-util")
            .env(CONF_ENV, token.conf_path())
            .arg("--show-slots")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(token.label()), "{text}");
    }

    #[test]
    fn the_child_process_gets_the_token() {
        in_child_process(
            "softhsm::tests::the_child_process_gets_the_token",
            |token| {
                assert_eq!(
                    std::env::var_os(CONF_ENV).as_deref(),
                    Some(token.conf_path().as_os_str())
                );
                assert!(token.conf_path().exists());
                assert!(token.label().starts_with("sealpost-"));
            },
        );
    }

    #[test]
    #[should_panic(expected = "did not run the test body")]
    fn a_misspelt_test_name_fails_instead_of_passing() {
        in_child_process("softhsm::tests::no_such_test", |_| {});
    }

    #[test]
    fn from_env_outside_a_child_is_an_error() {
        if std::env::var_os(CHILD_TEST_ENV).is_none() {
            assert!(matches!(
                SoftHsmToken::from_env(),
                Err(SoftHsmError::NotAChild(_))
            ));
        }
    }
}
