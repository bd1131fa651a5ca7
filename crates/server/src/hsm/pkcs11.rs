//! A PKCS#11 token as the HSM (crate cryptoki; SoftHSMv2 in tests, any PKCS#11 HSM in
//! production).
//!
//! Two secret keys and one key pair live on the token, found by label, the secret and
//! private ones sensitive and non-extractable:
//!
//! - the **sealing key** (default label `seal-v1`): AES-256, used with `CKM_AES_GCM`, a
//!   12-byte IV from the OS RNG (not the token's) and a 128-bit tag, in the blob format of
//!   `sealed.rs`; the label is the key id written into every blob, so keys rotate by
//!   provisioning `seal-v2` and re-sealing. Random 96-bit IVs are safe well below 2^32
//!   seals per key.
//! - the **OPRF key** (default label `oprf-v1`): a 64-byte generic secret generated inside
//!   the token with `CKM_GENERIC_SECRET_KEY_GEN`, used with `CKM_SHA512_HMAC` (`C_Sign`).
//! - the **log key** (default label `log-v1`): an Ed25519 key pair generated inside the
//!   token with `CKM_EC_EDWARDS_KEY_PAIR_GEN`, used with `CKM_EDDSA` to sign the key
//!   directory's tree heads; its public half (`CKA_EC_POINT`) is read once at connect.
//!
//! [`Pkcs11Hsm::provision`] creates missing keys; [`Pkcs11Hsm::connect`] only finds them
//! and refuses keys that are extractable or not sensitive.
//!
//! # Process-wide state
//!
//! `C_Initialize` is per process and per module, so the loaded modules are kept in one
//! process-wide table and never finalized: several `Pkcs11Hsm`s (two tokens, or a
//! `provision` followed by `connect`) share one initialized library, and
//! `CKR_CRYPTOKI_ALREADY_INITIALIZED` from another user of the same module is accepted.
//! The module reads its own configuration at that first `C_Initialize`: SoftHSMv2 reads
//! `SOFTHSM2_CONF` from the process environment, which the service manager (or a test's
//! parent process, see `sealpost_testkit::softhsm`) must set; this crate never sets
//! environment variables.
//!
//! # Sessions
//!
//! A cryptoki `Session` is `Send` but not `Sync`, so idle sessions wait in a
//! `Mutex<Vec<_>>`: a call takes one (or opens and logs in a new one when none is idle),
//! uses it without holding the lock, and returns it. A session whose call failed is
//! dropped, and the call answers [`HsmError::Unavailable`] — except a blob that does not
//! authenticate, which is [`HsmError::Integrity`] and keeps the session. (SoftHSMv2
//! reports a bad GCM tag as `CKR_GENERAL_ERROR`, so a failed decryption is told apart
//! from a failing token by sealing and opening a canary on the same session.) Each
//! pooled session carries the key handles it looked up, so nothing depends on handles
//! surviving after every session was closed (which logs the application out).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use super::sealed::{self, SealedBlob};
use super::{Hsm, HsmError};

/// The sealing key's label unless configured otherwise.
pub const DEFAULT_SEAL_KEY_LABEL: &str = "seal-v1";
/// The OPRF key's label unless configured otherwise.
pub const DEFAULT_OPRF_KEY_LABEL: &str = "oprf-v1";
/// The log signing key pair's label unless configured otherwise.
pub const DEFAULT_LOG_KEY_LABEL: &str = "log-v1";
/// DER of the OID 1.3.101.112 (id-Ed25519): `CKA_EC_PARAMS` of an Ed25519 key.
const ED25519_OID_DER: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];

const IV_LEN: usize = 12;
const TAG_LEN: usize = sealed::TAG_LEN;
const TAG_BITS: u64 = 128;
const SEAL_KEY_BYTES: u64 = 32;
const OPRF_KEY_BYTES: u64 = 64;
const HMAC_LEN: usize = 64;
/// PKCS#11 token labels are at most 32 bytes.
const MAX_TOKEN_LABEL_LEN: usize = 32;
/// Idle sessions kept open; more may exist while busy, the extra ones close when returned.
const MAX_IDLE_SESSIONS: usize = 16;

