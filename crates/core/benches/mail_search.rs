//! Full-text search over 100,000 messages in the store: the latency of
//! [`Mailbox::search_page`] (the search box's query: the first 200 hits, newest first,
//! and the number of hits) for a rare word, a common word and two words; p50, p95 and
//! p99 of each and of the mix. Goal: p95 under 20 ms. Also the store's size on disk per
//! message.
//!
//! The store is filled through the real path a sync takes (seal the raw message, open
//! it, index its words: `Mailbox::import_fetched`), without IMAP.
//!
//! Run: `cargo bench -p sealpost-core --bench mail_search`
//! (`SEALPOST_BENCH_MESSAGES` changes the count, default 100,000).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealpost_core::SystemClock;
use sealpost_core::mailbox::{Mailbox, NewAccount};
use sealpost_core::vault;
use sealpost_crypto::Password;
use sealpost_mail::{Secret, Server};

const LIMIT: u32 = 200;
const ROUNDS: usize = 200;

/// A deterministic word list: pronounceable, distinct.
fn vocabulary(n: usize) -> Vec<String> {
    const C: &[u8] = b"bcdfghjklmnprstvz";
    const V: &[u8] = b"aeiou";
    (0..n)
        .map(|mut i| {
            let mut w = String::new();
            loop {
                w.push(C[i % C.len()] as char);
                i /= C.len();
                w.push(V[i % V.len()] as char);
                i /= V.len();
                if i == 0 {
                    break;
                }
            }
            w
        })
        .collect()
}

/// A small xorshift generator: the same mailbox every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Zipf-like: small ranks far more often.
    fn rank(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

fn main() {
    let n: usize = std::env::var("SEALPOST_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench");
    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let (u, _code) = vault::create(&path, "bench", &pw, &SystemClock).unwrap();
    let u = Arc::new(u);
    let mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let account = mb
        .add_account(
            &NewAccount {
                address: "bench@sealpost.test".into(),
                login: "bench@sealpost.test".into(),
                imap: Server::tls("localhost", 9),
                smtp: Server::tls("localhost", 9),
                extra_roots_pem: String::new(),
            },
            &Secret::new("unused"),
            &SystemClock,
        )
        .unwrap();

    // Messages of ~120 words from a 20,000-word vocabulary (Zipf-like), plus marker
    // words: "meeting" in half of them (common), "quarterly" in 5 % (medium),
    // "zanzibarite" in 10 (rare).
    let words = vocabulary(20_000);
    let mut rng = Rng(0x5ea1_9057);
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..n {
        let mut text: Vec<&str> = (0..120)
            .map(|_| words[rng.rank(words.len())].as_str())
            .collect();
        if i % 2 == 0 {
            text.push("meeting");
        }
        if i % 20 == 4 {
            text.push("quarterly");
        }
        if i % (n / 10).max(1) == 7 {
            text.push("zanzibarite");
        }
        let raw = sealpost_pgp::plain_mail(
            &sealpost_pgp::OutgoingMail {
                from: sealpost_pgp::Mailbox::new(
                    "Sender",
                    format!("sender{}@example.org", i % 500),
                ),
                to: vec![sealpost_pgp::Mailbox::address("bench@sealpost.test")],
                subject: format!("{} {} {}", words[rng.rank(2000)], words[rng.rank(2000)], i),
                text: text.join(" "),
                message_id: format!("search-{i}@sealpost.test"),
                date: 1_600_000_000 + (i as i64) * 600,
                ..Default::default()
            },
            None,
            std::time::SystemTime::now(),
        )
        .unwrap();
        batch.push(raw);
        if batch.len() == 1000 || i + 1 == n {
            let report = mb
                .import_fetched(&account, "INBOX", &batch, &SystemClock)
                .unwrap();
            assert_eq!(report.unreadable, 0);
            batch.clear();
        }
    }
    let fill = started.elapsed().as_secs_f64();
    println!(
        "filled {n} messages through the sync path in {fill:.1} s ({:.0} messages/s)",
        n as f64 / fill
    );
    let size: u64 = ["mail.sqlite3", "mail.sqlite3-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(path.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "store on disk: {:.1} MB, {:.0} bytes per message (raw sealed + summary + index)",
        size as f64 / 1e6,
        size as f64 / n as f64
    );

    let queries = [
        ("rare word", "zanzibarite"),
        ("common word", "meeting"),
        ("two words", "meeting quarterly"),
    ];
    // Warm up the page cache and statement cache.
    for (_, q) in &queries {
        mb.search_page(&account, q, LIMIT).unwrap();
    }
    let mut all = Vec::new();
    println!("\nsearch_page(account, query, {LIMIT}), {ROUNDS} runs each, interleaved:");
    let mut per: Vec<Vec<Duration>> = vec![Vec::new(); queries.len()];
    let mut hits = vec![0i64; queries.len()];
    for _ in 0..ROUNDS {
        for (i, (_, q)) in queries.iter().enumerate() {
            let t = Instant::now();
            let (total, rows) = mb.search_page(&account, q, LIMIT).unwrap();
            let d = t.elapsed();
            assert!(rows.len() <= LIMIT as usize && total >= rows.len() as i64);
            hits[i] = total;
            per[i].push(d);
            all.push(d);
        }
    }
    for (i, (name, q)) in queries.iter().enumerate() {
        let (p50, p95, p99) = percentiles(&mut per[i]);
        println!(
            "  {name:<12} {q:<20} {:>6} hits   p50 {p50:>6.2} ms  p95 {p95:>6.2} ms  p99 {p99:>6.2} ms",
            hits[i]
        );
    }
    let (p50, p95, p99) = percentiles(&mut all);
    println!(
        "  {:<33} {:>6}        p50 {p50:>6.2} ms  p95 {p95:>6.2} ms  p99 {p99:>6.2} ms   (goal: p95 < 20 ms)",
        "all", ""
    );
}

fn percentiles(d: &mut [Duration]) -> (f64, f64, f64) {
    d.sort_unstable();
    let at = |p: f64| {
        let i = ((d.len() as f64 * p).ceil() as usize).clamp(1, d.len()) - 1;
        d[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.95), at(0.99))
}
