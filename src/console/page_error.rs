//! The console's error type: each refusal is an HTML page with the status the API would give
//! (mapped once, here), or a redirect to the sign-in page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::error::ApiError;
use crate::store::StoreError;

/// What went wrong in a console request.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No live session: to the sign-in page.
    #[error("sign in first")]
    SignIn,
    /// Signed in, but this is not theirs to see or do (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such page or record (404).
    #[error("{0}")]
    NotFound(String),
    /// The form or query is wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// An API operation refused or failed (its status).
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        UiError::Api(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            UiError::SignIn => return Redirect::to("/ui/login").into_response(),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            UiError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Cannot do that", m),
            UiError::Api(e) => {
                let (status, _) = e.status_and_code();
                let title = match status {
                    StatusCode::UNAUTHORIZED => "Not signed in",
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Already done",
                    StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
                    s if s.is_server_error() => "Something failed",
                    _ => "Cannot do that",
                };
                (status, title, e.to_string())
            }
        };
        let body = html! {
            section.card.error {
                h1 { (title) }
                p { (message) }
                p { a href="/ui/approvals" { "Back to the console" } }
            }
        };
        let page = super::layout::bare(title, body);
        (status, page).into_response()
    }
}
