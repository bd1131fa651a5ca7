//! The wire types of the Sealpost sync API: JSON over HTTP(S), shared by client and
//! server so the two cannot drift apart.
//!
//! Every request carries [`API_VERSION_HEADER`] with [`API_VERSION`]; the server refuses
//! any other version with `400 unsupported_api_version`. Binary fields travel as
//! unpadded URL-safe base64 ([`Bytes`]). Authenticated endpoints take
//! `Authorization: Bearer <token>`, where the token is derived by both sides from the
//! OPAQUE session key and never sent by the server. Errors are [`ApiError`] bodies with a
//! stable `code`.
//!
//! | endpoint | session | body → answer |
//! |---|---|---|
//! | `GET /v1/health` | – | → [`Health`] |
//! | `POST /v1/register/start` | – | [`RegisterStart`] → [`RegisterStarted`] |
//! | `POST /v1/register/finish` | – | [`RegisterFinish`] → [`RegisterFinished`] |
//! | `POST /v1/login/start` | – | [`LoginStart`] → [`LoginStarted`] |
//! | `POST /v1/login/finish` | – | [`LoginFinish`] → [`LoginFinished`] |
//! | `GET /v1/settings` | yes | → [`Settings`] |
//! | `PUT /v1/settings` | yes | [`PutSettings`] → [`SettingsVersion`] (`409` on a stale version) |
//! | `GET /v1/devices` | yes | → [`Devices`] |
//! | `DELETE /v1/devices/{id}` | yes | → `204` |
//! | `POST /v1/account/unlock` | yes | → `204` (reset the failed-login counter) |
//! | `POST /v1/password/start` | yes | [`PasswordStart`] → [`RegisterStarted`] |
//! | `POST /v1/password/finish` | yes | [`PasswordFinish`] → `204` |
//! | `POST /v1/recovery/start` | – | [`RecoveryStart`] → [`RecoveryStarted`] |
//! | `POST /v1/recovery/finish` | – | [`RecoveryFinish`] → `204` |
//! | `PUT /v1/recovery/code` | yes | [`NewRecoveryCode`] → `204` (replace the recovery code) |
//! | `POST /v1/directory/claims` | yes | [`DirectoryClaim`] → [`DirectoryClaimed`] (a token is mailed to the address) |
//! | `POST /v1/directory/confirm` | yes | [`DirectoryConfirm`] → [`DirectoryEntry`] |
//! | `GET /v1/directory/keys/{address}` | – | → [`DirectoryEntry`] (`404` if none) |
//! | `GET /v1/directory/keys/{address}?known=N` | – | → [`DirectoryEntry`] with its [`KeyProof`] (`404` if none); `known`: the log size the client has a head for |
//! | `DELETE /v1/directory/keys/{address}` | yes | → `204` (only the publisher) |
//! | `GET /v1/directory/log` | – | → [`LogInfo`] (the log's key and current head) |
//! | `GET /v1/directory/log/consistency?from=N&to=M` | – | → [`ConsistencyProof`] |
//! | `GET /v1/directory/log/entries?start=N` | – | → [`LogEntries`] |
//! | `GET /v1/directory/log/heads?after=N` | – | → [`LogHeads`] |
//! | `GET /v1/account/activity?after=ID` | yes | → [`SecurityEvents`] |
//!
//! Outside the versioned API (no version header; for load balancers and the operator):
//! `GET /healthz` (the process answers), `GET /readyz` (`200` only when the store and the
//! HSM answer, else `503` with [`Readiness`]), and on the operations listener also
//! `GET /metrics` (Prometheus text).

pub mod activity;
mod bytes;
pub mod directory;
pub mod transparency;
mod user;

pub use activity::{SecurityEvent, SecurityEventKind, SecurityEvents};
pub use transparency::{ConsistencyProof, KeyProof, LogEntries, LogHeads, LogInfo, SignedTreeHead};

pub use bytes::Bytes;
pub use directory::{
    DirectoryClaim, DirectoryClaimed, DirectoryConfirm, DirectoryEntry, EmailAddress,
    EmailAddressError,
};
use serde::{Deserialize, Serialize};
pub use user::{UserName, UserNameError};

/// The API version this crate describes.
pub const API_VERSION: u32 = 1;
/// The header that carries it on every request.
pub const API_VERSION_HEADER: &str = "sealpost-api-version";
/// Largest request body the server reads, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `"ok"`.
    pub status: String,
    /// The API version the server speaks.
    pub api_version: u32,
    /// The server's OPAQUE identity, bound into every key exchange.
    pub server_id: String,
    /// The key-stretching function every registration must use.
    pub ksf: String,
}

/// `GET /readyz`: whether each part the server needs answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `"ready"` or `"not ready"`.
    pub status: String,
    /// Whether the store answered.
    pub store: bool,
    /// Whether the HSM answered.
    pub hsm: bool,
}

/// Registration, first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterStart {
    /// The user name (normalised by the server too).
    pub user: String,
    /// OPAQUE RegistrationRequest.
    pub registration_request: Bytes,
}

/// The server's answer to a registration or password-change start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterStarted {
    /// Names this registration in the finish call.
    pub registration_id: String,
    /// OPAQUE RegistrationResponse.
    pub registration_response: Bytes,
}

