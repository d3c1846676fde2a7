//! The HTTP API: the router, its middleware (body limit, timeout, tracing), extractors that
//! answer bad input with the JSON error shape, and the OpenAPI document generated from the
//! handlers' annotations.

mod admin_tokens;
pub(crate) mod agents;
pub(crate) mod approvals;
mod audit;
mod console;
mod export;
mod grants;
mod jobs;
mod lease_request;
mod lease_value;
mod leases;
pub mod metrics;
pub mod openapi;
mod proxy;
mod secret_lifecycle;
mod secret_list;
mod secret_write;
mod secrets;
pub(crate) mod system;
pub(crate) mod tokens;
pub(crate) mod webhooks;
mod whoami;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts};
use axum::routing::{delete, get, patch, post, put};
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
        system::healthz, system::readyz, system::openapi_json, system::status, whoami::whoami, system::keys_rotate, system::keys_rewrap, system::keys_list,
        admin_tokens::list, admin_tokens::mint, admin_tokens::revoke,
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
        console::issue_link, console::sessions, console::revoke_session,
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

/// Builds the router with every route and layer. Each `/v1` route is registered with the
/// class of caller it serves (`crate::access`): this table is where who-may-call-what is
/// decided, and the route × credential test in `tests/it/access.rs` holds it to that.
pub fn router(state: AppState) -> Router {
    use crate::access::Class::{Admin, Agent, Any, Decider, Holder};
    let limit = state.config.http.max_body_bytes;
    let timeout = Duration::from_secs(state.config.http.request_timeout_seconds);
    let g = |class, routes| crate::access::guard(&state, class, routes);
    let router = Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/openapi.json", get(system::openapi_json))
        .route(
            "/bots/telegram/webhook",
            post(crate::channels::telegram::webhook),
        )
        .route(
            "/bots/discord/interactions",
            post(crate::channels::discord::interactions),
        )
        .route("/v1/status", g(Any, get(system::status)))
        .route("/v1/whoami", g(Any, get(whoami::whoami)))
        .route(
            "/v1/admin-tokens",
            g(Admin, get(admin_tokens::list).post(admin_tokens::mint)),
        )
        .route(
            "/v1/admin-tokens/{id}",
            g(Admin, delete(admin_tokens::revoke)),
        )
        .route("/v1/keys", g(Admin, get(system::keys_list)))
        .route("/v1/keys/rotate", g(Admin, post(system::keys_rotate)))
        .route("/v1/keys/rewrap", g(Admin, post(system::keys_rewrap)))
        .route("/v1/secrets", g(Holder, get(secret_list::list)))
        .route(
            "/v1/secrets/{*path}",
            g(
                Holder,
                get(secrets::get_dispatch)
                    .put(secret_write::put_secret)
                    .post(secrets::post_dispatch)
                    .delete(secret_lifecycle::delete),
            ),
        )
        .route(
            "/v1/agents",
            g(Admin, post(agents::create).get(agents::list)),
        )
        .route(
            "/v1/agents/{id}",
            g(Holder, get(agents::get_one)).merge(g(Admin, patch(agents::update))),
        )
        .route(
            "/v1/agents/{id}/rotate-key",
            g(Admin, post(agents::rotate_key)),
        )
        .route("/v1/tokens", g(Holder, post(tokens::mint)))
        .route("/v1/tokens/revoke", g(Holder, post(tokens::revoke)))
        .route("/v1/tokens/{id}", g(Holder, delete(tokens::revoke_one)))
        .route(
            "/v1/leases",
            g(Agent, post(lease_request::request)).merge(g(Holder, get(leases::list))),
        )
        .route(
            "/v1/leases/{id}",
            g(Holder, get(leases::show).delete(leases::revoke)),
        )
        .route(
            "/v1/leases/{id}/secret",
            g(Agent, post(lease_value::secret)),
        )
        .route("/v1/approvals", g(Decider, get(approvals::list)))
        .route("/v1/approvals/{id}", g(Decider, get(approvals::show)))
        .route(
            "/v1/approvals/{id}/votes",
            g(Decider, post(approvals::vote)),
        )
        .route(
            "/v1/approvers/{name}/tokens",
            g(Admin, post(approvals::approver_token)),
        )
        .route(
            "/v1/grants",
            g(Admin, post(grants::create).get(grants::list)),
        )
        .route(
            "/v1/grants/{id}",
            g(Admin, put(grants::put).delete(grants::delete)),
        )
        .route(
            "/v1/approval-policies",
            g(Admin, get(grants::list_policies)),
        )
        .route(
            "/v1/approval-policies/{*pattern}",
            g(Admin, put(grants::put_policy).delete(grants::delete_policy)),
        )
        .route(
            "/v1/webhooks",
            g(Admin, post(webhooks::create).get(webhooks::list)),
        )
        .route(
            "/v1/webhooks/{id}",
            g(
                Admin,
                get(webhooks::show)
                    .patch(webhooks::update)
                    .delete(webhooks::delete),
            ),
        )
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            g(Admin, post(webhooks::rotate)),
        )
        .route("/v1/webhooks/{id}/replay", g(Admin, post(webhooks::replay)))
        .route(
            "/v1/webhooks/{id}/deliveries",
            g(Admin, get(webhooks::deliveries)),
        )
        .route("/v1/export", g(Admin, post(export::export)))
        .route(
            "/v1/proxy/{service}/{endpoint}",
            g(Agent, post(proxy::call)),
        )
        .route(
            "/v1/services",
            g(Admin, post(proxy::create)).merge(g(Holder, get(proxy::list))),
        )
        .route("/v1/services/{name}", g(Admin, delete(proxy::delete)))
        .route("/v1/jobs", g(Admin, get(jobs::list)))
        .route("/v1/jobs/{name}/run", g(Admin, post(jobs::run)))
        .route("/v1/audit", g(Admin, get(audit::query)))
        .route("/v1/audit/verify", g(Admin, get(audit::verify)))
        .route("/v1/console/links", g(Admin, post(console::issue_link)))
        .route("/v1/console/sessions", g(Admin, get(console::sessions)))
        .route(
            "/v1/console/sessions/{id}",
            g(Admin, delete(console::revoke_session)),
        )
        // MCP (Streamable HTTP) for agents; its tools call the routes above as the caller.
        .route("/mcp", g(Agent, crate::mcp::http::endpoint(&state)))
        // The web console (its own sign-in: a session cookie, not a Bearer header).
        .merge(if state.config.console.enabled {
            crate::console::router()
        } else {
            Router::new()
        })
        .merge(metrics::api_routes(&state))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .layer(TraceLayer::new_for_http());
    // Outermost: counts every answer (refusals and timeouts too) by its route template; only
    // when metrics are on (it costs about a tenth of the cheapest request's CPU).
    let router = if state.config.metrics.enabled {
        router.layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
    } else {
        router
    };
    router.with_state(state)
}

/// Every refusal has the JSON error shape: a failing response that is not JSON (an extractor
/// rejection such as `Bytes`' 413, the timeout's 408, a 415) is rewritten here, once, with
/// the code its status maps to; its headers (`Allow`, `Retry-After`) are kept.
async fn json_errors(resp: axum::response::Response) -> axum::response::Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // The console's pages are HTML, refusals included.
    let is_page = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_json || is_page || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let error = ApiError::for_status(status, text);
    let (mut new_parts, new_body) = axum::response::IntoResponse::into_response(error).into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    if let Some(ct) = new_parts.headers.remove(CONTENT_TYPE) {
        parts.headers.insert(CONTENT_TYPE, ct);
    }
    parts.status = new_parts.status;
    axum::response::Response::from_parts(parts, new_body)
}
