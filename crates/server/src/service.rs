//! What the server does, free of HTTP: each public method is one API call.
//!
//! The HSM seals everything a client wrapped before it is stored, and derives each
//! user's OPRF key; a blob is opened only on its way to a session that has just
//! completed an OPAQUE login (or to a proven recovery code). HSM calls are blocking, so
//! they run in `spawn_blocking`.
//!
//! Two parts live in submodules: [`log`] (the key directory's transparency log: signed
//! heads and proofs) and [`activity`] (the per-account security activity log).

use std::net::IpAddr;
use std::sync::Arc;

use sealpost_crypto::SecretBytes;
use sealpost_crypto::opaque::{self, Ids, ServerKeys};
use sealpost_proto as proto;
use sealpost_proto::{Bytes, UserName};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::ServerError;
use crate::hsm::Hsm;
use crate::limit::RateLimiter;
use crate::mailer::{self, Mailer};
use crate::store::{
    Charge, ClaimOutcome, Credentials, DirectoryClaimRow, LoginState, NewAccount, Session, Store,
};

pub mod activity;
pub mod log;

use activity::Activity;

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The server's OPAQUE identity (bound into every key exchange).
    pub server_id: String,
    /// Lifetime of a session token, seconds.
    pub session_ttl: i64,
    /// Lifetime of a pending login or registration, seconds.
    pub pending_ttl: i64,
    /// Lifetime of a directory proof token, seconds (mail can be slow).
    pub directory_claim_ttl: i64,
    /// Live directory claims a user may have at once.
    pub directory_claims_per_user: i64,
    /// Live directory claims an address may have at once (nobody floods a mailbox).
    pub directory_claims_per_address: i64,
    /// Failed logins before an account locks.
    pub max_failed_logins: i64,
    /// How old (seconds) the login behind a session may be for the calls that need a
    /// fresh proof of the password (replacing the recovery code).
    pub fresh_login_secs: i64,
    /// Per-source rate limit for unauthenticated starts: sustained per second.
    pub rate_per_second: f64,
    /// Per-source rate limit: burst.
    pub rate_burst: f64,
    /// How long security events are kept, seconds.
    pub activity_retention: i64,
    /// Most security events kept per account (the oldest go first).
    pub activity_per_account: i64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            server_id: "sealpost".to_owned(),
            session_ttl: 12 * 3600,
            pending_ttl: 120,
            directory_claim_ttl: 24 * 3600,
            directory_claims_per_user: 5,
            directory_claims_per_address: 3,
            max_failed_logins: 10,
            fresh_login_secs: 300,
            rate_per_second: 5.0,
            rate_burst: 30.0,
            activity_retention: 180 * 86_400,
            activity_per_account: 1000,
        }
    }
}

/// The authenticated caller of a session endpoint.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Whose session.
    pub user: String,
    /// Which device.
    pub device_id: String,
    /// When its OPAQUE login finished.
    pub logged_in_at: i64,
}

/// The sync service.
pub struct Service {
    config: ServiceConfig,
    store: Arc<dyn Store>,
    hsm: Arc<dyn Hsm>,
    keys: ServerKeys,
    clock: Arc<dyn Clock>,
    limiter: RateLimiter,
    /// Sends the directory's proof mails; without one, claims are refused.
    mailer: Option<Arc<dyn Mailer>>,
    /// The transparency log's public key (its private half stays in the HSM).
    log_key: [u8; 32],
}

const SERVER_KEY_NAME: &str = "opaque-ake-private-key";
/// Pending-state kinds, prefixed to their ids so one kind's id never finishes another.
const KIND_LOGIN: &[u8] = b"login:";
const KIND_REGISTER: &[u8] = b"register:";
const KIND_PASSWORD: &[u8] = b"password:";
const KIND_RECOVERY: &[u8] = b"recovery:";

/// Associated data for an HSM seal: a label and whose it is.
fn aad(kind: &str, owner: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(32 + owner.len());
    a.extend_from_slice(b"sealpost-server/v1/");
    a.extend_from_slice(kind.as_bytes());
    a.push(0);
    a.extend_from_slice(owner);
    a
}

fn random_id() -> Result<String, ServerError> {
    let id = SecretBytes::<16>::random().map_err(|e| ServerError::internal("rng", e))?;
    Ok(id.expose().iter().map(|b| format!("{b:02x}")).collect())
}

fn pending_key(kind: &[u8], id: &str) -> Vec<u8> {
    [kind, id.as_bytes()].concat()
}

fn user_name(raw: &str) -> Result<UserName, ServerError> {
    UserName::parse(raw).map_err(|e| ServerError::bad_request("bad_user_name", e.to_string()))
}

fn check_device_id(id: &str) -> Result<(), ServerError> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ServerError::bad_request(
            "bad_device_id",
            "a device id is 32 hex characters",
        ));
    }
    Ok(())
}

fn check_device(id: &str, name: &str) -> Result<(), ServerError> {
    check_device_id(id)?;
    let n = name.chars().count();
    if n == 0 || n > 64 || name.chars().any(char::is_control) {
        return Err(ServerError::bad_request(
            "bad_device_name",
            "a device name is 1 to 64 printable characters",
        ));
    }
    Ok(())
}

