//! A throwaway Postfix (SMTP submission) for tests, delivering to a [`Dovecot`].
//!
//! [`Postfix::start`] writes a private `main.cf` and `master.cf` into a temporary
//! directory (`master -c DIR`), with the queue and data directories inside it, and runs
//! the master daemon in the foreground. It listens only on 127.0.0.1, on two free ports:
//!
//! - [`Postfix::submissions_port`]: implicit TLS (like 465);
//! - [`Postfix::submission_port`]: STARTTLS required before AUTH (like 587).
//!
//! Both require SASL authentication, checked by Dovecot's auth service over TCP (so a
//! password or, when Dovecot is configured for it, an OAuth2 token works). Mail for the
//! Dovecot users' domains goes to Dovecot over LMTP; nothing is relayed anywhere else.
//!
//! Postfix's master must run as root (it hands its services to the `postfix` user), so
//! [`Postfix::start`] fails with a clear error when the tests do not run as root.
//! Postfix insists on ownership: the queue directories belong to `postfix` (maildrop
//! and public to group `postdrop`), `pid/` to root. Logs go to `/dev/stdout`, which is
//! the master's stdout, a file in the directory ([`Postfix::log`]).

use std::path::Path;
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::daemon::{self, Daemon, DaemonError};
use crate::dovecot::Dovecot;
use crate::mailtls::TestCa;

/// The Postfix master daemon.
pub const MASTER: &str = "/usr/lib/postfix/sbin/master";

/// The host name Postfix announces.
pub const HOSTNAME: &str = "mail.sealpost.test";

/// A running Postfix in a temporary directory; stopped and deleted on drop.
#[derive(Debug)]
pub struct Postfix {
    daemon: Daemon,
    submissions_port: u16,
    submission_port: u16,
    // Declared last so it is removed after the server has stopped.
    dir: TempDir,
}

impl Postfix {
    /// Starts Postfix with a certificate from `ca`, authenticating and delivering
    /// through `dovecot`.
    pub fn start(ca: &TestCa, dovecot: &Dovecot) -> Result<Self, DaemonError> {
        if !Path::new(MASTER).is_file() {
            return Err(DaemonError::NotInstalled(MASTER.into()));
        }
        if daemon::user_ids(None)?.0 != 0 {
            return Err(DaemonError::Io {
                what: "starting Postfix".into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the Postfix master daemon must run as root",
                ),
            });
        }
        let postfix = daemon::user_ids(Some("postfix"))?;
        let postdrop_gid = group_id("postdrop")?;

        let dir = tempfile::Builder::new()
            .prefix("sealpost-postfix-")
            .tempdir()
            .map_err(daemon::io("creating Postfix's directory"))?;
        let d = dir.path();
        daemon::chmod(d, 0o755)?;
        let queue = d.join("queue");
        daemon::mkdir(&queue, 0o755, Some((0, 0)))?;
        for sub in [
            "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
            "private", "saved", "trace",
        ] {
            daemon::mkdir(&queue.join(sub), 0o700, Some((postfix.0, 0)))?;
        }
        daemon::mkdir(&queue.join("pid"), 0o755, Some((0, 0)))?;
        daemon::mkdir(
            &queue.join("maildrop"),
            0o730,
            Some((postfix.0, postdrop_gid)),
        )?;
        daemon::mkdir(
            &queue.join("public"),
            0o710,
            Some((postfix.0, postdrop_gid)),
        )?;
        daemon::mkdir(&d.join("data"), 0o700, Some(postfix))?;

        let cert = ca.issue_localhost()?;
        daemon::write(&d.join("cert.pem"), &cert.cert_pem)?;
        daemon::write(&d.join("key.pem"), &cert.key_pem)?;
        daemon::chmod(&d.join("key.pem"), 0o600)?;

