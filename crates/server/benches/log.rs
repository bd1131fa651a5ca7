//! The server's side of the key directory's transparency log at 1,000,000 entries
//! (generated, then loaded into the store in bulk): the cost of an append (a publish:
//! the store's transaction that writes the key, the entry and its subtrees), of signing
//! a new head in the HSM, and of a proof look-up (the service's `lookup_key` with a
//! consistency proof from 1,000 entries back: reads, proof building, no HTTP), on SQLite
//! and on a durable PostgreSQL (`fsync=on`). Wall time per operation, this process's CPU
//! per operation, and the answer's size. Prints figures; asserts nothing about speed.
//!
//! Run: `cargo bench -p sealpost-server --bench log` (`SEALPOST_LOG_ENTRIES` sets the
//! size, default 1,000,000).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sealpost_server::clock::SystemClock;
use sealpost_server::hsm::SoftwareHsm;
use sealpost_server::service::{Service, ServiceConfig};
use sealpost_server::store::{DirectoryClaimRow, PostgresStore, SqliteStore, Store};
use sealpost_testkit::postgres::PostgresCluster;
use sealpost_transparency::tree::{Hash, NodeId, append_plan, appended_nodes};
use sealpost_transparency::wire;
use sealpost_transparency::{LogEntry, LogKey};

const NOW: i64 = 1_800_000_000;
/// Every this many entries, one is a live directory key (the rest were replaced).
const KEY_EVERY: u64 = 1000;
const LOOKUPS: u64 = 2000;
const APPENDS: u64 = 200;

struct Generated {
    entries: Vec<Vec<u8>>,
    nodes: Vec<(NodeId, Hash)>,
}

fn address(i: u64) -> String {
    format!("user{i}@example.org")
}

fn cert(i: u64) -> Vec<u8> {
    [&[0xC6u8, 0x33][..], format!("cert {i}").as_bytes()].concat()
}

fn generate(n: u64) -> Generated {
    let mut levels: Vec<Vec<Hash>> = Vec::new();
    let mut entries = Vec::with_capacity(n as usize);
    let mut nodes = Vec::with_capacity(2 * n as usize);
    for i in 0..n {
        let entry = LogEntry::publish(&address(i), &cert(i), NOW as u64);
        let siblings: Vec<Hash> = append_plan(i)
            .iter()
            .map(|id| levels[id.level as usize][id.index as usize])
            .collect();
        for (id, h) in appended_nodes(i, entry.leaf_hash(), &siblings).unwrap() {
            if levels.len() <= id.level as usize {
                levels.push(Vec::new());
            }
            levels[id.level as usize].push(h);
            nodes.push((id, h));
        }
        entries.push(entry.encode().to_vec());
    }
    Generated { entries, nodes }
}

fn load_sqlite(path: &Path, g: &Generated) {
    let mut c = rusqlite::Connection::open(path).unwrap();
    let tx = c.transaction().unwrap();
    tx.execute(
        "INSERT INTO accounts (user_name, record, cloud_wrap, recovery_wrap, recovery_verifier, failed_logins, created_at)
         VALUES ('bench', x'01', x'02', x'03', x'04', 0, 0)",
        [],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO settings (user_name, version, blob) VALUES ('bench', 1, x'05')",
        [],
    )
    .unwrap();
    {
        let mut e = tx
            .prepare("INSERT INTO log_entries (idx, entry) VALUES (?1, ?2)")
            .unwrap();
        for (i, bytes) in g.entries.iter().enumerate() {
            e.execute(rusqlite::params![i as i64, bytes]).unwrap();
        }
        let mut n = tx
            .prepare("INSERT INTO log_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")
            .unwrap();
        for (id, h) in &g.nodes {
            n.execute(rusqlite::params![id.level, id.index as i64, h.as_slice()])
                .unwrap();
        }
        let mut k = tx
            .prepare(
                "INSERT INTO directory_keys (address, user_name, cert, published_at, log_index)
                 VALUES (?1, 'bench', ?2, ?3, ?4)",
            )
            .unwrap();
        for i in (0..g.entries.len() as u64).step_by(KEY_EVERY as usize) {
            k.execute(rusqlite::params![address(i), cert(i), NOW, i as i64])
                .unwrap();
        }
    }
    tx.execute("UPDATE log_size SET size = ?1", [g.entries.len() as i64])
        .unwrap();
    tx.commit().unwrap();
}

async fn load_postgres(url: &str, g: &Generated) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "INSERT INTO accounts (user_name, record, cloud_wrap, recovery_wrap, recovery_verifier, failed_logins, created_at)
             VALUES ('bench', '\\x01', '\\x02', '\\x03', '\\x04', 0, 0);
             INSERT INTO settings (user_name, version, blob) VALUES ('bench', 1, '\\x05');",
        )
        .await
        .unwrap();
    for (start, chunk) in (0..).step_by(20_000).zip(g.entries.chunks(20_000)) {
        let idx: Vec<i64> = (start..start + chunk.len() as i64).collect();
        client
            .execute(
                "INSERT INTO log_entries (idx, entry) SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[])",
                &[&idx, &chunk.to_vec()],
            )
            .await
            .unwrap();
    }
    for chunk in g.nodes.chunks(20_000) {
        let levels: Vec<i16> = chunk.iter().map(|(id, _)| i16::from(id.level)).collect();
        let idx: Vec<i64> = chunk.iter().map(|(id, _)| id.index as i64).collect();
        let hashes: Vec<Vec<u8>> = chunk.iter().map(|(_, h)| h.to_vec()).collect();
        client
            .execute(
                "INSERT INTO log_nodes (level, idx, hash)
                 SELECT * FROM unnest($1::SMALLINT[], $2::BIGINT[], $3::BYTEA[])",
                &[&levels, &idx, &hashes],
            )
            .await
            .unwrap();
    }
    for i in (0..g.entries.len() as u64).step_by(KEY_EVERY as usize) {
        client
            .execute(
                "INSERT INTO directory_keys (address, user_name, cert, published_at, log_index)
                 VALUES ($1, 'bench', $2, $3, $4)",
                &[&address(i), &cert(i), &NOW, &(i as i64)],
            )
            .await
            .unwrap();
    }
    client
        .execute(
            "UPDATE log_size SET size = $1",
            &[&(g.entries.len() as i64)],
        )
        .await
        .unwrap();
    client.batch_execute("VACUUM ANALYZE").await.unwrap();
}