/// A client blob the server stores as it is: 1 byte to 64 KiB.
fn check_blob(what: &str, b: &Bytes) -> Result<(), ServerError> {
    if b.0.is_empty() || b.0.len() > 64 * 1024 {
        return Err(ServerError::bad_request(
            "bad_blob",
            format!("{what} must be 1 byte to 64 KiB"),
        ));
    }
    Ok(())
}

fn opaque_bad(e: opaque::OpaqueError) -> ServerError {
    ServerError::bad_request("bad_opaque_message", e.to_string())
}

fn too_many_claims(message: &str) -> ServerError {
    ServerError {
        status: axum::http::StatusCode::TOO_MANY_REQUESTS,
        code: "too_many_claims",
        message: format!("{message}; wait for them to arrive or expire"),
    }
}

fn no_key() -> ServerError {
    ServerError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: "no_key",
        message: "no key is published for this address".into(),
    }
}

fn email(raw: &str) -> Result<proto::EmailAddress, ServerError> {
    proto::EmailAddress::parse(raw)
        .map_err(|e| ServerError::bad_request("bad_address", e.to_string()))
}

/// A token for a proof mail: 256 random bits as hex (typed by nobody, but a person may
/// read it in the mail).
fn directory_token() -> Result<String, ServerError> {
    let bytes = SecretBytes::<32>::random().map_err(|e| ServerError::internal("rng", e))?;
    Ok(bytes.expose().iter().map(|b| format!("{b:02x}")).collect())
}

/// A certificate the directory takes: present, not too big, and starting with a public
/// key packet (tag 6, old or new packet format). A secret key (tag 5) is refused with
/// its own message: publishing one would be a disaster. The client checks the rest
/// (the User ID for the address) on every lookup, as it must not trust the server.
fn check_cert(cert: &[u8]) -> Result<(), ServerError> {
    let bad = |m: &str| ServerError::bad_request("bad_cert", m.to_owned());
    if cert.is_empty() || cert.len() > proto::directory::MAX_CERT_BYTES {
        return Err(bad(&format!(
            "the certificate must have 1 to {} bytes",
            proto::directory::MAX_CERT_BYTES
        )));
    }
    let first = cert.first().copied().unwrap_or(0);
    let tag = match first & 0xC0 {
        0xC0 => first & 0x3F,
        0x80 => (first >> 2) & 0x0F,
        _ => return Err(bad("not a binary OpenPGP certificate")),
    };
    match tag {
        6 => Ok(()),
        5 => Err(bad(
            "that is a secret key; publish only the public certificate",
        )),
        _ => Err(bad(
            "not an OpenPGP certificate (it must start with a public key)",
        )),
    }
}

/// SHA-256 of a bearer token: what the store keeps.
pub fn token_hash(token: &[u8]) -> Vec<u8> {
    Sha256::digest(token).to_vec()
}