/// Where the token is and how to use it.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label; the slot is found by it (slot ids are not stable).
    pub token_label: String,
    /// The user PIN. Zeroized on drop and never printed.
    pub user_pin: Zeroizing<String>,
    /// The label of the AES-256 sealing key; also the key id in sealed blobs.
    pub seal_key_label: String,
    /// The label of the 64-byte HMAC-SHA512 OPRF key.
    pub oprf_key_label: String,
    /// The label of the Ed25519 key pair that signs the transparency log's heads.
    pub log_key_label: String,
}

impl Pkcs11Config {
    /// A configuration with the default key labels ([`DEFAULT_SEAL_KEY_LABEL`],
    /// [`DEFAULT_OPRF_KEY_LABEL`]).
    pub fn new(
        module: impl Into<PathBuf>,
        token_label: impl Into<String>,
        user_pin: Zeroizing<String>,
    ) -> Self {
        Self {
            module: module.into(),
            token_label: token_label.into(),
            user_pin,
            seal_key_label: DEFAULT_SEAL_KEY_LABEL.to_owned(),
            oprf_key_label: DEFAULT_OPRF_KEY_LABEL.to_owned(),
            log_key_label: DEFAULT_LOG_KEY_LABEL.to_owned(),
        }
    }

    fn check(&self) -> Result<(), HsmError> {
        if self.token_label.is_empty() || self.token_label.len() > MAX_TOKEN_LABEL_LEN {
            return Err(HsmError::Config(format!(
                "token label {:?} must be 1 to {MAX_TOKEN_LABEL_LEN} bytes",
                self.token_label
            )));
        }
        sealed::check_key_id(&self.seal_key_label)?;
        sealed::check_key_id(&self.oprf_key_label)?;
        sealed::check_key_id(&self.log_key_label)?;
        if self.seal_key_label == self.oprf_key_label
            || self.log_key_label == self.seal_key_label
            || self.log_key_label == self.oprf_key_label
        {
            return Err(HsmError::Config(
                "the sealing key, the OPRF key and the log key need different labels".into(),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("user_pin", &"<redacted>")
            .field("seal_key_label", &self.seal_key_label)
            .field("oprf_key_label", &self.oprf_key_label)
            .field("log_key_label", &self.log_key_label)
            .finish()
    }
}

/// What [`Pkcs11Hsm::provision`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provisioned {
    /// The sealing key was generated now (false: it existed already).
    pub seal_key_created: bool,
    /// The OPRF key was generated now (false: it existed already).
    pub oprf_key_created: bool,
    /// The log key pair was generated now (false: it existed already).
    pub log_key_created: bool,
}

/// A PKCS#11 token holding the sealing key and the OPRF key.
pub struct Pkcs11Hsm {
    library: Pkcs11,
    slot: Slot,
    module: PathBuf,
    token_label: String,
    pin: AuthPin,
    seal_label: String,
    oprf_label: String,
    log_label: String,
    log_public: [u8; 32],
    idle: Mutex<Vec<PooledSession>>,
}

/// A logged-in session and the key handles it found.
struct PooledSession {
    session: Session,
    seal_key: ObjectHandle,
    oprf_key: ObjectHandle,
    log_key: ObjectHandle,
}

/// Which of the two keys, for lookups, templates and checks.
#[derive(Clone, Copy)]
enum KeyRole {
    Seal,
    Oprf,
}

impl Pkcs11Hsm {
    /// Loads the module (once per process), finds the token by label, logs in and finds
    /// both keys, refusing keys that are extractable or not sensitive.
    ///
    /// A missing module, token, key or a wrong PIN is [`HsmError::Config`]; a module or
    /// token that fails is [`HsmError::Unavailable`].
    pub fn connect(config: &Pkcs11Config) -> Result<Self, HsmError> {
        config.check()?;
        let library = load_module(&config.module)?;
        let slot = find_token(&library, &config.module, &config.token_label)?;
        let hsm = Self {
            library,
            slot,
            module: config.module.clone(),
            token_label: config.token_label.clone(),
            pin: AuthPin::from(config.user_pin.as_str()),
            seal_label: config.seal_key_label.clone(),
            oprf_label: config.oprf_key_label.clone(),
            log_label: config.log_key_label.clone(),
            log_public: [0; 32],
            idle: Mutex::new(Vec::new()),
        };
        let pooled = hsm.open_session()?;
        for (role, key) in [
            (KeyRole::Seal, pooled.seal_key),
            (KeyRole::Oprf, pooled.oprf_key),
        ] {
            check_key(
                &pooled.session,
                key,
                role,
                hsm.label(role),
                &hsm.token_label,
            )?;
        }
        check_log_key(
            &pooled.session,
            pooled.log_key,
            &hsm.log_label,
            &hsm.token_label,
        )?;
        let log_public = log_public_key(&pooled.session, &hsm.log_label, &hsm.token_label)?;
        hsm.give_back(pooled);
        Ok(Self { log_public, ..hsm })
    }

    /// Creates whichever of the two keys is missing on the token, inside the token, then
    /// checks that both are sensitive, non-extractable and that their value cannot be
    /// read. Idempotent.
    pub fn provision(config: &Pkcs11Config) -> Result<Provisioned, HsmError> {
        config.check()?;
        let library = load_module(&config.module)?;
        let slot = find_token(&library, &config.module, &config.token_label)?;
        let token = config.token_label.as_str();
        let session = library
            .open_rw_session(slot)
            .map_err(|e| unavailable(token, "opening a read-write session", &e))?;
        log_in(&session, &AuthPin::from(config.user_pin.as_str()), token)?;

        let seal_key_created = ensure_key(&session, KeyRole::Seal, &config.seal_key_label, token)?;
        let oprf_key_created = ensure_key(&session, KeyRole::Oprf, &config.oprf_key_label, token)?;
        let log_key_created = ensure_log_key(&session, &config.log_key_label, token)?;
        if seal_key_created || oprf_key_created || log_key_created {
            tracing::info!(
                token,
                seal_key_created,
                oprf_key_created,
                log_key_created,
                "provisioned HSM keys"
            );
        }
        Ok(Provisioned {
            seal_key_created,
            oprf_key_created,
            log_key_created,
        })
    }

    /// The label of the token in use.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    fn label(&self, role: KeyRole) -> &str {
        match role {
            KeyRole::Seal => &self.seal_label,
            KeyRole::Oprf => &self.oprf_label,
        }
    }

    fn open_session(&self) -> Result<PooledSession, HsmError> {
        let token = self.token_label.as_str();
        let session = self
            .library
            .open_ro_session(self.slot)
            .map_err(|e| unavailable(token, "opening a session", &e))?;
        log_in(&session, &self.pin, token)?;
        let seal_key = find_key(&session, &self.seal_label, token)?;
        let oprf_key = find_key(&session, &self.oprf_label, token)?;
        let log_key = find_object(&session, ObjectClass::PRIVATE_KEY, &self.log_label, token)?
            .ok_or_else(|| missing_key("key pair", &self.log_label, token))?;
        Ok(PooledSession {
            session,
            seal_key,
            oprf_key,
            log_key,
        })
    }

    fn take_session(&self) -> Result<PooledSession, HsmError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(pooled) => Ok(pooled),
            None => self.open_session(),
        }
    }

    fn give_back(&self, pooled: PooledSession) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(pooled);
        }
        // Otherwise the session closes here, on drop.
    }

    /// Runs `op` on a pooled session. A failure drops the session and is
    /// [`HsmError::Unavailable`].
    fn with_session<T>(
        &self,
        what: &str,
        op: impl FnOnce(&PooledSession) -> Result<T, CkError>,
    ) -> Result<T, HsmError> {
        let pooled = self.take_session()?;
        match op(&pooled) {
            Ok(value) => {
                self.give_back(pooled);
                Ok(value)
            }
            Err(e) => Err(self.discard(pooled, what, &e)),
        }
    }

    /// Drops a session that failed and says so.
    fn discard(&self, pooled: PooledSession, what: &str, error: &CkError) -> HsmError {
        drop(pooled);
        tracing::warn!(token = %self.token_label, %error, "{what} failed; session dropped");
        unavailable(&self.token_label, what, error)
    }

    /// AES-GCM decryption of a parsed blob on a pooled session.
    ///
    /// A bad tag must be [`HsmError::Integrity`] and a failing token
    /// [`HsmError::Unavailable`], but tokens do not report a bad tag alike: the standard
    /// says `CKR_ENCRYPTED_DATA_INVALID`, SoftHSMv2 2.6 answers `CKR_GENERAL_ERROR`. So
    /// after such an error the same session seals and opens a canary: if that works the
    /// token is healthy and the blob was bad; if not, the session is dropped.
    fn decrypt(
        &self,
        iv: &[u8; IV_LEN],
        ad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        const WHAT: &str = "C_Decrypt (AES-GCM)";
        let pooled = self.take_session()?;
        match gcm_decrypt(&pooled, iv, ad, ciphertext) {
            Ok(plaintext) => {
                self.give_back(pooled);
                Ok(plaintext)
            }
            Err(
                e @ CkError::Pkcs11(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError
                    | RvError::FunctionFailed,
                    _,
                ),
            ) => match canary(&pooled) {
                Ok(()) => {
                    self.give_back(pooled);
                    Err(HsmError::Integrity)
                }
                Err(_) => Err(self.discard(pooled, WHAT, &e)),
            },
            Err(e) => Err(self.discard(pooled, WHAT, &e)),
        }
    }
}

