//! The API error type: every failure a request can meet, mapped once to an HTTP status
//! and a stable machine-readable `code`. 5xx bodies stay generic; details go to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// A secret path is not acceptable.
    #[error("{0}")]
    InvalidPath(String),
    /// A scope string is not acceptable.
    #[error("invalid scope {0}")]
    InvalidScope(String),
    /// A TTL is out of range.
    #[error("{0}")]
    InvalidTtl(String),
    /// The body is not the JSON this endpoint takes.
    #[error("{0}")]
    InvalidJson(String),
    /// No or bad credentials.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// Credentials are fine but do not allow this.
    #[error("{0}")]
    AccessDenied(String),
    /// A token asked for more than its parent holds.
    #[error("{0}")]
    ScopeEscalation(String),
    /// Nothing at that address.
    #[error("{0}")]
    NotFound(String),
    /// Check-and-set failed.
    #[error("version conflict: expected version {expected}, current is {current}")]
    VersionConflict {
        /// What the caller said.
        expected: u64,
        /// What is stored.
        current: u64,
    },
    /// The resource is in a state that forbids the request.
    #[error("{0}")]
    Conflict(String),
    /// The secret is soft-deleted.
    #[error("{0}")]
    SecretDeleted(String),
    /// The endpoint exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The lease or secret is past its time (or its access count).
    #[error("{0}")]
    Expired(String),
    /// The lease is in a state that cannot be used.
    #[error("{0}")]
    LeaseNotActive(String),
    /// The approval was decided already.
    #[error("{0}")]
    AlreadyDecided(String),
    /// Too many requests under a limit.
    #[error("{0}")]
    RateLimited(String),
    /// The upstream of a proxied call failed.
    #[error("{0}")]
    BadGateway(String),
    /// Body over the configured limit.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// The body's media type is not one the endpoint takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request took longer than the server's request timeout.
    #[error("the request timed out")]
    RequestTimeout,
    /// Any other refusal the HTTP layer made by status alone.
    #[error("{message}")]
    Other {
        /// The status answered.
        status: StatusCode,
        /// What the layer said.
        message: String,
    },
    /// The store is shutting down or unavailable.
    #[error("service unavailable")]
    Unavailable,
    /// The daemon is stopping: ask again after `Retry-After` seconds (a restarted daemon has
    /// the same state).
    #[error("the daemon is shutting down; ask again in a few seconds")]
    ShuttingDown,
    /// Anything else: logged, answered generically.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// The error object every failing request returns.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `version_conflict`.
    code: &'static str,
    /// Human-readable explanation.
    message: String,
}

impl ApiError {
    /// The HTTP status and the stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            InvalidPath(_) => (StatusCode::BAD_REQUEST, "invalid_path"),
            InvalidScope(_) => (StatusCode::BAD_REQUEST, "invalid_scope"),
            InvalidTtl(_) => (StatusCode::BAD_REQUEST, "invalid_ttl"),
            InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AccessDenied(_) => (StatusCode::FORBIDDEN, "access_denied"),
            ScopeEscalation(_) => (StatusCode::FORBIDDEN, "scope_escalation"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            VersionConflict { .. } => (StatusCode::CONFLICT, "version_conflict"),
            Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            SecretDeleted(_) => (StatusCode::CONFLICT, "secret_deleted"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Expired(_) => (StatusCode::GONE, "expired"),
            BadGateway(_) => (StatusCode::BAD_GATEWAY, "upstream_failed"),
            LeaseNotActive(_) => (StatusCode::CONFLICT, "lease_not_active"),
            AlreadyDecided(_) => (StatusCode::CONFLICT, "already_decided"),
            RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Other { status, .. } if status.is_server_error() => (*status, "internal"),
            Other { status, .. } => (*status, "bad_request"),
            Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl ApiError {
    /// The error for a refusal the HTTP layer made with only a status and a text (an
    /// extractor's rejection, the timeout, the body limit).
    pub fn for_status(status: StatusCode, text: String) -> ApiError {
        match status {
            StatusCode::NOT_FOUND => ApiError::NotFound("no such endpoint".into()),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ApiError::UnsupportedMediaType(if text.is_empty() {
                    "unsupported media type".into()
                } else {
                    text
                })
            }
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable,
            s if s.is_server_error() => ApiError::Internal(text),
            s => ApiError::Other {
                status: s,
                message: if text.is_empty() {
                    s.canonical_reason().unwrap_or("refused").to_string()
                } else {
                    text
                },
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::ShuttingDown) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        response
    }
}

impl From<crate::paths::PathError> for ApiError {
    fn from(e: crate::paths::PathError) -> Self {
        ApiError::InvalidPath(e.0)
    }
}

impl From<crate::scope::ScopeError> for ApiError {
    fn from(e: crate::scope::ScopeError) -> Self {
        ApiError::InvalidScope(e.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::VersionConflict { expected, current } => {
                ApiError::VersionConflict { expected, current }
            }
            StoreError::Deleted(what) => ApiError::SecretDeleted(what),
            StoreError::Conflict(what) => ApiError::Conflict(what),
            StoreError::Invalid(what) => ApiError::BadRequest(what),
            StoreError::Denied(why) => ApiError::AccessDenied(format!("access denied: {why}")),
            StoreError::Closed | StoreError::Unavailable(_) | StoreError::Retry => {
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(r.body_text()),
            _ => ApiError::InvalidJson(r.body_text()),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}
