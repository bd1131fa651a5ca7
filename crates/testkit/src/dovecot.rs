//! A throwaway Dovecot (IMAP over TLS, LMTP delivery, SASL auth) for tests.
//!
//! [`Dovecot::start`] writes a private `dovecot.conf` into a temporary directory and runs
//! Debian's Dovecot 2.3 in the foreground (`dovecot -F -c …`) on free loopback ports:
//!
//! - IMAP with implicit TLS ([`Dovecot::imaps_port`]) and IMAP with STARTTLS
//!   ([`Dovecot::imap_port`]), with a certificate from a [`TestCa`]. Dovecot counts
//!   loopback clients as secure, so it would even accept a login before STARTTLS there:
//!   what the client sends before TLS is the client's own discipline, which its tests
//!   check;
//! - LMTP ([`Dovecot::lmtp_port`]) for delivery (Postfix hands mail to it);
//! - the auth service on a TCP port ([`Dovecot::auth_port`]) for Postfix's SASL.
//!
//! Users live in a passwd-file (`{PLAIN}` passwords, this is a test) with maildirs under
//! the temporary directory. With [`DovecotOptions::oauth2_introspection`], XOAUTH2 and
//! OAUTHBEARER logins are checked by Dovecot's `oauth2` passdb through token
//! introspection (RFC 7662) at the given URL.
//!
//! As root, Dovecot runs its internal processes as `dovecot`, logins as `dovenull` and
//! mail access as `dovecot` (so `first_valid_uid` is lowered); as another user, all of
//! them run as that user. Dropping the handle stops the server and deletes the directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{self, Daemon, DaemonError};
use crate::mailtls::TestCa;

/// The Dovecot master program.
pub const DOVECOT: &str = "/usr/sbin/dovecot";

/// A test user: address (also the login name) and password.
#[derive(Clone)]
pub struct TestUser {
    /// The address, also the login name (`alice@sealpost.test`).
    pub address: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for TestUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestUser")
            .field("address", &self.address)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl TestUser {
    /// A user with this address and password.
    pub fn new(address: &str, password: &str) -> Self {
        Self {
            address: address.to_owned(),
            password: password.to_owned(),
        }
    }
}

/// How to configure the server.
#[derive(Debug, Clone, Default)]
pub struct DovecotOptions {
    /// The users (login name = address).
    pub users: Vec<TestUser>,
    /// When set, an RFC 7662 introspection endpoint (with client credentials in the URL,
    /// `http://id:secret@127.0.0.1:port/...`) that checks OAuth2 bearer tokens; the
    /// token's `sub` must equal the login name.
    pub oauth2_introspection: Option<String>,
}

/// A running Dovecot in a temporary directory; stopped and deleted on drop.
#[derive(Debug)]
pub struct Dovecot {
    daemon: Daemon,
    imaps_port: u16,
    imap_port: u16,
    lmtp_port: u16,
    auth_port: u16,
    users: Vec<TestUser>,
    /// The uid and gid that mail files belong to.
    mail_ids: (u32, u32),
    // Declared last so it is removed after the server has stopped.
    dir: TempDir,
}

impl Dovecot {
    /// Starts Dovecot with `users` and a certificate for `localhost`/`127.0.0.1` from `ca`.
    pub fn start(ca: &TestCa, users: &[TestUser]) -> Result<Self, DaemonError> {
        Self::start_with(
            ca,
            DovecotOptions {
                users: users.to_vec(),
                oauth2_introspection: None,
            },
        )
    }