fn gcm_encrypt(
    pooled: &PooledSession,
    iv: &[u8; IV_LEN],
    ad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CkError> {
    // GcmParams takes the IV mutably (a token may write a generated IV back); ours is fixed.
    let mut iv = *iv;
    let params = GcmParams::new(&mut iv, ad, TAG_BITS.into())?;
    pooled
        .session
        .encrypt(&Mechanism::AesGcm(params), pooled.seal_key, plaintext)
}

fn gcm_decrypt(
    pooled: &PooledSession,
    iv: &[u8; IV_LEN],
    ad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CkError> {
    let mut iv = *iv;
    let params = GcmParams::new(&mut iv, ad, TAG_BITS.into())?;
    pooled
        .session
        .decrypt(&Mechanism::AesGcm(params), pooled.seal_key, ciphertext)
        .map(Zeroizing::new)
}

/// Seals and opens a fixed message on `pooled`: Ok if the token works.
fn canary(pooled: &PooledSession) -> Result<(), CkError> {
    const MESSAGE: &[u8] = b"sealpost canary";
    let mut iv = [0u8; IV_LEN];
    OsRng
        .try_fill_bytes(&mut iv)
        .map_err(|_| CkError::InvalidValue)?;
    let ad = b"sealpost/hsm-canary";
    let sealed = gcm_encrypt(pooled, &iv, ad, MESSAGE)?;
    let opened = gcm_decrypt(pooled, &iv, ad, &sealed)?;
    if opened.as_slice() == MESSAGE {
        Ok(())
    } else {
        Err(CkError::InvalidValue)
    }
}

impl Hsm for Pkcs11Hsm {
    fn describe(&self) -> String {
        format!(
            "PKCS#11 token '{}' (module {}): sealing key '{}' (AES-256-GCM), OPRF key '{}' \
             (HMAC-SHA512) and log key '{}' (Ed25519), all sensitive and non-extractable",
            self.token_label,
            self.module.display(),
            self.seal_label,
            self.oprf_label,
            self.log_label
        )
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError> {
        let mut iv = [0u8; IV_LEN];
        OsRng
            .try_fill_bytes(&mut iv)
            .map_err(|e| HsmError::Unavailable(format!("the OS random generator failed: {e}")))?;
        let ad = sealed::associated_data(&self.seal_label, aad);
        let ciphertext = self.with_session("C_Encrypt (AES-GCM)", |pooled| {
            gcm_encrypt(pooled, &iv, &ad, plaintext)
        })?;
        if Some(ciphertext.len()) != plaintext.len().checked_add(TAG_LEN) {
            return Err(HsmError::Unavailable(format!(
                "token '{}' returned {} bytes of AES-GCM output for {} bytes of input",
                self.token_label,
                ciphertext.len(),
                plaintext.len()
            )));
        }
        SealedBlob {
            key_id: &self.seal_label,
            nonce: &iv,
            ciphertext: &ciphertext,
        }
        .encode()
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let blob = SealedBlob::parse(sealed)?;
        if blob.key_id != self.seal_label {
            return Err(HsmError::UnknownKey(blob.key_id.to_owned()));
        }
        let iv: [u8; IV_LEN] = blob
            .nonce
            .try_into()
            .map_err(|_| HsmError::Malformed("IV length does not fit AES-GCM"))?;
        let ad = sealed::associated_data(&self.seal_label, aad);
        self.decrypt(&iv, &ad, blob.ciphertext)
    }

    fn oprf_hmac(&self, message: &[u8]) -> Result<Zeroizing<[u8; 64]>, HsmError> {
        let mac = self.with_session("C_Sign (SHA512-HMAC)", |pooled| {
            pooled
                .session
                .sign(&Mechanism::Sha512Hmac, pooled.oprf_key, message)
                .map(Zeroizing::new)
        })?;
        if mac.len() != HMAC_LEN {
            return Err(HsmError::Unavailable(format!(
                "token '{}' returned an HMAC-SHA512 of {} bytes",
                self.token_label,
                mac.len()
            )));
        }
        let mut out = Zeroizing::new([0u8; HMAC_LEN]);
        out.copy_from_slice(&mac);
        Ok(out)
    }

    fn log_sign(&self, message: &[u8]) -> Result<[u8; 64], HsmError> {
        let signature = self.with_session("C_Sign (EdDSA)", |pooled| {
            pooled.session.sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                pooled.log_key,
                message,
            )
        })?;
        signature.as_slice().try_into().map_err(|_| {
            HsmError::Unavailable(format!(
                "token '{}' returned an Ed25519 signature of {} bytes",
                self.token_label,
                signature.len()
            ))
        })
    }

    fn log_public_key(&self) -> Result<[u8; 32], HsmError> {
        Ok(self.log_public)
    }

    /// A new session (logged in, every key found by label) seals and opens a canary; the
    /// session is then closed. Pooled sessions and the handles they cached are not used,
    /// so a token that went away is noticed even while they still answer from memory.
    fn check(&self) -> Result<(), HsmError> {
        let fresh = self.open_session()?;
        canary(&fresh).map_err(|e| unavailable(&self.token_label, "the readiness canary", &e))
    }
}

impl fmt::Debug for Pkcs11Hsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Hsm")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("seal_label", &self.seal_label)
            .field("oprf_label", &self.oprf_label)
            .field("log_label", &self.log_label)
            .finish_non_exhaustive()
    }
}

