//! The desktop app, measured in its real window (Xvfb, WebKitGTK, driven over
//! WebDriver as the end-to-end tests do):
//!
//! - **start to unlocked inbox**: from launching the app to the first message row shown
//!   after the password was entered, minus the key derivation (Argon2id, measured on its
//!   own here and subtracted), with 10,000 messages in the inbox;
//! - **memory** of the running app with those 10,000 messages: the proportional set
//!   (PSS) and resident set (RSS) of the app process and its WebKit processes, after the
//!   inbox is shown and after a scroll through it;
//! - **a scroll through 100,000 messages**: the list is scrolled from top to bottom in
//!   steps of ten screens, each step waiting until the rows at the new place are drawn
//!   with their data (fetched page by page from the store); the time of the whole scroll
//!   and the p50/p95 of one step.
//!
//! The stores are filled through the sync path (`Mailbox::import_fetched`: sealed,
//! opened, indexed), not by hand.
//!
//! Run: `cargo bench -p sealpost --bench app` (needs what the end-to-end tests need:
//! scripts/install-deps.sh and scripts/e2e-deps.sh).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

#[path = "../tests/e2e/driver.rs"]
mod driver;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driver::{App, Display};
use sealpost_core::SystemClock;
use sealpost_core::mailbox::{Mailbox, NewAccount};
use sealpost_core::vault;
use sealpost_crypto::Password;
use sealpost_mail::{Secret, Server};

const PASSWORD: &str = "tundra mosaic gravel whimsy plank";

/// A profile with `n` messages in the inbox of one account.
fn profile(dir: &Path, n: usize) {
    let pw = Password::new(PASSWORD).unwrap();
    let (u, _code) = vault::create(dir, "bench", &pw, &SystemClock).unwrap();
    let u = Arc::new(u);
    let mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let account = mb
        .add_account(
            &NewAccount {
                address: "bench@sealpost.test".into(),
                login: "bench@sealpost.test".into(),
                // Nobody answers here: the app's worker goes offline and retries, which is
                // what a laptop without network does; the store is what is measured.
                imap: Server::tls("127.0.0.1", 9),
                smtp: Server::tls("127.0.0.1", 9),
                extra_roots_pem: String::new(),
            },
            &Secret::new("unused"),
            &SystemClock,
        )
        .unwrap();
    let mut batch = Vec::new();
    for i in 0..n {
        batch.push(
            sealpost_pgp::plain_mail(
                &sealpost_pgp::OutgoingMail {
                    from: sealpost_pgp::Mailbox::new(
                        "Sender",
                        format!("sender{}@example.org", i % 300),
                    ),
                    to: vec![sealpost_pgp::Mailbox::address("bench@sealpost.test")],
                    subject: format!("Message number {i} about the quarterly plans"),
                    text: format!("Body of message {i}. Nothing else to see here."),
                    message_id: format!("app-bench-{i}@sealpost.test"),
                    date: 1_600_000_000 + (i as i64) * 60,
                    ..Default::default()
                },
                None,
                std::time::SystemTime::now(),
            )
            .unwrap(),
        );
        if batch.len() == 1000 || i + 1 == n {
            mb.import_fetched(&account, "INBOX", &batch, &SystemClock)
                .unwrap();
            batch.clear();
        }
    }
}

/// Memory of the app process whose profile is `dir` and of its children (the WebKit
/// processes), per process: resident set (RSS, which counts a shared library once in
/// every process that maps it) and proportional set (PSS, which splits shared pages
/// between the processes sharing them, so the sum is what the app really costs).
struct Memory {
    /// `(name, rss KiB, pss KiB)` per process.
    procs: Vec<(String, u64, u64)>,
}