async fn measure(name: &str, store: Arc<dyn Store>, key_file: &Path, n: u64) {
    let hsm = Arc::new(SoftwareHsm::open_or_create(key_file).unwrap());
    let config = ServiceConfig {
        rate_per_second: 0.0,
        ..ServiceConfig::default()
    };
    let service = Service::new(config, store.clone(), hsm, Arc::new(SystemClock))
        .await
        .unwrap();
    let key = LogKey::from_bytes(&service.log_public_key()).unwrap();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    println!("{name}, {n} entries:");

    // The first head at this size: reads the root's subtrees, one HSM signature, a write.
    let t = Instant::now();
    let head = service.log_head().await.unwrap();
    println!(
        "  new signed head (root from stored subtrees, Ed25519 in the software HSM, stored): {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(head.size, n);

    // Proof look-ups: a live key, an inclusion proof, a consistency proof from 1,000 back.
    let known = n.saturating_sub(1000);
    let first = service
        .lookup_key(ip, &address(0), Some(known))
        .await
        .unwrap();
    let answer_bytes = serde_json::to_vec(&first).unwrap().len();
    let cpu = cpu_time::ProcessTime::now();
    let t = Instant::now();
    for j in 0..LOOKUPS {
        let i = (j * 7919 % (n / KEY_EVERY)) * KEY_EVERY;
        let answer = service
            .lookup_key(ip, &address(i), Some(known))
            .await
            .unwrap();
        assert_eq!(answer.proof.index, i);
    }
    let wall = t.elapsed().as_secs_f64() / LOOKUPS as f64;
    let cpu = cpu.elapsed().as_secs_f64() / LOOKUPS as f64;
    println!(
        "  proof look-up (key + inclusion + consistency proof): {:.0} µs wall, {:.0} µs CPU; answer {} bytes of JSON ({} + {} hashes)",
        wall * 1e6,
        cpu * 1e6,
        answer_bytes,
        first.proof.inclusion.len(),
        first
            .proof
            .consistency
            .as_ref()
            .map_or(0, |c| c.proof.len())
    );
    let verified = wire::verify_lookup(&first, &key, None).unwrap();
    assert_eq!(verified.index, 0);

    // Appends: publishes through the store, one after the other (each its own commit).
    for j in 0..APPENDS {
        let claim = DirectoryClaimRow {
            token_hash: sealpost_transparency::cert_hash(&j.to_be_bytes()).to_vec(),
            user: "bench".into(),
            address: format!("new{j}@example.org"),
            cert: cert(n + j),
            expires_at: NOW + 3600,
        };
        store
            .put_directory_claim(claim, NOW, 1_000_000, 1_000_000)
            .await
            .unwrap();
    }
    let cpu = cpu_time::ProcessTime::now();
    let t = Instant::now();
    for j in 0..APPENDS {
        let token = sealpost_transparency::cert_hash(&j.to_be_bytes());
        let key = store
            .confirm_directory_claim(&token, "bench", NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(key.log_index, n + j);
    }
    let wall = t.elapsed().as_secs_f64() / APPENDS as f64;
    let cpu = cpu.elapsed().as_secs_f64() / APPENDS as f64;
    println!(
        "  append (publish: key, entry, its subtrees, one commit): {:.2} ms wall, {:.0} µs CPU",
        wall * 1e3,
        cpu * 1e6
    );
    let t = Instant::now();
    service.log_head().await.unwrap();
    println!(
        "  the next head after them: {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}

fn main() {
    let n: u64 = std::env::var("SEALPOST_LOG_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let generated = generate(n);
    println!(
        "generated {n} entries and {} subtrees in {:.1} s",
        generated.nodes.len(),
        t.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("hsm.key");

    let path = dir.path().join("log.sqlite3");
    drop(SqliteStore::open(&path).unwrap());
    let t = Instant::now();
    load_sqlite(&path, &generated);
    println!(
        "loaded into SQLite in {:.1} s; file {:.0} MB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&path).unwrap().len() as f64 / 1e6
    );
    rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        measure("SQLite (synchronous=FULL)", store, &key_file, n).await;
    });

    let cluster = PostgresCluster::start_durable().unwrap();
    let url = cluster.create_database("log_bench").unwrap();
    rt.block_on(async {
        drop(PostgresStore::connect(&url).await.unwrap());
        let t = Instant::now();
        load_postgres(&url, &generated).await;
        println!(
            "loaded into PostgreSQL in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
        measure("PostgreSQL (fsync=on)", store, &key_file, n).await;
    });
}
