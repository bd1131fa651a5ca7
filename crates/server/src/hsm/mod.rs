//! The HSM layer: a key the server can use but never read.
//!
//! Three operations matter. [`Hsm::seal`] / [`Hsm::open`] put an authenticated encryption
//! layer under a non-extractable key around every blob before it is stored, so a copy of
//! the database is useless without the HSM. [`Hsm::oprf_hmac`] computes HMAC-SHA512 under
//! the OPRF seed, kept inside the HSM as a non-extractable secret key: each user's OPRF
//! key is `HKDF-Expand(seed, user ‖ "OprfKey")`, which is one HMAC block, so the seed
//! never enters server memory and offline guessing needs the HSM for every guess.
//! [`Hsm::log_sign`] signs the key directory's tree heads with an Ed25519 key that never
//! leaves the HSM (see `sealpost_transparency`); [`Hsm::log_public_key`] is its public half,
//! which clients pin.
//!
//! Implementations: `pkcs11` (any PKCS#11 token; SoftHSMv2 in tests) and `software`
//! (a key file, for the embedded single-machine default — it says so at start-up).
//!
//! Calls are blocking: async code runs them in `spawn_blocking`, unless the module says
//! a call takes microseconds in this process ([`Hsm::is_in_process`]), where handing it
//! to another thread would cost more than the call.

use zeroize::Zeroizing;

/// What can go wrong talking to the HSM.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The HSM cannot be reached or refused to work: the server fails closed (503).
    #[error("the HSM is unavailable: {0}")]
    Unavailable(String),
    /// A sealed blob did not authenticate: damaged, swapped, or sealed by another key.
    #[error("a sealed blob failed its integrity check")]
    Integrity,
    /// A sealed blob names a key this HSM does not have.
    #[error("a sealed blob names an unknown HSM key {0:?}")]
    UnknownKey(String),
    /// A sealed blob is malformed.
    #[error("a sealed blob is malformed: {0}")]
    Malformed(&'static str),
    /// The configuration is wrong (module path, slot, PIN, key label).
    #[error("HSM configuration: {0}")]
    Config(String),
}

/// A hardware (or software) security module, as the server uses it.
pub trait Hsm: Send + Sync + 'static {
    /// What this is, for the start-up log: "PKCS#11 token 'x' key 'y'", or a warning
    /// that keys live in a file.
    fn describe(&self) -> String;

    /// Whether calls are quick computations in this process (no device, no I/O), so
    /// async code may make them in place. Defaults to `false`.
    fn is_in_process(&self) -> bool {
        false
    }

    /// Seals `plaintext` bound to `aad` under the current sealing key. The output names
    /// the key (so keys can rotate) and carries its own nonce.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError>;

    /// Opens a blob made by [`Hsm::seal`] with the same `aad`.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HsmError>;

    /// HMAC-SHA512 of `message` under the OPRF seed key.
    fn oprf_hmac(&self, message: &[u8]) -> Result<Zeroizing<[u8; 64]>, HsmError>;

    /// An Ed25519 signature of `message` by the transparency log's key.
    fn log_sign(&self, message: &[u8]) -> Result<[u8; 64], HsmError>;

    /// The transparency log key's public half (Ed25519, 32 bytes).
    fn log_public_key(&self) -> Result<[u8; 32], HsmError>;

    /// Readiness: the HSM answers now and has its keys. By default a seal and an open
    /// of a probe; a token checks from a fresh session, past any cache.
    fn check(&self) -> Result<(), HsmError> {
        let ad = b"sealpost-server/v1/readiness";
        let sealed = self.seal(ad, b"ready?")?;
        if self.open(ad, &sealed)?.as_slice() == b"ready?" {
            Ok(())
        } else {
            Err(HsmError::Integrity)
        }
    }
}

/// An HSM whose calls are timed into the metrics (`sealpost_hsm_call_seconds{op}`,
/// `sealpost_hsm_errors_total{op}`); the service wraps whatever HSM it is given.
pub struct MeteredHsm(pub std::sync::Arc<dyn Hsm>);

impl MeteredHsm {
    fn time<T>(
        &self,
        op: &'static str,
        call: impl FnOnce(&dyn Hsm) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let started = std::time::Instant::now();
        let out = call(self.0.as_ref());
        crate::metrics::timed(
            "sealpost_hsm_call_seconds",
            "sealpost_hsm_errors_total",
            op,
            started,
            out.is_ok(),
        );
        out
    }
}

impl Hsm for MeteredHsm {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn is_in_process(&self) -> bool {
        self.0.is_in_process()
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError> {
        self.time("seal", |h| h.seal(aad, plaintext))
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        self.time("open", |h| h.open(aad, sealed))
    }

    fn oprf_hmac(&self, message: &[u8]) -> Result<Zeroizing<[u8; 64]>, HsmError> {
        self.time("oprf_hmac", |h| h.oprf_hmac(message))
    }

    fn log_sign(&self, message: &[u8]) -> Result<[u8; 64], HsmError> {
        self.time("log_sign", |h| h.log_sign(message))
    }

    fn log_public_key(&self) -> Result<[u8; 32], HsmError> {
        self.time("log_public_key", |h| h.log_public_key())
    }

    fn check(&self) -> Result<(), HsmError> {
        self.time("check", |h| h.check())
    }
}

mod sealed;

pub mod pkcs11;
pub mod software;

pub use pkcs11::{Pkcs11Config, Pkcs11Hsm, Provisioned};
pub use software::SoftwareHsm;