impl Memory {
    fn of_app(dir: &Path) -> Memory {
        let mut parents = Vec::new();
        let mut app = None;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
            parents.push((pid, ppid));
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let needle = format!("SEALPOST_PROFILE={}", dir.display());
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmd.contains("sealpost-desktop")
                && environ
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes())
            {
                app = Some(pid);
            }
        }
        let app = app.expect("the app process");
        let mut family = vec![app];
        let mut i = 0;
        while i < family.len() {
            let p = family[i];
            family.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
            i += 1;
        }
        let field = |text: &str, name: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        let procs = family
            .iter()
            .filter_map(|p| {
                let rollup = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok()?;
                let name = std::fs::read_to_string(format!("/proc/{p}/comm")).ok()?;
                Some((
                    name.trim().to_owned(),
                    field(&rollup, "Rss:"),
                    field(&rollup, "Pss:"),
                ))
            })
            .collect();
        Memory { procs }
    }

    fn rss_mib(&self) -> f64 {
        self.procs.iter().map(|p| p.1).sum::<u64>() as f64 / 1024.0
    }

    fn pss_mib(&self) -> f64 {
        self.procs.iter().map(|p| p.2).sum::<u64>() as f64 / 1024.0
    }

    /// `name pss/rss MiB` per process.
    fn breakdown(&self) -> String {
        self.procs
            .iter()
            .map(|(n, rss, pss)| {
                format!(
                    "{n} {:.0}/{:.0}",
                    *pss as f64 / 1024.0,
                    *rss as f64 / 1024.0
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn start(display: &Display, dir: &Path, shots: &Path) -> App {
    App::start(
        "bench",
        display,
        &[
            ("SEALPOST_SERVER", "http://127.0.0.1:9".to_owned()),
            ("SEALPOST_PROFILE", dir.display().to_string()),
        ],
        shots,
    )
}

fn unlock_to_inbox(app: &App) {
    app.type_into("[data-testid=unlock-password]", PASSWORD);
    app.click("[data-testid=unlock]");
    app.wait_for("[data-testid=message-row]", Duration::from_secs(300));
}

/// Scrolls the list from top to bottom in steps of ten screens; each step ends when the
/// rows at the new place show their data. Returns (total ms, steps, p50 ms, p95 ms).
fn scroll_through(app: &App) -> (f64, usize, f64, f64) {
    let result = app.script_async(
        r#"
        const done = arguments[0];
        const list = document.querySelector('[data-testid=message-list]');
        const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
        const drawn = () => {
          const rows = [...list.querySelectorAll('[data-testid=message-row]')];
          const top = list.getBoundingClientRect().top;
          const bottom = list.getBoundingClientRect().bottom;
          const seen = rows.filter((r) => {
            const b = r.getBoundingClientRect();
            return b.bottom > top && b.top < bottom;
          });
          return seen.length > 0 && seen.every((r) => r.textContent.includes('Message number'));
        };
        (async () => {
          const steps = [];
          const start = performance.now();
          while (list.scrollTop + list.clientHeight < list.scrollHeight - 1) {
            const t = performance.now();
            list.scrollTop = Math.min(list.scrollTop + list.clientHeight * 10, list.scrollHeight);
            list.dispatchEvent(new Event('scroll'));
            await frame();
            while (!drawn()) { await frame(); }
            steps.push(performance.now() - t);
          }
          steps.sort((a, b) => a - b);
          const q = (p) => steps[Math.min(steps.length - 1, Math.floor(p * steps.length))];
          done([performance.now() - start, steps.length, q(0.5), q(0.95)]);
        })();
        "#,
        Duration::from_secs(900),
    );
    let v = result.as_array().unwrap();
    (
        v[0].as_f64().unwrap(),
        usize::try_from(v[1].as_u64().unwrap()).unwrap(),
        v[2].as_f64().unwrap(),
        v[3].as_f64().unwrap(),
    )
}

fn main() {
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/bench");
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("p10k");
    let big = tmp.path().join("p100k");
    let t = Instant::now();
    profile(&small, 10_000);
    println!(
        "filled a profile with 10,000 messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    profile(&big, 100_000);
    println!(
        "filled a profile with 100,000 messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The key derivation alone, as the app runs it to unlock.
    let mut kdf = Vec::new();
    for _ in 0..3 {
        let locked = vault::open(&small).unwrap();
        let t = Instant::now();
        drop(locked.unlock(&Password::new(PASSWORD).unwrap()).unwrap());
        kdf.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    kdf.sort_by(f64::total_cmp);
    let kdf_ms = kdf[1];

    let display = Display::start();
    let mut starts = Vec::new();
    let mut memory = None;
    let mut memory_scrolled = None;
    for round in 0..3 {
        let t = Instant::now();
        let app = start(&display, &small, &shots);
        app.wait("[data-testid=unlock-password]");
        let to_unlock_screen = t.elapsed();
        let t2 = Instant::now();
        unlock_to_inbox(&app);
        let after_password = t2.elapsed();
        starts.push((to_unlock_screen, after_password));
        if round == 0 {
            app.screenshot("inbox-10k");
            std::thread::sleep(Duration::from_secs(2));
            memory = Some(Memory::of_app(&small));
            scroll_through(&app);
            std::thread::sleep(Duration::from_secs(2));
            memory_scrolled = Some(Memory::of_app(&small));
        }
        drop(app);
        std::thread::sleep(Duration::from_secs(1));
    }
    starts.sort_by_key(|(a, b)| *a + *b);
    let (screen, inbox) = starts[1];
    println!(
        "start to unlocked inbox, 10,000 messages (median of 3): {:.0} ms \
         = {:.0} ms to the unlock screen + {:.0} ms after the password, of which the key \
         derivation takes {kdf_ms:.0} ms; without it: {:.0} ms",
        (screen + inbox).as_secs_f64() * 1000.0,
        screen.as_secs_f64() * 1000.0,
        inbox.as_secs_f64() * 1000.0,
        (screen + inbox).as_secs_f64() * 1000.0 - kdf_ms
    );
    let (memory, scrolled) = (memory.unwrap(), memory_scrolled.unwrap());
    println!(
        "memory with 10,000 messages, app + WebKit ({} processes): PSS {:.0} MiB \
         (RSS summed {:.0} MiB, which counts shared libraries once per process); after a \
         scroll through all of them: PSS {:.0} MiB, RSS {:.0} MiB\n  per process, PSS/RSS \
         MiB: {}",
        memory.procs.len(),
        memory.pss_mib(),
        memory.rss_mib(),
        scrolled.pss_mib(),
        scrolled.rss_mib(),
        memory.breakdown()
    );

    let app = start(&display, &big, &shots);
    app.wait("[data-testid=unlock-password]");
    unlock_to_inbox(&app);
    let (total, steps, p50, p95) = scroll_through(&app);
    app.screenshot("inbox-100k-bottom");
    let rows = app.script("return document.querySelectorAll('[data-testid=message-row]').length");
    println!(
        "scroll through 100,000 messages, {steps} steps of ten screens: {:.1} s in all; \
         one step (scroll, fetch the page, draw) p50 {p50:.1} ms, p95 {p95:.1} ms; \
         rows in the DOM at the end: {rows}",
        total / 1000.0
    );
    let big_memory = Memory::of_app(&big);
    println!(
        "memory after scrolling through 100,000 messages: PSS {:.0} MiB, RSS {:.0} MiB ({})",
        big_memory.pss_mib(),
        big_memory.rss_mib(),
        big_memory.breakdown()
    );
}