/// Loads and initializes `module` once per process (see the module docs).
fn load_module(module: &Path) -> Result<Pkcs11, HsmError> {
    static LOADED: OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = OnceLock::new();

    let canonical = module.canonicalize().map_err(|e| {
        HsmError::Config(format!(
            "PKCS#11 module {} cannot be used: {e}",
            module.display()
        ))
    })?;
    let mut loaded = LOADED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some((_, library)) = loaded.iter().find(|(path, _)| *path == canonical) {
        return Ok(library.clone());
    }
    let library = Pkcs11::new(&canonical).map_err(|e| {
        HsmError::Config(format!(
            "cannot load PKCS#11 module {}: {e}",
            module.display()
        ))
    })?;
    match library.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(HsmError::Unavailable(format!(
                "C_Initialize of PKCS#11 module {} failed: {e} (for SoftHSMv2: is SOFTHSM2_CONF \
                 set, and does its token directory exist?)",
                module.display()
            )));
        }
    }
    loaded.push((canonical, library.clone()));
    Ok(library)
}

/// The slot holding the initialized token labelled `label`.
fn find_token(library: &Pkcs11, module: &Path, label: &str) -> Result<Slot, HsmError> {
    let slots = library
        .get_slots_with_initialized_token()
        .map_err(|e| unavailable(label, "listing slots", &e))?;
    let mut matching = Vec::new();
    let mut others = Vec::new();
    for slot in slots {
        // A slot that cannot describe its token cannot be the one we want.
        let Ok(info) = library.get_token_info(slot) else {
            continue;
        };
        if info.label() == label {
            matching.push(slot);
        } else {
            others.push(info.label().to_owned());
        }
    }
    match matching.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(HsmError::Config(format!(
            "no PKCS#11 token labelled '{label}' in module {} (tokens present: {})",
            module.display(),
            if others.is_empty() {
                "none".to_owned()
            } else {
                others.join(", ")
            }
        ))),
        several => Err(HsmError::Config(format!(
            "{} PKCS#11 tokens are labelled '{label}' in module {}; labels must be unique",
            several.len(),
            module.display()
        ))),
    }
}

