//! The web console at `/ui`: server-rendered pages (maud) for approvers and operators, with a
//! vendored htmx and live updates by server-sent events from the notice stream. Approvers see
//! the approvals inbox; the admin sees everything else too. No page ever shows a secret value.

mod agents;
mod approvals;
mod assets;
mod audit;
mod chart;
mod events;
mod layout;
mod page_error;
mod secrets;
mod session;
mod webhooks;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

pub use page_error::UiError;
pub use session::Viewer;

use crate::state::AppState;

/// The console's routes (nested at `/ui` by the API router when `[console] enabled`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/approvals") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/approvals") }))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route(
            "/ui/link/{secret}",
            get(session::link_page).post(session::redeem),
        )
        .route("/ui/logout", post(session::logout))
        .route("/ui/events", get(events::stream))
        .route("/ui/approvals", get(approvals::page))
        .route("/ui/approvals/inbox", get(approvals::inbox))
        .route("/ui/approvals/count", get(approvals::count))
        .route("/ui/approvals/{id}/vote", post(approvals::vote))
        .route("/ui/audit", get(audit::page))
        .route("/ui/audit/verify", get(audit::verify))
        .route("/ui/audit/export", get(audit::export))
        .route("/ui/secrets", get(secrets::page))
        .route("/ui/agents", get(agents::page))
        .route("/ui/agents/{id}", post(agents::update))
        .route("/ui/tokens/{id}/revoke", post(agents::revoke_token))
        .route("/ui/webhooks", get(webhooks::page))
}