    /// Starts Dovecot with `options`.
    pub fn start_with(ca: &TestCa, options: DovecotOptions) -> Result<Self, DaemonError> {
        if !Path::new(DOVECOT).is_file() {
            return Err(DaemonError::NotInstalled(DOVECOT.into()));
        }
        let root = daemon::user_ids(None)?.0 == 0;
        let (internal, login, mail_user) = if root {
            (
                "dovecot".to_owned(),
                "dovenull".to_owned(),
                "dovecot".to_owned(),
            )
        } else {
            let me = daemon::user_name()?;
            (me.clone(), me.clone(), me)
        };
        let mail_ids = daemon::user_ids(Some(&mail_user))?;

        let dir = tempfile::Builder::new()
            .prefix("sealpost-dovecot-")
            .tempdir()
            .map_err(daemon::io("creating Dovecot's directory"))?;
        let d = dir.path();
        // Dovecot's unprivileged processes must reach the files below.
        daemon::chmod(d, 0o755)?;
        daemon::mkdir(&d.join("mail"), 0o700, Some(mail_ids))?;
        daemon::mkdir(&d.join("run"), 0o755, None)?;
        daemon::mkdir(&d.join("state"), 0o755, None)?;

        let cert = ca.issue_localhost()?;
        daemon::write(&d.join("cert.pem"), &cert.cert_pem)?;
        daemon::write(&d.join("key.pem"), &cert.key_pem)?;
        daemon::chmod(&d.join("key.pem"), 0o600)?;
        let users: String = options
            .users
            .iter()
            .map(|u| format!("{}:{{PLAIN}}{}::::::\n", u.address, u.password))
            .collect();
        daemon::write(&d.join("users"), &users)?;
        daemon::chmod(&d.join("users"), 0o644)?;

        let ports = daemon::free_ports(4)?;
        let [imaps_port, imap_port, lmtp_port, auth_port] = ports[..] else {
            return Err(DaemonError::Io {
                what: "finding free ports".into(),
                source: std::io::Error::other("wrong number of ports"),
            });
        };

        let oauth2 = match &options.oauth2_introspection {
            Some(url) => {
                daemon::write(
                    &d.join("oauth2.conf.ext"),
                    &format!(
                        "introspection_mode = post\n\
                         introspection_url = {url}\n\
                         username_attribute = sub\n\
                         active_attribute = active\n\
                         active_value = true\n\
                         force_introspection = yes\n"
                    ),
                )?;
                daemon::chmod(&d.join("oauth2.conf.ext"), 0o644)?;
                format!(
                    "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
                    d.join("oauth2.conf.ext").display()
                )
            }
            None => String::new(),
        };
        let mechanisms = if options.oauth2_introspection.is_some() {
            "plain login xoauth2 oauthbearer"
        } else {
            "plain login"
        };
        let dir_s = d.display();
        let instance = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sealpost-dovecot".into());
        let conf = format!(
            r#"instance_name = {instance}
base_dir = {dir_s}/run
state_dir = {dir_s}/state
log_path = {dir_s}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = required
ssl_cert = <{dir_s}/cert.pem
ssl_key = <{dir_s}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
first_valid_uid = {first_uid}
mail_location = maildir:~/Maildir
imap_idle_notify_interval = 1 secs
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {dir_s}/users
}}
{oauth2}userdb {{
  driver = passwd-file
  args = username_format=%u {dir_s}/users
  default_fields = uid={uid} gid={gid} home={dir_s}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service auth {{
  inet_listener auth {{
    address = 127.0.0.1
    port = {auth_port}
  }}
}}
protocol lmtp {{
  auth_username_format = %u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \Junk
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \Archive
    auto = subscribe
  }}
}}
"#,
            first_uid = mail_ids.0.max(1),
            uid = mail_ids.0,
            gid = mail_ids.1,
        );
        let conf_path = d.join("dovecot.conf");
        daemon::write(&conf_path, &conf)?;
        daemon::chmod(&conf_path, 0o644)?;

        let log = d.join("dovecot.out");
        let (out, err) = daemon::log_file(&log)?;
        let mut cmd = Command::new(DOVECOT);
        cmd.arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut daemon = Daemon::spawn("dovecot", cmd)?;
        daemon.wait_ports(&[imaps_port, imap_port, lmtp_port, auth_port], &log)?;
        // The ports answer before the auth process has started; wait for a greeting
        // without "Waiting for authentication process".
        wait_auth_ready(imap_port, &d.join("dovecot.log"))?;
        Ok(Self {
            daemon,
            imaps_port,
            imap_port,
            lmtp_port,
            auth_port,
            users: options.users,
            mail_ids,
            dir,
        })
    }

    /// IMAP with implicit TLS (like port 993).
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// IMAP with STARTTLS (like port 143).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// LMTP, for delivery.
    pub fn lmtp_port(&self) -> u16 {
        self.lmtp_port
    }

    /// Dovecot's auth service (the SASL protocol Postfix speaks).
    pub fn auth_port(&self) -> u16 {
        self.auth_port
    }

    /// The users.
    pub fn users(&self) -> &[TestUser] {
        &self.users
    }

    /// The domains of the users' addresses, sorted, without duplicates.
    pub fn domains(&self) -> Vec<String> {
        let mut domains: Vec<String> = self
            .users
            .iter()
            .filter_map(|u| u.address.rsplit_once('@').map(|(_, d)| d.to_owned()))
            .collect();
        domains.sort();
        domains.dedup();
        domains
    }

    /// The maildir of `user` (it exists once the user has logged in or received mail).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user).join("Maildir")
    }

    /// Puts `messages` straight into `user`'s `folder` (`INBOX` or a folder name made
    /// if missing) as maildir files, the way a delivery agent does, without `\Seen`:
    /// thousands of messages in a fraction of a second, where APPEND takes a round trip
    /// each. Dovecot gives them UIDs when a client next looks at the folder.
    pub fn write_maildir(
        &self,
        user: &str,
        folder: &str,
        messages: &[Vec<u8>],
    ) -> Result<(), DaemonError> {
        let home = self.dir.path().join("mail").join(user);
        let maildir = home.join("Maildir");
        let target = if folder.eq_ignore_ascii_case("INBOX") {
            maildir.clone()
        } else {
            maildir.join(format!(".{folder}"))
        };
        for dir in [&home, &maildir, &target] {
            if !dir.is_dir() {
                daemon::mkdir(dir, 0o700, Some(self.mail_ids))?;
            }
        }
        for sub in ["cur", "new", "tmp"] {
            let d = target.join(sub);
            if !d.is_dir() {
                daemon::mkdir(&d, 0o700, Some(self.mail_ids))?;
            }
        }
        if target != maildir && !target.join("maildirfolder").exists() {
            daemon::write(&target.join("maildirfolder"), "")?;
            chown(&target.join("maildirfolder"), self.mail_ids)?;
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let pid = std::process::id();
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        for raw in messages {
            let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = target
                .join("tmp")
                .join(format!("{stamp}.M{i}P{pid}.sealpost"));
            std::fs::write(&tmp, raw).map_err(daemon::io("writing a maildir file"))?;
            chown(&tmp, self.mail_ids)?;
            let cur = target
                .join("cur")
                .join(format!("{stamp}.M{i}P{pid}.sealpost,S={}:2,", raw.len()));
            std::fs::rename(&tmp, &cur).map_err(daemon::io("moving a maildir file"))?;
        }
        Ok(())
    }

    /// Runs `doveadm ARGS` against this instance and returns its output.
    pub fn doveadm(&self, args: &[&str]) -> Result<String, DaemonError> {
        let mut cmd = Command::new("doveadm");
        cmd.arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .args(args);
        daemon::run_checked(cmd, Duration::from_secs(30), "doveadm")
    }

    /// The server's log.
    pub fn log(&self) -> String {
        daemon::read_log(&self.dir.path().join("dovecot.log"))
    }

    /// The master process id.
    pub fn pid(&self) -> u32 {
        self.daemon.id()
    }
}

