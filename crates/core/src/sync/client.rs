//! The HTTP client of the sync API: one method per endpoint, typed by `sealpost-proto`.
//! Async, with a timeout on every request ([`REQUEST_TIMEOUT`], [`CONNECT_TIMEOUT`]): a
//! server that accepts and never answers costs the caller that long and nobody else.
//! Every request carries the API version.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use reqwest::{Client, Response};
use sealpost_proto as proto;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::error::SyncError;

/// How long one request may take in all.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one sync server; cheap to clone (the connection pool is shared).
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
    #[cfg(any(test, feature = "testing"))]
    pub fn with_root_certificate(base_url: &str, ca_pem: &[u8]) -> Result<Self, SyncError> {
        let ca = reqwest::Certificate::from_pem(ca_pem).map_err(|e| SyncError::Unreachable {
            url: base_url.to_owned(),
            reason: format!("the CA certificate is not valid PEM: {e}"),
        })?;
        Self::with_builder(base_url, Client::builder().add_root_certificate(ca))
    }

    fn with_builder(
        base_url: &str,
        builder: reqwest::ClientBuilder,
    ) -> Result<Self, SyncError> {
        let http = builder
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
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

    async fn send<B: Serialize>(
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
        let resp = req.send().await.map_err(|e| self.failed(e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        match resp.json::<proto::ApiError>().await {
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

    /// What went wrong with a request, in words: the server silent, away (the innermost
    /// cause: "Connection refused", a certificate problem), or its answer not the protocol.
    fn failed(&self, e: reqwest::Error) -> SyncError {
        if e.is_decode() {
            return SyncError::BadResponse(e.without_url().to_string());
        }
        let reason = if e.is_timeout() {
            format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
        } else {
            let mut cause: &dyn std::error::Error = &e;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            cause.to_string()
        };
        SyncError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    async fn json<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&[u8]>,
        body: Option<&B>,
    ) -> Result<R, SyncError> {
        self.send(method, path, token, body)
            .await?
            .json::<R>()
            .await
            .map_err(|e| self.failed(e))
    }

    async fn empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        token: Option<&[u8]>,
        body: Option<&B>,
    ) -> Result<(), SyncError> {
        self.send(method, path, token, body).await.map(|_| ())
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<proto::Health, SyncError> {
        self.json::<(), _>(Method::GET, "/v1/health", None, None).await
    }

    /// `POST /v1/register/start`.
    pub async fn register_start(
        &self,
        req: &proto::RegisterStart,
    ) -> Result<proto::RegisterStarted, SyncError> {
        self.json(Method::POST, "/v1/register/start", None, Some(req)).await
    }

    /// `POST /v1/register/finish`: the answer, or `None` from a server that sends none
    /// (`204`, when the request named no device or the server grants no session).
    pub async fn register_finish(
        &self,
        req: &proto::RegisterFinish,
    ) -> Result<Option<proto::RegisterFinished>, SyncError> {
        let resp = self
            .send(Method::POST, "/v1/register/finish", None, Some(req))
            .await?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        resp.json()
            .await
            .map(Some)
            .map_err(|e| self.failed(e))
    }

    /// `POST /v1/login/start`.
    pub async fn login_start(&self, req: &proto::LoginStart) -> Result<proto::LoginStarted, SyncError> {
        self.json(Method::POST, "/v1/login/start", None, Some(req)).await
    }

    /// `POST /v1/login/finish`.
    pub async fn login_finish(
        &self,
        req: &proto::LoginFinish,
    ) -> Result<proto::LoginFinished, SyncError> {
        self.json(Method::POST, "/v1/login/finish", None, Some(req)).await
    }

    /// `GET /v1/settings`.
    pub async fn settings(&self, token: &[u8]) -> Result<proto::Settings, SyncError> {
        self.json::<(), _>(Method::GET, "/v1/settings", Some(token), None).await
    }

    /// `PUT /v1/settings`.
    pub async fn put_settings(
        &self,
        token: &[u8],
        req: &proto::PutSettings,
    ) -> Result<proto::SettingsVersion, SyncError> {
        self.json(Method::PUT, "/v1/settings", Some(token), Some(req)).await
    }

    /// `GET /v1/devices`.
    pub async fn devices(&self, token: &[u8]) -> Result<proto::Devices, SyncError> {
        self.json::<(), _>(Method::GET, "/v1/devices", Some(token), None).await
    }

    /// `DELETE /v1/devices/{id}`.
    pub async fn revoke_device(&self, token: &[u8], device_id: &str) -> Result<(), SyncError> {
        if !device_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SyncError::BadResponse("a device id is hexadecimal".into()));
        }
        self.empty::<()>(
            Method::DELETE,
            &format!("/v1/devices/{device_id}"),
            Some(token),
            None,
        ).await
    }

    /// `POST /v1/account/unlock`.
    pub async fn unlock_account(&self, token: &[u8]) -> Result<(), SyncError> {
        self.empty::<()>(Method::POST, "/v1/account/unlock", Some(token), None).await
    }

    /// `POST /v1/password/start`.
    pub async fn password_start(
        &self,
        token: &[u8],
        req: &proto::PasswordStart,
    ) -> Result<proto::RegisterStarted, SyncError> {
        self.json(Method::POST, "/v1/password/start", Some(token), Some(req)).await
    }

    /// `POST /v1/password/finish`.
    pub async fn password_finish(
        &self,
        token: &[u8],
        req: &proto::PasswordFinish,
    ) -> Result<(), SyncError> {
        self.empty(Method::POST, "/v1/password/finish", Some(token), Some(req)).await
    }

    /// `POST /v1/recovery/start`.
    pub async fn recovery_start(
        &self,
        req: &proto::RecoveryStart,
    ) -> Result<proto::RecoveryStarted, SyncError> {
        self.json(Method::POST, "/v1/recovery/start", None, Some(req)).await
    }

    /// `POST /v1/recovery/finish`.
    pub async fn recovery_finish(&self, req: &proto::RecoveryFinish) -> Result<(), SyncError> {
        self.empty(Method::POST, "/v1/recovery/finish", None, Some(req)).await
    }

    /// `PUT /v1/recovery/code`: replaces the account's recovery code.
    pub async fn new_recovery_code(
        &self,
        token: &[u8],
        req: &proto::NewRecoveryCode,
    ) -> Result<(), SyncError> {
        self.empty(Method::PUT, "/v1/recovery/code", Some(token), Some(req)).await
    }

    /// `POST /v1/directory/claims`: a proof token goes to the address by mail.
    pub async fn claim_key(
        &self,
        token: &[u8],
        req: &proto::DirectoryClaim,
    ) -> Result<proto::DirectoryClaimed, SyncError> {
        self.json(Method::POST, "/v1/directory/claims", Some(token), Some(req)).await
    }

    /// `POST /v1/directory/confirm`: publishes the claimed key.
    pub async fn confirm_key(
        &self,
        token: &[u8],
        req: &proto::DirectoryConfirm,
    ) -> Result<proto::DirectoryEntry, SyncError> {
        self.json(
            Method::POST,
            "/v1/directory/confirm",
            Some(token),
            Some(req),
        ).await
    }

    /// `GET /v1/directory/keys/{address}`: `None` when nothing is published.
    pub async fn lookup_key(
        &self,
        address: &proto::EmailAddress,
    ) -> Result<Option<proto::DirectoryEntry>, SyncError> {
        let path = format!("/v1/directory/keys/{}", path_segment(address.as_str()));
        match self.json::<(), _>(Method::GET, &path, None, None).await {
            Ok(entry) => Ok(Some(entry)),
            Err(e) if e.api_code() == Some("no_key") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v1/directory/keys/{address}`.
    #[cfg(any(test, feature = "testing"))]
    pub async fn unpublish_key(
        &self,
        token: &[u8],
        address: &proto::EmailAddress,
    ) -> Result<(), SyncError> {
        let path = format!("/v1/directory/keys/{}", path_segment(address.as_str()));
        self.empty::<()>(Method::DELETE, &path, Some(token), None).await
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
