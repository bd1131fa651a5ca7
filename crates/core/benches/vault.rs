//! The vault's figures: wall time of unlock (Argon2id at the shipped settings plus opening
//! the store), and put/get of 10,000 secrets.
//!
//! Run: `cargo bench -p sealpost-core --bench vault`.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::indexing_slicing)]

use std::time::Instant;

use sealpost_core::clock::FixedClock;
use sealpost_core::vault;
use sealpost_crypto::Password;

const N: usize = 10_000;

fn main() {
    let clock = FixedClock(1_790_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench");
    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();

    let t = Instant::now();
    let (u, _code) = vault::create(&path, "bench", &pw, &clock).unwrap();
    println!("create profile: {:.3} s", t.elapsed().as_secs_f64());
    drop(u);

    let mut unlocks = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let u = vault::open(&path).unwrap().unlock(&pw).unwrap();
        unlocks.push(t.elapsed().as_secs_f64());
        drop(u);
    }
    unlocks.sort_by(f64::total_cmp);
    println!(
        "unlock (open + Argon2id + unwrap), 5 runs: best {:.3} s, median {:.3} s, worst {:.3} s",
        unlocks[0], unlocks[2], unlocks[4]
    );

    let u = vault::open(&path).unwrap().unlock(&pw).unwrap();
    let names: Vec<String> = (0..N).map(|i| format!("account/{i}/password")).collect();
    let values: Vec<Vec<u8>> = (0..N)
        .map(|i| format!("value-{i:08}-padding-to-a-realistic-length").into_bytes())
        .collect();

    let t = Instant::now();
    for (n, v) in names.iter().zip(&values) {
        u.put_secret(n, v, &clock).unwrap();
    }
    let put_each = t.elapsed().as_secs_f64();
    println!(
        "put {N} secrets, one transaction each (fsync each): {:.3} s, {:.1} µs/secret",
        put_each,
        put_each / N as f64 * 1e6
    );

    let t = Instant::now();
    u.put_secrets(
        names
            .iter()
            .map(String::as_str)
            .zip(values.iter().map(Vec::as_slice)),
        &clock,
    )
    .unwrap();
    let put_batch = t.elapsed().as_secs_f64();
    println!(
        "put {N} secrets in one transaction: {:.3} s, {:.1} µs/secret",
        put_batch,
        put_batch / N as f64 * 1e6
    );

    let t = Instant::now();
    for (n, v) in names.iter().zip(&values) {
        let got = u.secret(n).unwrap().unwrap();
        assert_eq!(got.expose(), v.as_slice());
    }
    let get = t.elapsed().as_secs_f64();
    println!(
        "get {N} secrets: {:.3} s, {:.1} µs/secret",
        get,
        get / N as f64 * 1e6
    );
}