/// Logs the application in as the user (login is per token and application, so a second
/// session finds it logged in already).
fn log_in(session: &Session, pin: &AuthPin, token: &str) -> Result<(), HsmError> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => Err(
            HsmError::Config(format!("wrong user PIN for PKCS#11 token '{token}'")),
        ),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(HsmError::Config(format!(
            "the user PIN of PKCS#11 token '{token}' is locked"
        ))),
        Err(CkError::Pkcs11(RvError::UserPinNotInitialized, _)) => Err(HsmError::Config(format!(
            "PKCS#11 token '{token}' has no user PIN set"
        ))),
        Err(e) => Err(unavailable(token, "logging in", &e)),
    }
}

/// The one secret key labelled `label`, if any.
fn find_key_handle(
    session: &Session,
    label: &str,
    token: &str,
) -> Result<Option<ObjectHandle>, HsmError> {
    find_object(session, ObjectClass::SECRET_KEY, label, token)
}

/// The one object of `class` labelled `label`, if any.
fn find_object(
    session: &Session,
    class: ObjectClass,
    label: &str,
    token: &str,
) -> Result<Option<ObjectHandle>, HsmError> {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| unavailable(token, "searching for keys", &e))?;
    match found.as_slice() {
        [] => Ok(None),
        [key] => Ok(Some(*key)),
        several => Err(HsmError::Config(format!(
            "{} objects of class {class} are labelled '{label}' on PKCS#11 token '{token}'; \
             labels must be unique",
            several.len()
        ))),
    }
}

