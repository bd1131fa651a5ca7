//! Real components for tests, started in temporary directories and stopped when dropped.
//!
//! Nothing here is a mock: each helper runs the real Debian package (`scripts/install-deps.sh`
//! installs them) and waits until it answers.
//!
//! - [`softhsm`]: a SoftHSMv2 token in a private directory with its own config file.
//! - [`postgres`]: a PostgreSQL cluster made with `initdb`, listening on loopback.

pub mod postgres;
pub mod softhsm;
