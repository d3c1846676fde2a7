//! The HTTP API: the router, its middleware (body limit, timeout, tracing), extractors that
//! answer bad input with the JSON error shape, and the OpenAPI document generated from the
//! handlers' annotations.

mod agents;
mod approvals;
mod audit;
mod export;
mod grants;
mod jobs;
mod lease_request;
mod lease_value;
mod leases;
mod proxy;
mod secret_lifecycle;
mod secret_list;
mod secret_write;
mod secrets;
mod system;
mod tokens;
mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts};
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body; malformed input becomes a 400 `invalid_json`, oversized a 413.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// Query parameters; unknown or malformed ones become a 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path parameters; malformed ones become a 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Latchkey", description = "Secrets for AI agents, with humans in the loop."),
    paths(
        system::healthz, system::readyz, system::openapi_json, system::keys_rotate, system::keys_rewrap, system::keys_list,
        secret_write::put_secret, secrets::describe, secret_list::list, secret_lifecycle::versions, secret_lifecycle::rollback, secret_lifecycle::delete, secret_lifecycle::restore,
        agents::create, agents::list, agents::get_one, agents::update, agents::rotate_key,
        tokens::mint, tokens::revoke, tokens::revoke_one,
        audit::query, audit::verify,
        jobs::list, jobs::run,
        proxy::call, proxy::create, proxy::list, proxy::delete,
        export::export,
        webhooks::create, webhooks::list, webhooks::show, webhooks::update, webhooks::delete, webhooks::rotate, webhooks::replay, webhooks::deliveries,
        lease_request::request, leases::show, leases::list, leases::revoke, lease_value::secret, lease_value::read_now,
        approvals::list, approvals::show, approvals::vote, approvals::approver_token,
        grants::create, grants::put, grants::list, grants::delete, grants::put_policy, grants::list_policies, grants::delete_policy,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Builds the router with every route and layer.
pub fn router(state: AppState) -> Router {
    let limit = state.config.http.max_body_bytes;
    let timeout = Duration::from_secs(state.config.http.request_timeout_seconds);
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/openapi.json", get(system::openapi_json))
        .route("/v1/keys", get(system::keys_list))
        .route("/v1/keys/rotate", post(system::keys_rotate))
        .route("/v1/keys/rewrap", post(system::keys_rewrap))
        .route("/v1/secrets", get(secret_list::list))
        .route(
            "/v1/secrets/{*path}",
            get(secrets::get_dispatch)
                .put(secret_write::put_secret)
                .post(secrets::post_dispatch)
                .delete(secret_lifecycle::delete),
        )
        .route("/v1/agents", post(agents::create).get(agents::list))
        .route(
            "/v1/agents/{id}",
            get(agents::get_one).patch(agents::update),
        )
        .route("/v1/agents/{id}/rotate-key", post(agents::rotate_key))
        .route("/v1/tokens", post(tokens::mint))
        .route("/v1/tokens/revoke", post(tokens::revoke))
        .route("/v1/tokens/{id}", axum::routing::delete(tokens::revoke_one))
        .route("/v1/leases", post(lease_request::request).get(leases::list))
        .route("/v1/leases/{id}", get(leases::show).delete(leases::revoke))
        .route("/v1/leases/{id}/secret", post(lease_value::secret))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::show))
        .route("/v1/approvals/{id}/votes", post(approvals::vote))
        .route(
            "/v1/approvers/{name}/tokens",
            post(approvals::approver_token),
        )
        .route("/v1/grants", post(grants::create).get(grants::list))
        .route(
            "/v1/grants/{id}",
            axum::routing::put(grants::put).delete(grants::delete),
        )
        .route("/v1/approval-policies", get(grants::list_policies))
        .route(
            "/v1/approval-policies/{*pattern}",
            axum::routing::put(grants::put_policy).delete(grants::delete_policy),
        )
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::show)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/rotate-secret", post(webhooks::rotate))
        .route("/v1/webhooks/{id}/replay", post(webhooks::replay))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/bots/telegram/webhook",
            post(crate::channels::telegram::webhook),
        )
        .route(
            "/bots/discord/interactions",
            post(crate::channels::discord::interactions),
        )
        .route("/v1/export", post(export::export))
        .route("/v1/proxy/{service}/{endpoint}", post(proxy::call))
        .route("/v1/services", post(proxy::create).get(proxy::list))
        .route("/v1/services/{name}", axum::routing::delete(proxy::delete))
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{name}/run", post(jobs::run))
        .route("/v1/audit", get(audit::query))
        .route("/v1/audit/verify", get(audit::verify))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