fn chown(path: &Path, (uid, gid): (u32, u32)) -> Result<(), DaemonError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|source| DaemonError::Io {
        what: format!("chown {}", path.display()),
        source,
    })
}

/// Waits until Dovecot's greeting no longer says it waits for the auth process.
fn wait_auth_ready(port: u16, log: &Path) -> Result<(), DaemonError> {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{Ipv4Addr, TcpStream};
    let deadline = std::time::Instant::now() + daemon::START_TIMEOUT;
    loop {
        if let Ok(stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_ok()
                && line.starts_with("* OK")
                && !line.contains("Waiting for authentication")
            {
                let _ = (&stream).write_all(b"a LOGOUT\r\n");
                return Ok(());
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(DaemonError::Timeout {
                what: "Dovecot's auth process".into(),
                timeout: daemon::START_TIMEOUT,
                log: daemon::read_log(log),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;

    #[test]
    fn starts_offers_starttls_and_leaves_nothing_behind() {
        let ca = TestCa::new("Sealpost test CA").unwrap();
        let dovecot = Dovecot::start(&ca, &[TestUser::new("alice@sealpost.test", "pw")]).unwrap();
        // The STARTTLS port offers STARTTLS and refuses LOGIN before it.
        let stream = TcpStream::connect(("127.0.0.1", dovecot.imap_port())).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut greeting = String::new();
        reader.read_line(&mut greeting).unwrap();
        // (Dovecot counts loopback connections as secure, so it does not announce
        // LOGINDISABLED here; the client's tests check that it never logs in before TLS.)
        assert!(greeting.contains("STARTTLS"), "{greeting}");
        (&stream).write_all(b"a LOGOUT\r\n").unwrap();

        let pid = dovecot.pid();
        let home = dovecot.maildir("x");
        drop(dovecot);
        assert!(crate::daemon::gone(pid), "dovecot {pid} still runs");
        assert!(
            !home.parent().unwrap().exists(),
            "the directory was not removed"
        );
    }

    /// Set in the child process of the watchdog test.
    const OWNER_ENV: &str = "SEALPOST_TESTKIT_DOVECOT_OWNER";

    /// The child's half of the next test: starts Dovecot, says its pid, waits to be
    /// killed. Does nothing in a normal run.
    #[test]
    fn owner_that_gets_killed() {
        if std::env::var_os(OWNER_ENV).is_none() {
            return;
        }
        let ca = TestCa::new("Sealpost test CA").unwrap();
        let dovecot = Dovecot::start(&ca, &[TestUser::new("a@sealpost.test", "pw")]).unwrap();
        println!("DOVECOT {} {}", dovecot.pid(), dovecot.dir.path().display());
        std::thread::sleep(Duration::from_secs(60));
    }

    #[test]
    fn a_killed_test_process_leaves_no_dovecot_running() {
        let mut owner = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "dovecot::tests::owner_that_gets_killed",
                "--nocapture",
            ])
            .env(OWNER_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(owner.stdout.take().unwrap()).lines();
        let line = lines
            .find_map(|l| {
                l.ok()
                    .and_then(|l| l.strip_prefix("DOVECOT ").map(str::to_owned))
            })
            .expect("the child started no Dovecot");
        let (pid, dir) = line.split_once(' ').unwrap();
        let pid: u32 = pid.parse().unwrap();
        assert!(!crate::daemon::gone(pid));
        owner.kill().unwrap(); // SIGKILL: no destructor runs
        owner.wait().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !crate::daemon::gone(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Nothing removed the directory (no destructor ran): clean up after the child.
        let _ = std::fs::remove_dir_all(dir);
        assert!(crate::daemon::gone(pid), "dovecot {pid} survived its owner");
    }
}