fn missing_key(what: &str, label: &str, token: &str) -> HsmError {
    HsmError::Config(format!(
        "no {what} labelled '{label}' on PKCS#11 token '{token}' (provision the token first: \
         sealpost-server --config FILE --provision-hsm)"
    ))
}

fn find_key(session: &Session, label: &str, token: &str) -> Result<ObjectHandle, HsmError> {
    find_key_handle(session, label, token)?.ok_or_else(|| missing_key("secret key", label, token))
}

/// Finds or generates the Ed25519 log key pair labelled `label`, then checks it; true if
/// generated.
fn ensure_log_key(session: &Session, label: &str, token: &str) -> Result<bool, HsmError> {
    let (key, created) = match find_object(session, ObjectClass::PRIVATE_KEY, label, token)? {
        Some(key) => (key, false),
        None => {
            let id = Attribute::Id(label.as_bytes().to_vec());
            let name = Attribute::Label(label.as_bytes().to_vec());
            let public = [
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::EcParams(ED25519_OID_DER.to_vec()),
                id.clone(),
                name.clone(),
            ];
            let private = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Modifiable(false),
                Attribute::Sign(true),
                Attribute::Derive(false),
                id,
                name,
            ];
            let (_, private) = session
                .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
                .map_err(|e| {
                    HsmError::Unavailable(format!(
                        "PKCS#11 token '{token}' could not generate key pair '{label}': {e}"
                    ))
                })?;
            (private, true)
        }
    };
    check_log_key(session, key, label, token)?;
    log_public_key(session, label, token)?;
    Ok(created)
}

