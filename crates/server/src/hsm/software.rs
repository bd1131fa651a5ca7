//! A software stand-in for an HSM: the keys live in a file next to the data.
//!
//! This is the embedded single-machine default, and it is **not an HSM**. The sealing
//! key and the OPRF seed sit in a key file, so a thief who copies the data directory
//! including that file can open every sealed blob and run offline password guesses.
//! It still keeps a database dump alone (a backup, a replica) useless, and it keeps the
//! server's code the same as with a real HSM. [`SoftwareHsm::describe`] says all of this,
//! and the server logs it at start-up.
//!
//! Key file layout (126 bytes, mode 0600):
//!
//! ```text
//! "sealpost soft-hsm key file v1\n" (30 bytes) ‖ sealing key (32 bytes) ‖ OPRF seed (64 bytes)
//! ```
//!
//! Both keys come from the OS RNG. The file is created atomically (a temp file in the same
//! directory, fsync, then a hard link to the final name, which fails rather than replace
//! a key file another process created meanwhile; then the directory is fsynced). A file
//! of the wrong length, with the wrong header, or readable or writable by group or
//! others is refused: a key file is treated like an SSH private key.
//!
//! Sealing is XChaCha20-Poly1305 with a random 24-byte nonce, in the shared blob format
//! of `sealed.rs`. The key id written into blobs is `file-` followed by 16 hex digits of
//! an HMAC of the sealing key, so a blob from another key file is reported as
//! [`HsmError::UnknownKey`] rather than as damage. `oprf_hmac` is HMAC-SHA512 under the
//! seed. The transparency log's Ed25519 key is derived from the sealing key (the first 32
//! bytes of HMAC-SHA512 of a fixed label under it), so the key file keeps its layout.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Sha256, Sha512};
use zeroize::{Zeroize, Zeroizing};

use super::sealed::{self, SealedBlob};
use super::{Hsm, HsmError};

/// The header every key file starts with.
const MAGIC: &[u8; 30] = b"sealpost soft-hsm key file v1\n";
const SEAL_KEY_LEN: usize = 32;
const OPRF_SEED_LEN: usize = 64;
const FILE_LEN: usize = MAGIC.len() + SEAL_KEY_LEN + OPRF_SEED_LEN;
const NONCE_LEN: usize = 24;
/// Domain string for the key id derived from the sealing key.
const KEY_ID_INFO: &[u8] = b"sealpost/soft-hsm/key-id";
/// Domain string for the log signing key derived from the sealing key.
const LOG_KEY_INFO: &[u8] = b"sealpost/soft-hsm/log-signing-key-v1";

/// Keys in a file, used through the [`Hsm`] trait. Not an HSM: see the module docs.
pub struct SoftwareHsm {
    path: PathBuf,
    key_id: String,
    /// Zeroizes its key on drop.
    cipher: XChaCha20Poly1305,
    oprf_seed: Zeroizing<[u8; OPRF_SEED_LEN]>,
    /// Zeroizes on drop (ed25519-dalek's `zeroize` feature).
    log_key: ed25519_dalek::SigningKey,
}

impl SoftwareHsm {
    /// Opens the key file at `path`, creating it with fresh random keys (mode 0600) if it
    /// does not exist. The directory must exist.
    ///
    /// Errors with [`HsmError::Config`] if the file cannot be read or written, has the
    /// wrong length or header, or is accessible by group or others.
    pub fn open_or_create(path: &Path) -> Result<Self, HsmError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_key_file(path)?;
                File::open(path).map_err(|e| config(path, "cannot open the new key file", &e))?
            }
            Err(e) => return Err(config(path, "cannot open the key file", &e)),
        };
        let bytes = read_key_file(path, file)?;
        Self::from_file_bytes(path, &bytes)
    }

    /// The key file this HSM reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key id written into sealed blobs (`file-` and 16 hex digits).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<Self, HsmError> {
        let bad = || {
            HsmError::Config(format!(
                "{} is not a Sealpost key file (expected {FILE_LEN} bytes starting with {:?})",
                path.display(),
                String::from_utf8_lossy(MAGIC).trim_end()
            ))
        };
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(bad)?;
        if rest.len() != SEAL_KEY_LEN + OPRF_SEED_LEN {
            return Err(bad());
        }
        let (seal_key, seed) = rest.split_at(SEAL_KEY_LEN);
        let cipher = XChaCha20Poly1305::new_from_slice(seal_key).map_err(|_| bad())?;
        let mut oprf_seed = Zeroizing::new([0u8; OPRF_SEED_LEN]);
        oprf_seed.copy_from_slice(seed);
        Ok(Self {
            path: path.to_owned(),
            key_id: key_id_of(seal_key)?,
            cipher,
            oprf_seed,
            log_key: log_key_of(seal_key)?,
        })
    }
}

