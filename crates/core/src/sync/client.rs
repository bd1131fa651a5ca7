//! The HTTP client of the sync API: one method per endpoint, typed by `sealpost-proto`.
//! Blocking (the app calls it off its UI thread); every request carries the API version.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use reqwest::blocking::{Client, Response};
use sealpost_proto as proto;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What can go wrong talking to the sync server.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server cannot be reached (or timed out).
    #[error("the sync server at {url} cannot be reached: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why (no secret in it).
        reason: String,
    },
    /// The server answered with an error.
    #[error("the sync server refused: {message} ({code})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable code.
        code: String,
        /// For people.
        message: String,
    },
    /// The server's answer is not what the API says.
    #[error("the sync server sent an unexpected answer: {0}")]
    BadResponse(String),
}

impl SyncError {
    /// The API error code, if the server answered with one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client for one sync server.
#[derive(Debug, Clone)]
pub struct SyncClient {
    http: Client,
    base: String,
}

impl SyncClient {
    /// A client for the server at `base_url` (`https://sync.example.org`).
    pub fn new(base_url: &str) -> Result<Self, SyncError> {
        Self::with_builder(base_url, Client::builder())
    }

    /// A client that also trusts the CA certificate `ca_pem` (PEM), beside the public
    /// roots: for a server with a certificate from a private CA, and for tests.
    pub fn with_root_certificate(base_url: &str, ca_pem: &[u8]) -> Result<Self, SyncError> {
        let ca = reqwest::Certificate::from_pem(ca_pem).map_err(|e| SyncError::Unreachable {
            url: base_url.to_owned(),
            reason: format!("the CA certificate is not valid PEM: {e}"),
        })?;
        Self::with_builder(base_url, Client::builder().add_root_certificate(ca))
    }

    fn with_builder(
        base_url: &str,
        builder: reqwest::blocking::ClientBuilder,
    ) -> Result<Self, SyncError> {
        let http = builder
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SyncError::Unreachable {
                url: base_url.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        token: Option<&[u8]>,
        body: Option<&B>,
    ) -> Result<Response, SyncError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .http
            .request(method, &url)
            .header(proto::API_VERSION_HEADER, proto::API_VERSION.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(URL_SAFE_NO_PAD.encode(t));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().map_err(|e| SyncError::Unreachable {
            url: self.base.clone(),
            reason: e.without_url().to_string(),
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        match resp.json::<proto::ApiError>() {
            Ok(e) => Err(SyncError::Api {
                status,
                code: e.code,
                message: e.message,
            }),
            Err(_) => Err(SyncError::BadResponse(format!(
                "HTTP {status} without an error body"
            ))),
        }
    }

    fn json<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&[u8]>,
        body: Option<&B>,
    ) -> Result<R, SyncError> {
        self.send(method, path, token, body)?
            .json::<R>()
            .map_err(|e| SyncError::BadResponse(e.without_url().to_string()))
    }

    fn empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        token: Option<&[u8]>,
        body: Option<&B>,
    ) -> Result<(), SyncError> {
        self.send(method, path, token, body).map(|_| ())
    }

    /// `GET /v1/health`.
    pub fn health(&self) -> Result<proto::Health, SyncError> {
        self.json::<(), _>(Method::GET, "/v1/health", None, None)
    }

    /// `POST /v1/register/start`.
    pub fn register_start(
        &self,
        req: &proto::RegisterStart,
    ) -> Result<proto::RegisterStarted, SyncError> {
        self.json(Method::POST, "/v1/register/start", None, Some(req))
    }

    /// `POST /v1/register/finish`.
    pub fn register_finish(&self, req: &proto::RegisterFinish) -> Result<(), SyncError> {
        self.empty(Method::POST, "/v1/register/finish", None, Some(req))
    }

    /// `POST /v1/login/start`.
    pub fn login_start(&self, req: &proto::LoginStart) -> Result<proto::LoginStarted, SyncError> {
        self.json(Method::POST, "/v1/login/start", None, Some(req))
    }

    /// `POST /v1/login/finish`.
    pub fn login_finish(
        &self,
        req: &proto::LoginFinish,
    ) -> Result<proto::LoginFinished, SyncError> {
        self.json(Method::POST, "/v1/login/finish", None, Some(req))
    }

    /// `GET /v1/settings`.
    pub fn settings(&self, token: &[u8]) -> Result<proto::Settings, SyncError> {
        self.json::<(), _>(Method::GET, "/v1/settings", Some(token), None)
    }

    /// `PUT /v1/settings`.
    pub fn put_settings(
        &self,
        token: &[u8],
        req: &proto::PutSettings,
    ) -> Result<proto::SettingsVersion, SyncError> {
        self.json(Method::PUT, "/v1/settings", Some(token), Some(req))
    }

    /// `GET /v1/devices`.
    pub fn devices(&self, token: &[u8]) -> Result<proto::Devices, SyncError> {
        self.json::<(), _>(Method::GET, "/v1/devices", Some(token), None)
    }

    /// `DELETE /v1/devices/{id}`.
    pub fn revoke_device(&self, token: &[u8], device_id: &str) -> Result<(), SyncError> {
        if !device_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SyncError::BadResponse("a device id is hexadecimal".into()));
        }
        self.empty::<()>(
            Method::DELETE,
            &format!("/v1/devices/{device_id}"),
            Some(token),
            None,
        )
    }