impl Service {
    /// Starts the service: loads (or, on the very first start, makes) the OPAQUE key pair,
    /// sealed by the HSM in the store.
    pub async fn new(
        config: ServiceConfig,
        store: Arc<dyn Store>,
        hsm: Arc<dyn Hsm>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServerError> {
        let key_aad = aad("server-key", config.server_id.as_bytes());
        let store: Arc<dyn Store> = Arc::new(crate::store::metered::MeteredStore(store));
        let hsm: Arc<dyn Hsm> = Arc::new(crate::hsm::MeteredHsm(hsm));
        let sealed = match store.server_secret(SERVER_KEY_NAME).await? {
            Some(sealed) => sealed,
            None => {
                let (_, sk) =
                    ServerKeys::generate().map_err(|e| ServerError::internal("keygen", e))?;
                let sealed = blocking(&hsm, {
                    let key_aad = key_aad.clone();
                    move |h| h.seal(&key_aad, sk.expose())
                })
                .await?;
                // Two processes starting at once agree on whichever was stored first.
                store
                    .put_server_secret_if_absent(SERVER_KEY_NAME, &sealed)
                    .await?
            }
        };
        let sk = blocking(&hsm, move |h| h.open(&key_aad, &sealed)).await?;
        let keys = ServerKeys::from_private_key(&sk)
            .map_err(|e| ServerError::internal("server key", e))?;
        let log_key = blocking(&hsm, |h| h.log_public_key()).await?;
        let limiter = RateLimiter::new(config.rate_per_second, config.rate_burst);
        tracing::info!(hsm = %hsm.describe(), server_id = %config.server_id, "sync service ready");
        Ok(Self {
            config,
            store,
            hsm,
            keys,
            clock,
            limiter,
            mailer: None,
            log_key,
        })
    }

    /// Readiness: whether the store answers and the HSM seals and opens, each within
    /// `timeout`.
    pub async fn ready(&self, timeout: std::time::Duration) -> proto::Readiness {
        let store = matches!(
            tokio::time::timeout(timeout, self.store.ping()).await,
            Ok(Ok(()))
        );
        let hsm = matches!(
            tokio::time::timeout(timeout, blocking(&self.hsm, |h| h.check())).await,
            Ok(Ok(()))
        );
        proto::Readiness {
            status: if store && hsm { "ready" } else { "not ready" }.into(),
            store,
            hsm,
        }
    }

    /// Updates the gauges read from the store (before a scrape).
    pub async fn observe(&self) {
        if let Ok(n) = self.store.count_sessions(self.clock.now()).await {
            crate::metrics::gauge("sealpost_sessions_open", n as f64);
        }
        if let Ok(n) = self.store.log_size().await {
            crate::metrics::gauge("sealpost_directory_log_entries", n as f64);
        }
    }

    /// Prunes what expired every `every`, on the current runtime, for as long as the
    /// service lives.
    pub fn spawn_maintenance(self: &Arc<Self>, every: std::time::Duration) {
        let service = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(service) = service.upgrade() else {
                    return;
                };
                if let Err(e) = service.prune().await {
                    tracing::warn!(code = e.code, "pruning failed; trying again later");
                }
            }
        });
    }

    /// The service with a relay for the key directory's proof mails.
    #[must_use]
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// What the server says about itself.
    pub fn health(&self) -> proto::Health {
        proto::Health {
            status: "ok".into(),
            api_version: proto::API_VERSION,
            server_id: self.config.server_id.clone(),
            ksf: opaque::KSF_ID.into(),
        }
    }

    fn ids<'a>(&'a self, user: &'a UserName) -> Ids<'a> {
        Ids {
            user: user.as_str().as_bytes(),
            server: self.config.server_id.as_bytes(),
        }
    }

    fn limit(&self, source: IpAddr) -> Result<(), ServerError> {
        if self.limiter.allow(source) {
            Ok(())
        } else {
            Err(ServerError::too_many())
        }
    }

    async fn seal(
        &self,
        kind: &str,
        owner: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, ServerError> {
        let (a, p) = (aad(kind, owner), plaintext.to_vec());
        let p = Zeroizing::new(p);
        blocking(&self.hsm, move |h| h.seal(&a, &p)).await
    }

    async fn open(
        &self,
        kind: &str,
        owner: &[u8],
        sealed: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, ServerError> {
        let a = aad(kind, owner);
        blocking(&self.hsm, move |h| h.open(&a, &sealed)).await
    }

    async fn key_material(&self, user: &UserName) -> Result<SecretBytes<32>, ServerError> {
        let message = opaque::oprf_hmac_message(user.as_str().as_bytes());
        let hmac = blocking(&self.hsm, move |h| h.oprf_hmac(&message)).await?;
        Ok(opaque::key_material_from_hmac(&hmac))
    }

    async fn put_pending(
        &self,
        kind: &[u8],
        user: &UserName,
        device_id: &str,
        payload: &[u8],
    ) -> Result<String, ServerError> {
        let id = random_id()?;
        let key = pending_key(kind, &id);
        let sealed = self.seal("pending", &key, payload).await?;
        let state = LoginState {
            user: user.as_str().to_owned(),
            device_id: device_id.to_owned(),
            device_name: String::new(),
            state: sealed,
            expires_at: self.clock.now() + self.config.pending_ttl,
        };
        self.store.put_login_state(&key, state).await?;
        Ok(id)
    }

    async fn take_pending(
        &self,
        kind: &[u8],
        id: &str,
    ) -> Result<Option<(LoginState, Zeroizing<Vec<u8>>)>, ServerError> {
        if id.len() != 32 {
            return Ok(None);
        }
        let key = pending_key(kind, id);
        let Some(state) = self.store.take_login_state(&key, self.clock.now()).await? else {
            return Ok(None);
        };
        match self.open("pending", &key, state.state.clone()).await {
            Ok(payload) => Ok(Some((state, payload))),
            Err(e) => {
                // The HSM is down: nothing was done, so the client may finish later.
                if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
                    self.restore_pending(kind, id, state).await;
                }
                Err(e)
            }
        }
    }

    /// Puts a taken pending state back, for a finish that failed without using it.
    async fn restore_pending(&self, kind: &[u8], id: &str, state: LoginState) {
        if let Err(e) = self
            .store
            .put_login_state(&pending_key(kind, id), state)
            .await
        {
            tracing::error!(error = %e, "could not restore a pending state");
        }
    }

    /// A pending login, sealed: a flag (real or fake answer) and OPAQUE's server state.
    async fn pending_login(
        &self,
        key: &[u8],
        real: bool,
        state: &[u8],
        user: &UserName,
        device_id: &str,
        device_name: &str,
    ) -> Result<LoginState, ServerError> {
        let mut payload = Zeroizing::new(Vec::with_capacity(1 + state.len()));
        payload.push(u8::from(real));
        payload.extend_from_slice(state);
        Ok(LoginState {
            user: user.as_str().to_owned(),
            device_id: device_id.to_owned(),
            device_name: device_name.to_owned(),
            state: self.seal("pending", key, &payload).await?,
            expires_at: self.clock.now() + self.config.pending_ttl,
        })
    }

    // ------------------------------------------------------------ registration

    /// Registration, first message.
    pub async fn register_start(
        &self,
        source: IpAddr,
        req: proto::RegisterStart,
    ) -> Result<proto::RegisterStarted, ServerError> {
        self.limit(source)?;
        let user = user_name(&req.user)?;
        if self.store.account(user.as_str()).await?.is_some() {
            return Err(crate::store::StoreError::AccountExists.into());
        }
        let km = self.key_material(&user).await?;
        let response =
            opaque::server_registration_start(&self.keys, &km, req.registration_request.as_slice())
                .map_err(opaque_bad)?;
        let id = self.put_pending(KIND_REGISTER, &user, "", &[]).await?;
        Ok(proto::RegisterStarted {
            registration_id: id,
            registration_response: Bytes(response),
        })
    }

    /// Registration, last message: stores the record and the wraps, all sealed, and,
    /// when the request names the registering device, opens its session.
    /// Bad input is refused before the registration is taken, so it can still finish.
    pub async fn register_finish(
        &self,
        req: proto::RegisterFinish,
    ) -> Result<proto::RegisterFinished, ServerError> {
        let record = opaque::server_registration_finish(req.registration_upload.as_slice())
            .map_err(opaque_bad)?;
        if let Some(d) = &req.device {
            check_device(&d.id, &d.name)?;
        }
        check_blob("cloudWrap", &req.cloud_wrap)?;
        check_blob("recoveryWrap", &req.recovery_wrap)?;
        check_blob("settings", &req.settings)?;
        if req.recovery_verifier.0.len() != 32 {
            return Err(ServerError::bad_request(
                "bad_blob",
                "recoveryVerifier must be 32 bytes",
            ));
        }
        let Some((pending, _)) = self
            .take_pending(KIND_REGISTER, &req.registration_id)
            .await?
        else {
            return Err(ServerError::unauthorized(
                "registration_expired",
                "this registration expired or was finished already",
            ));
        };
        let user = user_name(&pending.user)?;
        let owner = user.as_str().as_bytes();
        let account = NewAccount {
            user: user.as_str().to_owned(),
            record: self.seal("record", owner, &record).await?,
            cloud_wrap: self
                .seal("cloud-wrap", owner, req.cloud_wrap.as_slice())
                .await?,
            recovery_wrap: self
                .seal("recovery-wrap", owner, req.recovery_wrap.as_slice())
                .await?,
            recovery_verifier: req.recovery_verifier.0,
            settings: self
                .seal("settings", owner, req.settings.as_slice())
                .await?,
            created_at: self.clock.now(),
        };
        self.store.create_account(account).await?;
        tracing::info!(user = %user, "account created");
        let session = match &req.device {
            Some(device) => Some(self.registration_session(&user, device).await?),
            None => None,
        };
        Ok(proto::RegisterFinished { session })
    }

    /// The session of the device that just registered `user`: a random token, recorded
    /// the way a login records one (the device's sign-in, the session bound to it), by
    /// staging a pending login that only this call knows and completing it at once.
    /// Whoever finished the registration chose the password a moment ago, so this grants
    /// nothing a login would not.
    async fn registration_session(
        &self,
        user: &UserName,
        device: &proto::NewDevice,
    ) -> Result<proto::SessionGrant, ServerError> {
        let token = SecretBytes::<32>::random().map_err(|e| ServerError::internal("rng", e))?;
        let key = pending_key(KIND_LOGIN, &random_id()?);
        let staged = self
            .pending_login(&key, false, &[], user, &device.id, &device.name)
            .await?;
        self.store.put_login_state(&key, staged).await?;
        let now = self.clock.now();
        let expires_at = now + self.config.session_ttl;
        let session = Session {
            token_hash: token_hash(token.expose()),
            user: user.as_str().to_owned(),
            device_id: device.id.clone(),
            created_at: now,
            expires_at,
        };
        if self
            .store
            .complete_login(&key, &device.name, session)
            .await?
            .is_none()
        {
            return Err(ServerError::internal(
                "session",
                "the registration's session could not be recorded",
            ));
        }
        tracing::info!(user = %user, device = %device.id, "registered device signed in");
        Ok(proto::SessionGrant {
            token: Bytes(token.expose().to_vec()),
            expires_at,
        })
    }

    // ------------------------------------------------------------ login

    /// Login, first message. Charges one attempt against the account before answering.
    /// Unknown and locked accounts get a fake answer that looks like a real one.
    pub async fn login_start(
        &self,
        source: IpAddr,
        req: proto::LoginStart,
    ) -> Result<proto::LoginStarted, ServerError> {
        self.limit(source)?;
        let user = user_name(&req.user)?;
        check_device(&req.device_id, &req.device_name)?;
        crate::metrics::count("sealpost_logins_started_total");
        let km = self.key_material(&user).await?;
        let answer = |record: Option<&[u8]>| {
            opaque::server_login_start(
                &self.keys,
                &km,
                record,
                req.credential_request.as_slice(),
                self.ids(&user),
            )
            .map_err(opaque_bad)
        };
        // KE1 is answered before the attempt is charged, so a malformed message changes
        // nothing. The answer made with the record is the one sent if the charge goes
        // through: one OPAQUE evaluation per login (it is most of a login's CPU), a
        // second one only for a fake answer to a locked account.
        let record = match self.store.account(user.as_str()).await? {
            Some(account) => Some(
                self.open("record", user.as_str().as_bytes(), account.record)
                    .await?,
            ),
            None => None,
        };
        let answered = answer(record.as_ref().map(|r| r.as_slice()))?;
        let id = random_id()?;
        let key = pending_key(KIND_LOGIN, &id);
        let pending = |real: bool, state: opaque::SecretVecState| {
            let (key, user, req) = (&key, &user, &req);
            async move {
                self.pending_login(key, real, &state.0, user, &req.device_id, &req.device_name)
                    .await
            }
        };
        let ke2 = match (&record, answered) {
            // A real account: the charge and the pending state are one commit, and the
            // state is stored only if the attempt was charged.
            (Some(_), (state, ke2)) => {
                let staged = pending(true, state).await?;
                match self
                    .store
                    .charge_login_and_stage(self.config.max_failed_logins, &key, staged)
                    .await?
                {
                    Charge::Charged { attempts } => {
                        if attempts == self.config.max_failed_logins {
                            // This charge used the last attempt: the account is locked
                            // until this login succeeds or it is unlocked.
                            crate::metrics::count("sealpost_account_locks_total");
                            self.record(user.as_str(), Activity::new("locked")).await;
                        }
                        ke2
                    }
                    Charge::Locked | Charge::NoAccount => {
                        // A locked account gets a fake answer, which no KE3 can finish.
                        crate::metrics::count("sealpost_login_attempts_on_locked_total");
                        tracing::warn!(user = %user, "login attempt on a locked account");
                        let (state, ke2) = answer(None)?;
                        let fake = pending(false, state).await?;
                        self.store.put_login_state(&key, fake).await?;
                        ke2
                    }
                }
            }
            // An unknown account's answer is a fake one already.
            (None, (state, ke2)) => {
                let fake = pending(false, state).await?;
                self.store.put_login_state(&key, fake).await?;
                ke2
            }
        };
        Ok(proto::LoginStarted {
            login_id: id,
            credential_response: Bytes(ke2),
        })
    }

    /// Login, last message: on success opens a session and releases the cloud wrap and
    /// the settings to it. The pending login is read, checked, and then consumed in the
    /// same transaction that records the success (or deleted after a failure); a
    /// malformed message or an unreachable HSM leaves it as it was.
    pub async fn login_finish(
        &self,
        source: IpAddr,
        req: proto::LoginFinish,
    ) -> Result<proto::LoginFinished, ServerError> {
        if req.login_id.len() != 32 {
            crate::metrics::count_with("sealpost_logins_failed_total", "reason", "expired");
            return Err(ServerError::login_failed());
        }
        let key = pending_key(KIND_LOGIN, &req.login_id);
        let Some(pending) = self.store.login_state(&key, self.clock.now()).await? else {
            crate::metrics::count_with("sealpost_logins_failed_total", "reason", "expired");
            return Err(ServerError::login_failed());
        };
        let payload = self.open("pending", &key, pending.state).await?;
        let user = user_name(&pending.user)?;
        let Some((&flag, state)) = payload.split_first() else {
            return Err(ServerError::login_failed());
        };
        // KE3 is checked against fake logins (unknown or locked accounts) too, so their
        // answers are the same as a real account's.
        let session_key = match opaque::server_login_finish(
            state,
            req.credential_finalization.as_slice(),
            self.ids(&user),
        ) {
            Ok(k) if flag == 1 => k,
            Err(opaque::OpaqueError::Malformed(what)) => {
                // Nothing was tried: the login may still finish with a proper KE3.
                return Err(ServerError::bad_request(
                    "bad_opaque_message",
                    format!("malformed OPAQUE {what}"),
                ));
            }
            Ok(_) | Err(_) => {
                // The attempt stays charged; the state cannot be tried again.
                self.store.discard_login_state(&key).await?;
                crate::metrics::count_with(
                    "sealpost_logins_failed_total",
                    "reason",
                    "wrong_password",
                );
                tracing::info!(user = %user, "login failed");
                if flag == 1 {
                    let event = Activity::new("sign_in_failed")
                        .device(&pending.device_id, &pending.device_name)
                        .source(source);
                    self.record(user.as_str(), event).await;
                }
                return Err(ServerError::login_failed());
            }
        };
        let now = self.clock.now();
        let token = opaque::session_token(&session_key);
        let expires_at = now + self.config.session_ttl;
        let session = Session {
            token_hash: token_hash(token.expose()),
            user: user.as_str().to_owned(),
            device_id: pending.device_id.clone(),
            created_at: now,
            expires_at,
        };
        // None: another finish of this login won the race, or it expired meanwhile.
        let Some(done) = self
            .store
            .complete_login(&key, &pending.device_name, session)
            .await?
        else {
            crate::metrics::count_with("sealpost_logins_failed_total", "reason", "expired");
            return Err(ServerError::login_failed());
        };
        crate::metrics::count("sealpost_logins_finished_total");
        let owner = user.as_str().as_bytes();
        if done.new_device {
            let event =
                Activity::new("new_device").device(&pending.device_id, &pending.device_name);
            self.record(user.as_str(), event).await;
        }
        let event = Activity::new("sign_in")
            .device(&pending.device_id, &pending.device_name)
            .source(source);
        self.record(user.as_str(), event).await;
        let cloud_wrap = self.open("cloud-wrap", owner, done.cloud_wrap).await?;
        let settings = self.open("settings", owner, done.settings).await?;
        tracing::info!(
            user = %user,
            device = %pending.device_id,
            failed_attempts = done.failed_attempts,
            "login succeeded"
        );
        Ok(proto::LoginFinished {
            expires_at,
            failed_attempts: done.failed_attempts,
            cloud_wrap: Bytes(cloud_wrap.to_vec()),
            settings: proto::Settings {
                version: done.settings_version,
                blob: Bytes(settings.to_vec()),
            },
        })
    }

    /// The caller behind a bearer token, if the session is valid now.
    pub async fn authenticate(&self, token: &[u8]) -> Result<Caller, ServerError> {
        let session = self
            .store
            .session(&token_hash(token), self.clock.now())
            .await?
            .ok_or_else(|| {
                ServerError::unauthorized(
                    "bad_session",
                    "the session is unknown, expired or revoked; sign in again",
                )
            })?;
        Ok(Caller {
            user: session.user,
            device_id: session.device_id,
            logged_in_at: session.created_at,
        })
    }

    // ------------------------------------------------------------ settings, devices

    async fn settings_of(&self, user: &UserName) -> Result<proto::Settings, ServerError> {
        let (version, sealed) = self
            .store
            .settings(user.as_str())
            .await?
            .ok_or(crate::store::StoreError::NoAccount)?;
        let blob = self
            .open("settings", user.as_str().as_bytes(), sealed)
            .await?;
        Ok(proto::Settings {
            version,
            blob: Bytes(blob.to_vec()),
        })
    }

    /// The settings blob.
    pub async fn settings(&self, caller: &Caller) -> Result<proto::Settings, ServerError> {
        self.settings_of(&user_name(&caller.user)?).await
    }

    /// Replaces the settings blob if it is still at the expected version.
    pub async fn put_settings(
        &self,
        caller: &Caller,
        req: proto::PutSettings,
    ) -> Result<proto::SettingsVersion, ServerError> {
        if req.blob.0.is_empty() || req.blob.0.len() > 512 * 1024 {
            return Err(ServerError::bad_request(
                "bad_blob",
                "the settings blob must be 1 byte to 512 KiB",
            ));
        }
        let sealed = self
            .seal("settings", caller.user.as_bytes(), req.blob.as_slice())
            .await?;
        let version = self
            .store
            .put_settings(&caller.user, req.expected_version, &sealed)
            .await?;
        Ok(proto::SettingsVersion { version })
    }

    /// The caller's devices.
    pub async fn devices(&self, caller: &Caller) -> Result<proto::Devices, ServerError> {
        let devices = self
            .store
            .devices(&caller.user)
            .await?
            .into_iter()
            .map(|d| proto::DeviceInfo {
                current: d.device_id == caller.device_id,
                id: d.device_id,
                name: d.name,
                created_at: d.created_at,
                last_seen_at: d.last_seen_at,
            })
            .collect();
        Ok(proto::Devices { devices })
    }

    /// Revokes a device: its sessions stop working at once.
    pub async fn revoke_device(&self, caller: &Caller, device_id: &str) -> Result<(), ServerError> {
        check_device_id(device_id)?;
        if !self.store.revoke_device(&caller.user, device_id).await? {
            return Err(ServerError {
                status: axum::http::StatusCode::NOT_FOUND,
                code: "no_device",
                message: "no such device".into(),
            });
        }
        tracing::info!(user = %caller.user, device = %device_id, by = %caller.device_id, "device revoked");
        let event = Activity::new("device_revoked")
            .device(device_id, "")
            .by(&caller.device_id);
        self.record(&caller.user, event).await;
        Ok(())
    }

    /// A signed-in device unlocks an account locked by failed logins.
    pub async fn unlock_account(&self, caller: &Caller) -> Result<(), ServerError> {
        self.store.reset_failed_logins(&caller.user).await?;
        self.record(
            &caller.user,
            Activity::new("unlocked").by(&caller.device_id),
        )
        .await;
        Ok(())
    }

    // ------------------------------------------------------------ password change, recovery

    /// Password change, first message (needs a session).
    pub async fn password_start(
        &self,
        caller: &Caller,
        req: proto::PasswordStart,
    ) -> Result<proto::RegisterStarted, ServerError> {
        let user = user_name(&caller.user)?;
        let km = self.key_material(&user).await?;
        let response =
            opaque::server_registration_start(&self.keys, &km, req.registration_request.as_slice())
                .map_err(opaque_bad)?;
        let id = self
            .put_pending(KIND_PASSWORD, &user, &caller.device_id, &[])
            .await?;
        Ok(proto::RegisterStarted {
            registration_id: id,
            registration_response: Bytes(response),
        })
    }

    /// Password change, last message: new record and cloud wrap in one transaction; the
    /// failed-login counter is untouched; other devices must sign in again.
    pub async fn password_finish(
        &self,
        caller: &Caller,
        req: proto::PasswordFinish,
    ) -> Result<(), ServerError> {
        let record = opaque::server_registration_finish(req.registration_upload.as_slice())
            .map_err(opaque_bad)?;
        check_blob("cloudWrap", &req.cloud_wrap)?;
        let Some((pending, _)) = self
            .take_pending(KIND_PASSWORD, &req.registration_id)
            .await?
        else {
            return Err(ServerError::unauthorized(
                "registration_expired",
                "this password change expired or was finished already",
            ));
        };
        if pending.user != caller.user || pending.device_id != caller.device_id {
            return Err(ServerError::unauthorized(
                "registration_expired",
                "this password change belongs to another session",
            ));
        }
        let credentials = self
            .sealed_credentials(&caller.user, &record, req.cloud_wrap.as_slice())
            .await?;
        self.store
            .replace_credentials(&caller.user, credentials)
            .await?;
        self.store
            .delete_sessions_except(&caller.user, &caller.device_id)
            .await?;
        tracing::info!(user = %caller.user, device = %caller.device_id, "password changed");
        self.record(
            &caller.user,
            Activity::new("password_changed").by(&caller.device_id),
        )
        .await;
        Ok(())
    }

    /// A new record and cloud wrap for `user`, sealed by the HSM (password change and
    /// recovery alike).
    async fn sealed_credentials(
        &self,
        user: &str,
        record: &[u8],
        cloud_wrap: &[u8],
    ) -> Result<Credentials, ServerError> {
        let owner = user.as_bytes();
        Ok(Credentials {
            record: self.seal("record", owner, record).await?,
            cloud_wrap: self.seal("cloud-wrap", owner, cloud_wrap).await?,
        })
    }

    /// Replaces the account's recovery code: the identity key wrapped under the new code,
    /// sealed by the HSM, and the verifier of the new code's authentication key replace
    /// the old ones in one statement, so the old code stops working at once. Needs a
    /// session from a login at most [`ServiceConfig::fresh_login_secs`] old: a stolen,
    /// older token must not retire the code that undoes a hijacked password. Bad input
    /// is refused before anything changes.
    pub async fn new_recovery_code(
        &self,
        caller: &Caller,
        req: proto::NewRecoveryCode,
    ) -> Result<(), ServerError> {
        if self.clock.now() - caller.logged_in_at > self.config.fresh_login_secs {
            return Err(ServerError {
                status: axum::http::StatusCode::FORBIDDEN,
                code: "fresh_login_required",
                message: "replacing the recovery code needs a session from a sign-in in the \
                          last few minutes; sign in again"
                    .into(),
            });
        }
        check_blob("recoveryWrap", &req.recovery_wrap)?;
        if req.recovery_verifier.0.len() != 32 {
            return Err(ServerError::bad_request(
                "bad_blob",
                "recoveryVerifier must be 32 bytes",
            ));
        }
        let user = user_name(&caller.user)?;
        let sealed = self
            .seal(
                "recovery-wrap",
                user.as_str().as_bytes(),
                req.recovery_wrap.as_slice(),
            )
            .await?;
        self.store
            .replace_recovery(user.as_str(), &sealed, req.recovery_verifier.as_slice())
            .await?;
        tracing::info!(user = %user, device = %caller.device_id, "recovery code replaced");
        self.record(
            user.as_str(),
            Activity::new("recovery_code_replaced").by(&caller.device_id),
        )
        .await;
        Ok(())
    }

    /// Recovery, first message: checks the proof of the recovery code, releases the
    /// recovery wrap and starts a registration for the new password.
    pub async fn recovery_start(
        &self,
        source: IpAddr,
        req: proto::RecoveryStart,
    ) -> Result<proto::RecoveryStarted, ServerError> {
        self.limit(source)?;
        let user = user_name(&req.user)?;
        let failed = || {
            ServerError::unauthorized(
                "recovery_failed",
                "recovery failed: wrong user name or recovery code",
            )
        };
        let Some(account) = self.store.account(user.as_str()).await? else {
            return Err(failed());
        };
        let proof = token_hash(req.recovery_auth.as_slice());
        if !bool::from(proof.ct_eq(&account.recovery_verifier)) {
            tracing::warn!(user = %user, "wrong recovery code");
            return Err(failed());
        }
        let km = self.key_material(&user).await?;
        let response =
            opaque::server_registration_start(&self.keys, &km, req.registration_request.as_slice())
                .map_err(opaque_bad)?;
        let recovery_wrap = self
            .open(
                "recovery-wrap",
                user.as_str().as_bytes(),
                account.recovery_wrap,
            )
            .await?;
        let id = self.put_pending(KIND_RECOVERY, &user, "", &[]).await?;
        Ok(proto::RecoveryStarted {
            registration_id: id,
            registration_response: Bytes(response),
            recovery_wrap: Bytes(recovery_wrap.to_vec()),
        })
    }

    /// Recovery, last message: the new password replaces the old, the account unlocks,
    /// every session ends.
    pub async fn recovery_finish(&self, req: proto::RecoveryFinish) -> Result<(), ServerError> {
        let record = opaque::server_registration_finish(req.registration_upload.as_slice())
            .map_err(opaque_bad)?;
        check_blob("cloudWrap", &req.cloud_wrap)?;
        let Some((pending, _)) = self
            .take_pending(KIND_RECOVERY, &req.registration_id)
            .await?
        else {
            return Err(ServerError::unauthorized(
                "registration_expired",
                "this recovery expired or was finished already",
            ));
        };
        let credentials = self
            .sealed_credentials(&pending.user, &record, req.cloud_wrap.as_slice())
            .await?;
        self.store
            .replace_credentials(&pending.user, credentials)
            .await?;
        self.store.reset_failed_logins(&pending.user).await?;
        self.store.delete_sessions_except(&pending.user, "").await?;
        tracing::info!(user = %pending.user, "account recovered with the recovery code");
        self.record(&pending.user, Activity::new("recovery_used"))
            .await;
        Ok(())
    }

    // ------------------------------------------------------------ key directory

    /// Claims `address` for a certificate: stores the claim and mails a token to the
    /// address. Nothing is published until the token comes back
    /// ([`Service::confirm_key`]) from the same account.
    pub async fn claim_key(
        &self,
        caller: &Caller,
        req: proto::DirectoryClaim,
    ) -> Result<proto::DirectoryClaimed, ServerError> {
        let Some(mailer) = &self.mailer else {
            return Err(ServerError {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                code: "directory_unavailable",
                message: "this server has no mail relay configured, so it cannot prove \
                          addresses for the key directory"
                    .into(),
            });
        };
        check_cert(req.cert.as_slice())?;
        let token = directory_token()?;
        let now = self.clock.now();
        let expires_at = now + self.config.directory_claim_ttl;
        let claim = DirectoryClaimRow {
            token_hash: token_hash(token.as_bytes()),
            user: caller.user.clone(),
            address: req.address.as_str().to_owned(),
            cert: req.cert.0,
            expires_at,
        };
        let token_hash = claim.token_hash.clone();
        match self
            .store
            .put_directory_claim(
                claim,
                now,
                self.config.directory_claims_per_user,
                self.config.directory_claims_per_address,
            )
            .await?
        {
            ClaimOutcome::Stored => {}
            ClaimOutcome::TooManyForUser => {
                return Err(too_many_claims(
                    "this account has too many addresses waiting for their proof mail",
                ));
            }
            ClaimOutcome::TooManyForAddress => {
                return Err(too_many_claims(
                    "this address has too many proof mails on their way already",
                ));
            }
        }
        let message = mailer::proof_message(
            mailer.sender(),
            &req.address,
            &token,
            &self.config.server_id,
            expires_at,
        )
        .map_err(|e| ServerError::internal("proof mail", e))?;
        if let Err(e) = mailer.send(&req.address, &message).await {
            tracing::warn!(error = %e, "could not send a directory proof mail");
            self.store.delete_directory_claim(&token_hash).await?;
            return Err(ServerError {
                status: axum::http::StatusCode::BAD_GATEWAY,
                code: "mail_not_sent",
                message: "the proof mail could not be sent; try again later".into(),
            });
        }
        tracing::info!(user = %caller.user, "directory claim mailed");
        Ok(proto::DirectoryClaimed { expires_at })
    }

    /// Confirms a claim with the token from its proof mail, publishing its certificate.
    pub async fn confirm_key(
        &self,
        caller: &Caller,
        req: proto::DirectoryConfirm,
    ) -> Result<proto::DirectoryEntry, ServerError> {
        let unknown = || ServerError {
            status: axum::http::StatusCode::NOT_FOUND,
            code: "unknown_token",
            message: "no claim of this account has this token (mistyped, used, or expired)".into(),
        };
        let token = req.token.trim();
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let token = token.to_ascii_lowercase();
        let key = self
            .store
            .confirm_directory_claim(
                &token_hash(token.as_bytes()),
                &caller.user,
                self.clock.now(),
            )
            .await?
            .ok_or_else(unknown)?;
        tracing::info!(user = %caller.user, "directory key published");
        let event = Activity::new("key_published").detail(&key.address);
        self.record(&caller.user, event).await;
        self.proven_entry(key, None).await
    }

    /// The certificate published for `address`, with its proof from the transparency
    /// log (and a consistency proof from `known`, the log size the client has a head
    /// for). Rate-limited like other unauthenticated calls.
    pub async fn lookup_key(
        &self,
        source: IpAddr,
        address: &str,
        known: Option<u64>,
    ) -> Result<proto::DirectoryEntry, ServerError> {
        self.limit(source)?;
        let address = email(address)?;
        match self.store.directory_key(address.as_str()).await? {
            Some(key) => self.proven_entry(key, known).await,
            None => Err(no_key()),
        }
    }

    /// Removes the caller's entry for `address`.
    pub async fn unpublish_key(&self, caller: &Caller, address: &str) -> Result<(), ServerError> {
        let address = email(address)?;
        if self
            .store
            .delete_directory_key(&caller.user, address.as_str(), self.clock.now())
            .await?
        {
            let event = Activity::new("key_unpublished").detail(address.as_str());
            self.record(&caller.user, event).await;
            Ok(())
        } else {
            Err(no_key())
        }
    }
}

/// Runs an HSM call: in place when the HSM computes in this process, otherwise off the
/// async threads.
async fn blocking<T: Send + 'static>(
    hsm: &Arc<dyn Hsm>,
    f: impl FnOnce(&dyn Hsm) -> Result<T, crate::hsm::HsmError> + Send + 'static,
) -> Result<T, ServerError> {
    if hsm.is_in_process() {
        return f(hsm.as_ref()).map_err(ServerError::from);
    }
    let hsm = Arc::clone(hsm);
    tokio::task::spawn_blocking(move || f(hsm.as_ref()))
        .await
        .map_err(|e| ServerError::internal("hsm task", e))?
        .map_err(ServerError::from)
}