impl Hsm for SoftwareHsm {
    fn describe(&self) -> String {
        format!(
            "software key file {} — NOT an HSM: the sealing key and the OPRF seed are stored \
             in this file, so anyone who copies the data directory including it can open every \
             sealed blob and run offline password guesses against every account; use a PKCS#11 \
             HSM (hsm = \"pkcs11\") when that matters",
            self.path.display()
        )
    }

    /// A seal is one AEAD call on a short blob and an HMAC a few SHA-512 blocks: about
    /// two microseconds each here (the latency probe in `tests/hsm.rs`), less than a
    /// thread hand-off.
    fn is_in_process(&self) -> bool {
        true
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| HsmError::Unavailable(format!("the OS random generator failed: {e}")))?;
        let ad = sealed::associated_data(&self.key_id, aad);
        let ciphertext = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &ad,
                },
            )
            .map_err(|_| HsmError::Malformed("plaintext too long to seal"))?;
        SealedBlob {
            key_id: &self.key_id,
            nonce: &nonce,
            ciphertext: &ciphertext,
        }
        .encode()
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let blob = SealedBlob::parse(sealed)?;
        if blob.key_id != self.key_id {
            return Err(HsmError::UnknownKey(blob.key_id.to_owned()));
        }
        let nonce: [u8; NONCE_LEN] = blob
            .nonce
            .try_into()
            .map_err(|_| HsmError::Malformed("nonce length does not fit XChaCha20-Poly1305"))?;
        let ad = sealed::associated_data(&self.key_id, aad);
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: blob.ciphertext,
                    aad: &ad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| HsmError::Integrity)
    }

    fn oprf_hmac(&self, message: &[u8]) -> Result<Zeroizing<[u8; 64]>, HsmError> {
        let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(self.oprf_seed.as_slice())
            .map_err(|_| HsmError::Config("HMAC refused the OPRF seed".into()))?;
        mac.update(message);
        let mut tag = mac.finalize().into_bytes();
        let mut out = Zeroizing::new([0u8; 64]);
        out.copy_from_slice(tag.as_slice());
        tag.as_mut_slice().zeroize();
        Ok(out)
    }

    fn log_sign(&self, message: &[u8]) -> Result<[u8; 64], HsmError> {
        use ed25519_dalek::Signer;
        Ok(self.log_key.sign(message).to_bytes())
    }

    fn log_public_key(&self) -> Result<[u8; 32], HsmError> {
        Ok(self.log_key.verifying_key().to_bytes())
    }
}

impl fmt::Debug for SoftwareHsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareHsm")
            .field("path", &self.path)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// `file-` ‖ hex(HMAC-SHA256(seal key, info)[..8]): names the key without revealing it.
fn key_id_of(seal_key: &[u8]) -> Result<String, HsmError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(seal_key)
        .map_err(|_| HsmError::Config("HMAC refused the sealing key".into()))?;
    mac.update(KEY_ID_INFO);
    let digest = mac.finalize().into_bytes();
    let id: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(format!("file-{id}"))
}

