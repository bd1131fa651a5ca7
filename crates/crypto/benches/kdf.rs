#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::print_stdout)]
//! Measures what one password guess costs an attacker at our shipped Argon2id settings,
//! in CPU-seconds, which is the figure the password gate multiplies zxcvbn's guesses by.
//!
//! Run: `cargo bench -p sealpost-crypto --bench kdf`. Prints the best and median of
//! several evaluations, and the constant compiled into the gate for comparison.

use std::time::Instant;

use cpu_time::ProcessTime;
use sealpost_crypto::Password;
use sealpost_crypto::kdf::{Argon2Params, derive_kek};
use sealpost_crypto::password::{CPU_SECONDS_PER_GUESS, MIN_CRACK_YEARS, SECONDS_PER_YEAR};

fn main() {
    let rounds: usize = std::env::var("SEALPOST_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let password = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let p = Argon2Params::SHIPPED;
    // One warm-up, so page faults of the first 64 MiB allocation are not counted alone.
    derive_kek(&password, &[0; 16], p).unwrap();
    let mut cpu = Vec::with_capacity(rounds);
    let mut wall = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let (c, w) = (ProcessTime::now(), Instant::now());
        let salt = [i as u8; 16];
        std::hint::black_box(derive_kek(&password, &salt, p).unwrap());
        cpu.push(c.elapsed().as_secs_f64());
        wall.push(w.elapsed().as_secs_f64());
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v[v.len() / 2];
    println!(
        "argon2id m={} KiB t={} p={}: {rounds} rounds",
        p.m_kib, p.t, p.p
    );
    println!(
        "  cpu-seconds per guess: best {:.4}  median {:.4}",
        cpu[0],
        median(&cpu)
    );
    println!(
        "  wall seconds per guess: best {:.4}  median {:.4}",
        wall[0],
        median(&wall)
    );
    println!("  compiled-in CPU_SECONDS_PER_GUESS = {CPU_SECONDS_PER_GUESS}");
    let min_guesses = MIN_CRACK_YEARS * SECONDS_PER_YEAR / CPU_SECONDS_PER_GUESS;
    println!(
        "  gate line: {MIN_CRACK_YEARS} years needs >= 10^{:.2} guesses",
        min_guesses.log10()
    );
}
