//! The fixed keys every fuzz input is read with: made once per process from the bytes
//! in `keys/` (so crashes reproduce), Sealpost's profile (ML-KEM-768+X25519 beside
//! X25519), so the post-quantum paths are reachable from the seed corpus.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealpost_pgp::KeyPair;

/// The time every input is read at: inside the keys' validity.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// Bob (the reader) and Alice (the signer).
pub fn keys() -> &'static (KeyPair, KeyPair) {
    static KEYS: OnceLock<(KeyPair, KeyPair)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let read = |bytes: &[u8]| match KeyPair::from_secret_bytes(bytes, now()) {
            Ok(k) => k,
            Err(e) => panic!("fuzz/keys: {e}"),
        };
        (
            read(include_bytes!("../keys/bob.tsk")),
            read(include_bytes!("../keys/alice.tsk")),
        )
    })
}