/// The log signing key: the first 32 bytes of HMAC-SHA512(sealing key, [`LOG_KEY_INFO`]).
fn log_key_of(seal_key: &[u8]) -> Result<ed25519_dalek::SigningKey, HsmError> {
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(seal_key)
        .map_err(|_| HsmError::Config("HMAC refused the sealing key".into()))?;
    mac.update(LOG_KEY_INFO);
    let mut tag = mac.finalize().into_bytes();
    let mut seed = Zeroizing::new([0u8; 32]);
    for (d, s) in seed.iter_mut().zip(tag.iter()) {
        *d = *s;
    }
    tag.as_mut_slice().zeroize();
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn read_key_file(path: &Path, file: File) -> Result<Zeroizing<Vec<u8>>, HsmError> {
    let meta = file
        .metadata()
        .map_err(|e| config(path, "cannot stat the key file", &e))?;
    if !meta.is_file() {
        return Err(HsmError::Config(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    check_permissions(path, &meta)?;
    if meta.len() != FILE_LEN as u64 {
        return Err(HsmError::Config(format!(
            "key file {} has {} bytes, expected {FILE_LEN}: damaged or not a Sealpost key file",
            path.display(),
            meta.len()
        )));
    }
    // Read one byte more than expected so a file that grew meanwhile is noticed.
    let mut bytes = Zeroizing::new(Vec::with_capacity(FILE_LEN + 1));
    file.take(FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| config(path, "cannot read the key file", &e))?;
    Ok(bytes)
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), HsmError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(HsmError::Config(format!(
            "key file {} has mode {mode:04o}: group or others may access it; \
             run `chmod 600 {}` (and consider whether the keys have leaked)",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<(), HsmError> {
    // No POSIX modes here; the data directory's ACL must protect the file.
    Ok(())
}

/// Writes a fresh key file at `path` without ever replacing an existing one.
fn create_key_file(path: &Path) -> Result<(), HsmError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| HsmError::Config(format!("{} is not a file path", path.display())))?;

    let mut contents = Zeroizing::new(Vec::with_capacity(FILE_LEN));
    contents.extend_from_slice(MAGIC);
    let mut keys = Zeroizing::new([0u8; SEAL_KEY_LEN + OPRF_SEED_LEN]);
    OsRng
        .try_fill_bytes(keys.as_mut_slice())
        .map_err(|e| HsmError::Unavailable(format!("the OS random generator failed: {e}")))?;
    contents.extend_from_slice(keys.as_slice());

    let mut suffix = [0u8; 8];
    OsRng
        .try_fill_bytes(&mut suffix)
        .map_err(|e| HsmError::Unavailable(format!("the OS random generator failed: {e}")))?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy()));

    let result = write_new_file(&tmp, &contents).and_then(|()| publish(&tmp, path));
    // The temp name is gone after a successful rename; otherwise remove it.
    if let Err(e) = fs::remove_file(&tmp)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %tmp.display(), error = %e, "could not remove a temporary key file");
    }
    result.map_err(|e| config(path, "cannot create the key file", &e))?;
    sync_dir(dir).map_err(|e| config(dir, "cannot fsync the key file's directory", &e))?;
    tracing::info!(path = %path.display(), "created a new software key file");
    Ok(())
}

fn write_new_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Gives the finished temp file its final name. A hard link fails if the name exists, so
/// two servers starting at once cannot replace each other's key (which would make
/// everything sealed under the first unreadable); the loser simply uses the winner's
/// file. Filesystems without hard links fall back to a rename after a check.
fn publish(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(link_error) => {
            if path.exists() {
                return Ok(());
            }
            tracing::debug!(error = %link_error, "hard link failed, renaming the key file instead");
            fs::rename(tmp, path)
        }
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn config(path: &Path, what: &str, error: &io::Error) -> HsmError {
    HsmError::Config(format!("{what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_hsm() -> (tempfile::TempDir, SoftwareHsm) {
        let dir = tempfile::tempdir().unwrap();
        let hsm = SoftwareHsm::open_or_create(&dir.path().join("hsm.key")).unwrap();
        (dir, hsm)
    }

    #[test]
    fn creates_a_private_file_and_reopens_the_same_keys() {
        let (dir, hsm) = new_hsm();
        let path = dir.path().join("hsm.key");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), FILE_LEN as u64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        // No temp file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let sealed = hsm.seal(b"aad", b"secret").unwrap();
        let again = SoftwareHsm::open_or_create(&path).unwrap();
        assert_eq!(again.key_id(), hsm.key_id());
        assert_eq!(again.open(b"aad", &sealed).unwrap().as_slice(), b"secret");
        assert_eq!(
            *again.oprf_hmac(b"m").unwrap(),
            *hsm.oprf_hmac(b"m").unwrap()
        );
    }

    #[test]
    fn key_id_is_derived_and_valid() {
        let (_dir, hsm) = new_hsm();
        assert!(hsm.key_id().starts_with("file-"));
        assert_eq!(hsm.key_id().len(), 5 + 16);
        sealed::check_key_id(hsm.key_id()).unwrap();
    }

    #[test]
    fn oprf_hmac_is_hmac_sha512_over_the_seed() {
        let (dir, hsm) = new_hsm();
        let bytes = fs::read(dir.path().join("hsm.key")).unwrap();
        let seed = &bytes[MAGIC.len() + SEAL_KEY_LEN..];
        let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(seed).unwrap();
        mac.update(b"alice\0OprfKey");
        let expected = mac.finalize().into_bytes();
        assert_eq!(
            hsm.oprf_hmac(b"alice\0OprfKey").unwrap().as_slice(),
            expected.as_slice()
        );
    }

    #[test]
    fn nonces_differ_between_seals() {
        let (_dir, hsm) = new_hsm();
        let a = hsm.seal(b"", b"same").unwrap();
        let b = hsm.seal(b"", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_missing_directory_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = SoftwareHsm::open_or_create(&dir.path().join("nope/hsm.key")).unwrap_err();
        assert!(matches!(err, HsmError::Config(_)), "{err}");
    }

    #[test]
    fn debug_does_not_print_keys() {
        let (_dir, hsm) = new_hsm();
        let shown = format!("{hsm:?}");
        assert!(shown.contains("SoftwareHsm"));
        assert!(!shown.contains("cipher") && !shown.contains("seed"));
    }

    #[test]
    fn describe_warns_that_this_is_not_an_hsm() {
        let (_dir, hsm) = new_hsm();
        let text = hsm.describe();
        assert!(text.contains("NOT an HSM"), "{text}");
        assert!(text.contains("offline password guesses"), "{text}");
    }
}