        let ports = daemon::free_ports(2)?;
        let [submissions_port, submission_port] = ports[..] else {
            return Err(DaemonError::Io {
                what: "finding free ports".into(),
                source: std::io::Error::other("wrong number of ports"),
            });
        };
        let dir_s = d.display();
        let domains = dovecot.domains().join(", ");
        let lmtp = dovecot.lmtp_port();
        let auth = dovecot.auth_port();
        let main_cf = format!(
            "compatibility_level = 3.6
queue_directory = {dir_s}/queue
data_directory = {dir_s}/data
maillog_file = /dev/stdout
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = {HOSTNAME}
mydomain = sealpost.test
mydestination =
mynetworks = 127.0.0.1/32
local_recipient_maps =
alias_maps =
alias_database =
virtual_mailbox_domains = {domains}
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
smtpd_tls_cert_file = {dir_s}/cert.pem
smtpd_tls_key_file = {dir_s}/key.pem
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth}
smtpd_sasl_auth_enable = yes
smtpd_client_restrictions = permit_sasl_authenticated, reject
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
biff = no
smtputf8_enable = no
message_size_limit = 52428800
"
        );
        let services = [
            "pickup    unix  n - n 60    1 pickup",
            "cleanup   unix  n - n -     0 cleanup",
            "qmgr      unix  n - n 300   1 qmgr",
            "tlsmgr    unix  - - n 1000? 1 tlsmgr",
            "rewrite   unix  - - n -     - trivial-rewrite",
            "bounce    unix  - - n -     0 bounce",
            "defer     unix  - - n -     0 bounce",
            "trace     unix  - - n -     0 bounce",
            "verify    unix  - - n -     1 verify",
            "flush     unix  n - n 1000? 0 flush",
            "proxymap  unix  - - n -     - proxymap",
            "proxywrite unix - - n -     1 proxymap",
            "smtp      unix  - - n -     - smtp",
            "relay     unix  - - n -     - smtp",
            "showq     unix  n - n -     - showq",
            "error     unix  - - n -     - error",
            "retry     unix  - - n -     - error",
            "discard   unix  - - n -     - discard",
            "lmtp      unix  - - n -     - lmtp",
            "anvil     unix  - - n -     1 anvil",
            "scache    unix  - - n -     1 scache",
            "postlog   unix-dgram n - n - 1 postlogd",
        ]
        .join("\n");
        let master_cf = format!(
            "127.0.0.1:{submission_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
127.0.0.1:{submissions_port} inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
{services}
"
        );
        daemon::write(&d.join("main.cf"), &main_cf)?;
        daemon::write(&d.join("master.cf"), &master_cf)?;

        let log = d.join("postfix.log");
        let (out, err) = daemon::log_file(&log)?;
        let mut cmd = Command::new(MASTER);
        cmd.arg("-c")
            .arg(d)
            .arg("-d")
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut daemon = Daemon::spawn("postfix master", cmd)?;
        daemon.wait_ports(&[submissions_port, submission_port], &log)?;
        Ok(Self {
            daemon,
            submissions_port,
            submission_port,
            dir,
        })
    }

    /// Submission with implicit TLS (like 465).
    pub fn submissions_port(&self) -> u16 {
        self.submissions_port
    }

    /// Submission with STARTTLS required (like 587).
    pub fn submission_port(&self) -> u16 {
        self.submission_port
    }

    /// The log (every Postfix process writes to it).
    pub fn log(&self) -> String {
        daemon::read_log(&self.dir.path().join("postfix.log"))
    }

    /// The master process id.
    pub fn pid(&self) -> u32 {
        self.daemon.id()
    }
}

/// A group's id (`getent group NAME`).
fn group_id(name: &str) -> Result<u32, DaemonError> {
    let mut cmd = Command::new("getent");
    cmd.args(["group", name]);
    let out = daemon::run_checked(cmd, std::time::Duration::from_secs(10), "getent group")?;
    out.split(':')
        .nth(2)
        .and_then(|gid| gid.trim().parse().ok())
        .ok_or_else(|| DaemonError::NotInstalled(format!("group {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dovecot::TestUser;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;

    #[test]
    fn submission_requires_starttls_before_auth_and_stops_on_drop() {
        let ca = TestCa::new("Sealpost test CA").unwrap();
        let dovecot = Dovecot::start(&ca, &[TestUser::new("alice@sealpost.test", "pw")]).unwrap();
        let postfix = Postfix::start(&ca, &dovecot).unwrap();
        let stream = TcpStream::connect(("127.0.0.1", postfix.submission_port())).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("220 "), "{line}");
        (&stream).write_all(b"EHLO client.test\r\n").unwrap();
        let mut ehlo = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let last = line.as_bytes().get(3) == Some(&b' ');
            ehlo.push(line);
            if last {
                break;
            }
        }
        assert!(ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
        assert!(!ehlo.iter().any(|l| l.contains("AUTH")), "{ehlo:?}");
        (&stream).write_all(b"QUIT\r\n").unwrap();

        let pid = postfix.pid();
        drop(postfix);
        assert!(crate::daemon::gone(pid), "postfix master {pid} still runs");
    }
}