    /// `POST /v1/account/unlock`.
    pub fn unlock_account(&self, token: &[u8]) -> Result<(), SyncError> {
        self.empty::<()>(Method::POST, "/v1/account/unlock", Some(token), None)
    }

    /// `POST /v1/password/start`.
    pub fn password_start(
        &self,
        token: &[u8],
        req: &proto::PasswordStart,
    ) -> Result<proto::RegisterStarted, SyncError> {
        self.json(Method::POST, "/v1/password/start", Some(token), Some(req))
    }

    /// `POST /v1/password/finish`.
    pub fn password_finish(
        &self,
        token: &[u8],
        req: &proto::PasswordFinish,
    ) -> Result<(), SyncError> {
        self.empty(Method::POST, "/v1/password/finish", Some(token), Some(req))
    }

    /// `POST /v1/recovery/start`.
    pub fn recovery_start(
        &self,
        req: &proto::RecoveryStart,
    ) -> Result<proto::RecoveryStarted, SyncError> {
        self.json(Method::POST, "/v1/recovery/start", None, Some(req))
    }

    /// `POST /v1/recovery/finish`.
    pub fn recovery_finish(&self, req: &proto::RecoveryFinish) -> Result<(), SyncError> {
        self.empty(Method::POST, "/v1/recovery/finish", None, Some(req))
    }

    /// `PUT /v1/recovery/code`: replaces the account's recovery code.
    pub fn new_recovery_code(
        &self,
        token: &[u8],
        req: &proto::NewRecoveryCode,
    ) -> Result<(), SyncError> {
        self.empty(Method::PUT, "/v1/recovery/code", Some(token), Some(req))
    }

    /// `POST /v1/directory/claims`: a proof token goes to the address by mail.
    pub fn claim_key(
        &self,
        token: &[u8],
        req: &proto::DirectoryClaim,
    ) -> Result<proto::DirectoryClaimed, SyncError> {
        self.json(Method::POST, "/v1/directory/claims", Some(token), Some(req))
    }

    /// `POST /v1/directory/confirm`: publishes the claimed key.
    pub fn confirm_key(
        &self,
        token: &[u8],
        req: &proto::DirectoryConfirm,
    ) -> Result<proto::DirectoryEntry, SyncError> {
        self.json(
            Method::POST,
            "/v1/directory/confirm",
            Some(token),
            Some(req),
        )
    }

    /// `GET /v1/directory/keys/{address}`: `None` when nothing is published.
    pub fn lookup_key(
        &self,
        address: &proto::EmailAddress,
    ) -> Result<Option<proto::DirectoryEntry>, SyncError> {
        let path = format!("/v1/directory/keys/{}", path_segment(address.as_str()));
        match self.json::<(), _>(Method::GET, &path, None, None) {
            Ok(entry) => Ok(Some(entry)),
            Err(e) if e.api_code() == Some("no_key") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v1/directory/keys/{address}`.
    pub fn unpublish_key(
        &self,
        token: &[u8],
        address: &proto::EmailAddress,
    ) -> Result<(), SyncError> {
        let path = format!("/v1/directory/keys/{}", path_segment(address.as_str()));
        self.empty::<()>(Method::DELETE, &path, Some(token), None)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters and `@`.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
