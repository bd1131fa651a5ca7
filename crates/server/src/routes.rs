//! HTTP: thin adapters from requests to [`Service`] calls. Every request must carry the
//! API version header; bodies are bounded; every error is an `ApiError` JSON body.
//!
//! The probes `/healthz` and `/readyz` need no version header (load balancers and
//! service managers call them); [`ops_router`] serves them with `/metrics` on the
//! operations listener.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State,
};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sealpost_proto as proto;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ServerError;
use crate::service::{Caller, Service};

type AppState = Arc<Service>;

/// The API's router over a service.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/register/start", post(register_start))
        .route("/v1/register/finish", post(register_finish))
        .route("/v1/login/start", post(login_start))
        .route("/v1/login/finish", post(login_finish))
        .route("/v1/settings", get(settings).put(put_settings))
        .route("/v1/devices", get(devices))
        .route("/v1/devices/{id}", delete(revoke_device))
        .route("/v1/account/unlock", post(unlock_account))
        .route("/v1/password/start", post(password_start))
        .route("/v1/password/finish", post(password_finish))
        .route("/v1/recovery/start", post(recovery_start))
        .route("/v1/recovery/finish", post(recovery_finish))
        .route("/v1/recovery/code", put(new_recovery_code))
        .route("/v1/directory/claims", post(claim_key))
        .route("/v1/directory/confirm", post(confirm_key))
        .route(
            "/v1/directory/keys/{address}",
            get(lookup_key).delete(unpublish_key),
        )
        .route("/v1/directory/log", get(log_info))
        .route("/v1/directory/log/consistency", get(log_consistency))
        .route("/v1/directory/log/entries", get(log_entries))
        .route("/v1/directory/log/heads", get(log_heads))
        .route("/v1/account/activity", get(activity))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(check_version))
        .layer(DefaultBodyLimit::max(proto::MAX_BODY_BYTES))
        .merge(probes())
        .with_state(service)
}

/// The operations listener's router: the probes and `GET /metrics` (Prometheus text).
/// Serve it on a private address: the metrics say how busy the server is.
pub fn ops_router(service: Arc<Service>) -> Router {
    probes()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(service)
}

fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// How long `/readyz` waits for each of the store and the HSM.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<proto::Readiness>) {
    let ready = s.ready(READY_TIMEOUT).await;
    let status = if ready.store && ready.hsm {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(ready))
}

async fn metrics(State(s): State<AppState>) -> Response {
    s.observe().await;
    match crate::metrics::render() {
        Some(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => ServerError::unavailable("no metrics recorder in this process").into_response(),
    }
}

async fn check_version(req: Request, next: Next) -> Response {
    let version = req
        .headers()
        .get(proto::API_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok());
    if version != Some(proto::API_VERSION) {
        return ServerError::bad_request(
            "unsupported_api_version",
            format!(
                "send the header {}: {}",
                proto::API_VERSION_HEADER,
                proto::API_VERSION
            ),
        )
        .into_response();
    }
    next.run(req).await
}

async fn not_found() -> ServerError {
    ServerError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such endpoint".into(),
    }
}

async fn method_not_allowed() -> ServerError {
    ServerError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this endpoint does not take this method".into(),
    }
}

/// A JSON body whose rejection is an `ApiError` too.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ServerError {
    let code = match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "not_json",
        _ => "bad_json",
    };
    ServerError {
        status: r.status(),
        code,
        message: r.body_text(),
    }
}

/// The client's address, for the per-source rate limit.
pub struct Source(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(Self(ip))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ServerError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let missing = || {
            ServerError::unauthorized("bad_session", "send Authorization: Bearer <session token>")
        };
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(missing)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .and_then(|t| URL_SAFE_NO_PAD.decode(t.trim()).ok())
            .filter(|t| t.len() == 32)
            .ok_or_else(missing)?;
        service.authenticate(&token).await
    }
}

async fn health(State(s): State<AppState>) -> Json<proto::Health> {
    Json(s.health())
}

async fn register_start(
    State(s): State<AppState>,
    Source(ip): Source,
    ApiJson(req): ApiJson<proto::RegisterStart>,
) -> Result<Json<proto::RegisterStarted>, ServerError> {
    s.register_start(ip, req).await.map(Json)
}