/// Registration, last message: the record and everything the account holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterFinish {
    /// From [`RegisterStarted`].
    pub registration_id: String,
    /// OPAQUE RegistrationUpload.
    pub registration_upload: Bytes,
    /// The identity key wrapped under the cloud KEK (from the export key).
    pub cloud_wrap: Bytes,
    /// The identity key wrapped under the recovery code.
    pub recovery_wrap: Bytes,
    /// SHA-256 of the recovery authentication key.
    pub recovery_verifier: Bytes,
    /// The first settings blob, sealed by the client under the settings key.
    pub settings: Bytes,
    /// The registering device: the server opens a session for it at once, as a login
    /// would, so making an account costs the client no second OPAQUE run (its Argon2id).
    /// Without it the client logs in afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<NewDevice>,
}

/// A device named at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDevice {
    /// The device's random id (32 hex characters).
    pub id: String,
    /// The device's display name.
    pub name: String,
}

/// The server's answer to a finished registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterFinished {
    /// The registering device's session, when [`RegisterFinish::device`] named it.
    #[serde(default)]
    pub session: Option<SessionGrant>,
}

/// A session the server made without a login (at registration).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionGrant {
    /// The bearer token (32 random bytes).
    pub token: Bytes,
    /// When it expires, Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionGrant")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Login, first message (KE1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginStart {
    /// The user name.
    pub user: String,
    /// OPAQUE CredentialRequest (KE1).
    pub credential_request: Bytes,
    /// The device's random id (32 hex characters).
    pub device_id: String,
    /// The device's display name.
    pub device_name: String,
}

/// The server's KE2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginStarted {
    /// Names this login in the finish call.
    pub login_id: String,
    /// OPAQUE CredentialResponse (KE2).
    pub credential_response: Bytes,
}

/// Login, last message (KE3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginFinish {
    /// From [`LoginStarted`].
    pub login_id: String,
    /// OPAQUE CredentialFinalization (KE3).
    pub credential_finalization: Bytes,
}

/// A successful login: the session is open (its token is derived, not sent) and the
/// blobs that only a fresh login may fetch come with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginFinished {
    /// When the session token expires, Unix seconds.
    pub expires_at: i64,
    /// Failed login attempts since the previous successful one.
    pub failed_attempts: i64,
    /// The identity key wrapped under the cloud KEK.
    pub cloud_wrap: Bytes,
    /// The settings blob.
    pub settings: Settings,
}

/// The settings blob and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Increases by one with every change.
    pub version: i64,
    /// Sealed by the client under the settings key.
    pub blob: Bytes,
}

/// Replace the settings blob if it is still at `expected_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutSettings {
    /// The version the client's change is based on.
    pub expected_version: i64,
    /// The new blob.
    pub blob: Bytes,
}

/// The settings version after a change (or the current one, with a 409).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsVersion {
    /// The version.
    pub version: i64,
}

/// One signed-in device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// First sign-in, Unix seconds.
    pub created_at: i64,
    /// Last sign-in, Unix seconds.
    pub last_seen_at: i64,
    /// Whether it is the device asking.
    pub current: bool,
}

/// `GET /v1/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Devices {
    /// Ordered by id.
    pub devices: Vec<DeviceInfo>,
}

/// Password change, first message (needs a session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordStart {
    /// OPAQUE RegistrationRequest for the new password.
    pub registration_request: Bytes,
}

/// Password change, last message: the new record and the identity key under the new
/// cloud KEK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordFinish {
    /// From [`RegisterStarted`].
    pub registration_id: String,
    /// OPAQUE RegistrationUpload.
    pub registration_upload: Bytes,
    /// The identity key under the new cloud KEK.
    pub cloud_wrap: Bytes,
}

/// Recovery, first message: proof of the recovery code, and a registration for the new
/// password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoveryStart {
    /// The user name.
    pub user: String,
    /// The recovery authentication key (HKDF of the code; not the code).
    pub recovery_auth: Bytes,
    /// OPAQUE RegistrationRequest for the new password.
    pub registration_request: Bytes,
}

/// The server's answer to a proven recovery code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryStarted {
    /// Names this recovery in the finish call.
    pub registration_id: String,
    /// OPAQUE RegistrationResponse for the new password.
    pub registration_response: Bytes,
    /// The identity key wrapped under the recovery code.
    pub recovery_wrap: Bytes,
}

/// Recovery, last message: the new password's record and cloud wrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoveryFinish {
    /// From [`RecoveryStarted`].
    pub registration_id: String,
    /// OPAQUE RegistrationUpload for the new password.
    pub registration_upload: Bytes,
    /// The identity key under the new cloud KEK.
    pub cloud_wrap: Bytes,
}

/// A new recovery code, set by a signed-in device: the identity key wrapped under the
/// new code and the verifier of the new code's authentication key. Both replace the old
/// ones at once, so the old code stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRecoveryCode {
    /// The identity key wrapped under the new recovery code.
    pub recovery_wrap: Bytes,
    /// SHA-256 of the new code's authentication key (32 bytes).
    pub recovery_verifier: Bytes,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    /// Stable, machine-readable.
    pub code: String,
    /// For people; never contains a secret.
    pub message: String,
}