/// The public half of the log key pair: `CKA_EC_POINT` of the public key object, which
/// tokens give either raw (32 bytes) or as a DER OCTET STRING (`04 20` and 32 bytes).
fn log_public_key(session: &Session, label: &str, token: &str) -> Result<[u8; 32], HsmError> {
    let public = find_object(session, ObjectClass::PUBLIC_KEY, label, token)?
        .ok_or_else(|| missing_key("public key", label, token))?;
    let attributes = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .map_err(|e| unavailable(token, "reading the log public key", &e))?;
    let point = attributes.iter().find_map(|a| match a {
        Attribute::EcPoint(p) => Some(p.as_slice()),
        _ => None,
    });
    let raw = match point {
        Some([0x04, 0x20, rest @ ..]) if rest.len() == 32 => rest,
        Some(raw) if raw.len() == 32 => raw,
        _ => {
            return Err(HsmError::Config(format!(
                "log key '{label}' on PKCS#11 token '{token}' has no Ed25519 public point"
            )));
        }
    };
    raw.try_into()
        .map_err(|_| HsmError::Config(format!("log key '{label}': bad public point")))
}

/// Finds or generates the key labelled `label`, then checks it; true if generated.
fn ensure_key(
    session: &Session,
    role: KeyRole,
    label: &str,
    token: &str,
) -> Result<bool, HsmError> {
    let (key, created) = match find_key_handle(session, label, token)? {
        Some(key) => (key, false),
        None => (generate_key(session, role, label, token)?, true),
    };
    check_key(session, key, role, label, token)?;
    Ok(created)
}