async fn register_finish(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<proto::RegisterFinish>,
) -> Result<Response, ServerError> {
    // A registration that named no device gets no session, and the answer it always got.
    let finished = s.register_finish(req).await?;
    Ok(match finished.session {
        Some(_) => Json(finished).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn login_start(
    State(s): State<AppState>,
    Source(ip): Source,
    ApiJson(req): ApiJson<proto::LoginStart>,
) -> Result<Json<proto::LoginStarted>, ServerError> {
    s.login_start(ip, req).await.map(Json)
}

async fn login_finish(
    State(s): State<AppState>,
    Source(ip): Source,
    ApiJson(req): ApiJson<proto::LoginFinish>,
) -> Result<Json<proto::LoginFinished>, ServerError> {
    s.login_finish(ip, req).await.map(Json)
}

async fn settings(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<proto::Settings>, ServerError> {
    s.settings(&caller).await.map(Json)
}

async fn put_settings(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<proto::PutSettings>,
) -> Result<Json<proto::SettingsVersion>, ServerError> {
    s.put_settings(&caller, req).await.map(Json)
}

async fn devices(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<proto::Devices>, ServerError> {
    s.devices(&caller).await.map(Json)
}

async fn revoke_device(
    State(s): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ServerError> {
    // A path that does not even decode (invalid UTF-8) is a bad device id too.
    let id = id.map_or_else(|_| String::new(), |Path(id)| id);
    s.revoke_device(&caller, &id)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn unlock_account(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<StatusCode, ServerError> {
    s.unlock_account(&caller)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn password_start(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<proto::PasswordStart>,
) -> Result<Json<proto::RegisterStarted>, ServerError> {
    s.password_start(&caller, req).await.map(Json)
}

async fn password_finish(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<proto::PasswordFinish>,
) -> Result<StatusCode, ServerError> {
    s.password_finish(&caller, req)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn recovery_start(
    State(s): State<AppState>,
    Source(ip): Source,
    ApiJson(req): ApiJson<proto::RecoveryStart>,
) -> Result<Json<proto::RecoveryStarted>, ServerError> {
    s.recovery_start(ip, req).await.map(Json)
}

async fn recovery_finish(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<proto::RecoveryFinish>,
) -> Result<StatusCode, ServerError> {
    s.recovery_finish(req)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn new_recovery_code(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<proto::NewRecoveryCode>,
) -> Result<StatusCode, ServerError> {
    s.new_recovery_code(&caller, req)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn claim_key(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<proto::DirectoryClaim>,
) -> Result<(StatusCode, Json<proto::DirectoryClaimed>), ServerError> {
    s.claim_key(&caller, req)
        .await
        .map(|claimed| (StatusCode::ACCEPTED, Json(claimed)))
}

async fn confirm_key(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<proto::DirectoryConfirm>,
) -> Result<Json<proto::DirectoryEntry>, ServerError> {
    s.confirm_key(&caller, req).await.map(Json)
}

/// `?known=N`: the log size the client has a head for.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Known {
    known: Option<u64>,
}

/// `?from=N&to=M`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    from: u64,
    to: u64,
}

/// `?start=N`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    #[serde(default)]
    start: u64,
}

/// `?after=N`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    #[serde(default)]
    after: i64,
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ServerError> {
    q.map(|Query(v)| v)
        .map_err(|e| ServerError::bad_request("bad_query", e.body_text()))
}

async fn lookup_key(
    State(s): State<AppState>,
    Source(ip): Source,
    address: Result<Path<String>, PathRejection>,
    known: Result<Query<Known>, QueryRejection>,
) -> Result<Json<proto::DirectoryEntry>, ServerError> {
    // A path that does not even decode is a bad address too.
    let address = address.map_or_else(|_| String::new(), |Path(a)| a);
    let known = query(known)?.known;
    s.lookup_key(ip, &address, known).await.map(Json)
}

async fn log_info(State(s): State<AppState>) -> Result<Json<proto::LogInfo>, ServerError> {
    s.log_info().await.map(Json)
}

async fn log_consistency(
    State(s): State<AppState>,
    range: Result<Query<Range>, QueryRejection>,
) -> Result<Json<proto::ConsistencyProof>, ServerError> {
    let range = query(range)?;
    s.log_consistency(range.from, range.to).await.map(Json)
}

async fn log_entries(
    State(s): State<AppState>,
    start: Result<Query<Start>, QueryRejection>,
) -> Result<Json<proto::LogEntries>, ServerError> {
    s.log_entries(query(start)?.start).await.map(Json)
}

async fn log_heads(
    State(s): State<AppState>,
    after: Result<Query<After>, QueryRejection>,
) -> Result<Json<proto::LogHeads>, ServerError> {
    let after = u64::try_from(query(after)?.after).unwrap_or(0);
    s.log_heads(after).await.map(Json)
}

async fn activity(
    State(s): State<AppState>,
    caller: Caller,
    after: Result<Query<After>, QueryRejection>,
) -> Result<Json<proto::SecurityEvents>, ServerError> {
    s.activity(&caller, query(after)?.after).await.map(Json)
}

async fn unpublish_key(
    State(s): State<AppState>,
    caller: Caller,
    address: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ServerError> {
    let address = address.map_or_else(|_| String::new(), |Path(a)| a);
    s.unpublish_key(&caller, &address)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}
