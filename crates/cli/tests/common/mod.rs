//! Running the real `sealpost` binary, as scripts do.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `sealpost --profile PROFILE ARGS` against the sync server at `server`, with
/// `stdin` written to its standard input.
pub fn sealpost(profile: &Path, server: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .arg("--profile")
        .arg(profile)
        .args(args)
        .env("SEALPOST_SERVER", server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading everything; a broken pipe is fine then.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// Its standard output, after asserting it succeeded.
pub fn ok(o: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{text}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}