fn generate_key(
    session: &Session,
    role: KeyRole,
    label: &str,
    token: &str,
) -> Result<ObjectHandle, HsmError> {
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Derive(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ];
    let mechanism = match role {
        KeyRole::Seal => {
            template.extend([
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(SEAL_KEY_BYTES.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Sign(false),
                Attribute::Verify(false),
                Attribute::AllowedMechanisms(vec![MechanismType::AES_GCM]),
            ]);
            Mechanism::AesKeyGen
        }
        KeyRole::Oprf => {
            // SoftHSMv2 2.6 supports CKM_GENERIC_SECRET_KEY_GEN (`pkcs11-tool -M`), and
            // its CKM_SHA512_HMAC accepts CKK_GENERIC_SECRET keys of 64..512 bytes.
            template.extend([
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(OPRF_KEY_BYTES.into()),
                Attribute::Sign(true),
                Attribute::Verify(true),
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
                Attribute::AllowedMechanisms(vec![MechanismType::SHA512_HMAC]),
            ]);
            Mechanism::GenericSecretKeyGen
        }
    };
    session.generate_key(&mechanism, &template).map_err(|e| {
        HsmError::Unavailable(format!(
            "PKCS#11 token '{token}' could not generate key '{label}': {e}"
        ))
    })
}

/// Refuses a key of the wrong type, or one whose value could leave the token.
fn check_key(
    session: &Session,
    key: ObjectHandle,
    role: KeyRole,
    label: &str,
    token: &str,
) -> Result<(), HsmError> {
    let (type_ok, wrong_type): (fn(KeyType) -> bool, _) = match role {
        KeyRole::Seal => (|t| t == KeyType::AES, "is not an AES key"),
        KeyRole::Oprf => (
            |t| t == KeyType::GENERIC_SECRET || t == KeyType::SHA512_HMAC,
            "is not a generic-secret or SHA512-HMAC key",
        ),
    };
    check_attributes(session, key, type_ok, wrong_type, label, token)
}

/// Refuses a log key that is not Ed25519 or whose private half could leave the token.
fn check_log_key(
    session: &Session,
    key: ObjectHandle,
    label: &str,
    token: &str,
) -> Result<(), HsmError> {
    check_attributes(
        session,
        key,
        |t| t == KeyType::EC_EDWARDS,
        "is not an Ed25519 (EC_EDWARDS) key",
        label,
        token,
    )
}

/// Refuses a key whose type fails `type_ok`, or whose value could leave the token
/// (not sensitive, extractable, or its value readable).
fn check_attributes(
    session: &Session,
    key: ObjectHandle,
    type_ok: fn(KeyType) -> bool,
    wrong_type: &str,
    label: &str,
    token: &str,
) -> Result<(), HsmError> {
    let attributes = session
        .get_attributes(
            key,
            &[
                AttributeType::KeyType,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Value,
            ],
        )
        .map_err(|e| unavailable(token, "reading key attributes", &e))?;
    let mut key_type = None;
    let (mut sensitive, mut extractable, mut value_readable) = (false, true, false);
    for attribute in &attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(*t),
            Attribute::Sensitive(s) => sensitive = *s,
            Attribute::Extractable(e) => extractable = *e,
            // A sensitive key's value is silently left out, not an error.
            Attribute::Value(_) => value_readable = true,
            _ => {}
        }
    }
    let problem = if !key_type.is_some_and(type_ok) {
        Some(wrong_type)
    } else if !sensitive || extractable || value_readable {
        Some("could leave the token (it must be sensitive and non-extractable)")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(HsmError::Config(format!(
            "key '{label}' on PKCS#11 token '{token}' {problem}"
        ))),
        None => Ok(()),
    }
}

fn unavailable(token: &str, what: &str, error: &CkError) -> HsmError {
    HsmError::Unavailable(format!("PKCS#11 token '{token}': {what} failed: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Pkcs11Config {
        Pkcs11Config::new(
            "/usr/lib/softhsm/libsofthsm2.so",
            "tok",
            Zeroizing::new("1234-secret".to_owned()),
        )
    }

    #[test]
    fn debug_redacts_the_pin() {
        let shown = format!("{:?}", config());
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("1234-secret"), "{shown}");
    }

    #[test]
    fn bad_labels_are_config_errors() {
        let mut c = config();
        c.token_label = "x".repeat(33);
        assert!(matches!(c.check(), Err(HsmError::Config(_))));
        let mut c = config();
        c.token_label.clear();
        assert!(matches!(c.check(), Err(HsmError::Config(_))));
        let mut c = config();
        c.seal_key_label = "seal v1".into();
        assert!(matches!(c.check(), Err(HsmError::Config(_))));
        let mut c = config();
        c.oprf_key_label = c.seal_key_label.clone();
        assert!(matches!(c.check(), Err(HsmError::Config(_))));
        assert!(config().check().is_ok());
    }

    #[test]
    fn a_missing_module_is_a_config_error_not_a_panic() {
        let mut c = config();
        c.module = "/nonexistent/libpkcs11.so".into();
        let err = Pkcs11Hsm::connect(&c).unwrap_err();
        assert!(matches!(err, HsmError::Config(_)), "{err}");
        assert!(
            err.to_string().contains("/nonexistent/libpkcs11.so"),
            "{err}"
        );
        let err = Pkcs11Hsm::provision(&c).unwrap_err();
        assert!(matches!(err, HsmError::Config(_)), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_module_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake.so");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let mut c = config();
        c.module = fake;
        let err = Pkcs11Hsm::connect(&c).unwrap_err();
        assert!(matches!(err, HsmError::Config(_)), "{err}");
    }
}
