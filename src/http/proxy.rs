//! Proxy endpoints: call a service with a `proxy` lease (the credential is injected here, the
//! agent never sees it), and manage services (admin).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::{JsonBody, Path};
use crate::access::{Admin, LeaseGate};
use crate::audit::Draft;
use crate::auth::{Caller, Identity};
use crate::error::ApiError;
use crate::proxy::call::{Answer, Credential, build, keys_needed, send};
use crate::proxy::service::FromTemplate;
use crate::proxy::{Origin, Service};
use crate::scope::Action;
use crate::state::AppState;
use crate::store::ReadOutcome;

/// Body of a proxied call.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyCall {
    /// An active lease with action `proxy` on the service's secret.
    pub lease_id: String,
    /// Path parameters (interpolated, percent-encoded); the rest become the query (GET, DELETE)
    /// or the JSON body.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
}

/// Call `endpoint` of `service` with the credential injected (one lease use, audited).
#[utoipa::path(post, path = "/v1/proxy/{service}/{endpoint}", tag = "proxy", params(("service" = String, Path), ("endpoint" = String, Path)), request_body = ProxyCall,
    responses((status = 200, body = Answer), (status = 502, body = crate::error::ErrorBody)))]
pub async fn call(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, endpoint)): Path<(String, String)>,
    JsonBody(body): JsonBody<ProxyCall>,
) -> Result<Json<Answer>, ApiError> {
    let Identity::Agent { agent, .. } = &caller.identity else {
        return Err(ApiError::AccessDenied(
            "the proxy is used by agents, with a proxy lease".into(),
        ));
    };
    let gate = LeaseGate::of(&caller)?;
    let entry = state
        .proxy
        .get(&service)
        .ok_or_else(|| ApiError::NotFound(format!("no service {service:?}")))?;
    let svc = &entry.service;
    if !svc.allows(&agent.id) {
        caller
            .deny(
                &state,
                crate::paths::namespace_of(&svc.secret),
                &format!("services/{service}"),
                "proxy",
                "the agent is not allowed to use this service",
            )
            .await?;
    }
    let ep = svc.endpoints.get(&endpoint).ok_or_else(|| {
        ApiError::NotFound(format!("service {service} has no endpoint {endpoint:?}"))
    })?;
    let base = (entry.base.as_ref())
        .map_err(|e| ApiError::AccessDenied(format!("upstream refused: {e}")))?;
    let prepared = build(base, ep, &body.params).map_err(ApiError::BadRequest)?;
    let client = (entry.client.as_ref()).map_err(|e| ApiError::Internal(e.clone()))?;
    let (value, kind) = match state
        .store
        .use_lease_for(
            gate,
            body.lease_id.clone(),
            caller.origin.clone(),
            Action::Proxy,
            Some(svc.secret.clone()),
            keys_needed(svc),
        )
        .await?
    {
        ReadOutcome::Value(v, _, kind) => (v, kind),
        ReadOutcome::Expired(why) => return Err(ApiError::Expired(why)),
        ReadOutcome::AccessLimit => {
            return Err(ApiError::Expired(
                "the secret's max_access_count is reached".into(),
            ));
        }
        ReadOutcome::NotActive(s) => {
            return Err(ApiError::LeaseNotActive(format!("the lease is {s}")));
        }
    };
    let secret = zeroize::Zeroizing::new(
        String::from_utf8(value.expose_secret().to_vec())
            .map_err(|_| ApiError::Internal("the credential is not UTF-8".into()))?,
    );
    // The use itself was recorded (lease.used) before the credential left; `secret.used` adds
    // the upstream's answer, queued without making the agent wait for a second commit.
    let record = UseRecord {
        store: state.store.clone(),
        draft: Some(Draft {
            event: "secret.used",
            actor: caller.origin.actor.clone(),
            namespace: crate::paths::namespace_of(&svc.secret).to_string(),
            resource_path: svc.secret.clone(),
            action: "proxy".into(),
            outcome: "failure",
            ip: caller.origin.ip.clone(),
            details: json!({"service": service, "endpoint": endpoint, "lease_id": body.lease_id,
                "upstream_status": null, "latency_ms": 0, "error": "the agent went away before the upstream answered"}),
        }),
    };
    let cred = Credential {
        value: &secret,
        kind: &kind,
    };
    let result = send(client, svc, prepared, &cred).await;
    record.answered(&result);
    result.map(Json).map_err(ApiError::BadGateway)
}

/// Records `secret.used` for a proxied call when dropped: with the upstream's answer once
/// known, or as a failure if the agent went away first (the handler is then dropped mid-call).
struct UseRecord {
    store: crate::store::Store,
    draft: Option<Draft>,
}

impl UseRecord {
    /// Fills in the upstream's answer (recorded on drop).
    fn answered(mut self, result: &Result<Answer, String>) {
        if let Some(d) = self.draft.as_mut() {
            let (status, latency, error) = match result {
                Ok(a) => (Some(a.status), a.latency_ms, None),
                Err(e) => (None, 0, Some(e.as_str())),
            };
            d.outcome = if error.is_none() {
                "success"
            } else {
                "failure"
            };
            d.details["upstream_status"] = json!(status);
            d.details["latency_ms"] = json!(latency);
            d.details["error"] = json!(error);
        }
    }
}

impl Drop for UseRecord {
    fn drop(&mut self) {
        if let Some(draft) = self.draft.take() {
            self.store.append_event_detached(draft);
        }
    }
}

/// Body of `POST /v1/services`: a full service, or a template with a name and secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    /// `github`, `stripe`, `openai`, `anthropic` or `shopify`.
    pub template: Option<String>,
    /// Service name (with a template).
    pub name: Option<String>,
    /// Secret path (with a template).
    pub secret: Option<String>,
    /// Override the template's base URL (e.g. your Shopify store).
    pub base_url: Option<String>,
    /// Allow a private or loopback upstream, and plain http (with a template).
    pub allow_private: Option<bool>,
    /// Agents allowed (default: any agent holding a proxy lease).
    pub allowed_agents: Option<Vec<String>>,
    /// A full service instead of a template.
    pub service: Option<Service>,
}

/// A service as listed.
#[derive(Serialize, ToSchema)]
pub struct ServiceView {
    /// The service.
    #[serde(flatten)]
    pub service: Service,
    /// `file` or `api`.
    pub origin: Origin,
}

/// Declare a service (admin).
#[utoipa::path(post, path = "/v1/services", tag = "proxy", request_body = NewService, responses((status = 201, body = ServiceView)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Admin,
    JsonBody(body): JsonBody<NewService>,
) -> Result<(StatusCode, Json<ServiceView>), ApiError> {
    let svc = match (body.service, body.template) {
        (Some(mut s), None) => {
            if let Some(b) = body.base_url {
                s.base_url = b;
            }
            if let Some(p) = body.allow_private {
                s.allow_private = p;
            }
            if let Some(a) = body.allowed_agents {
                s.allowed_agents = a;
            }
            s
        }
        (None, Some(template)) => {
            let (Some(name), Some(secret)) = (body.name, body.secret) else {
                return Err(ApiError::BadRequest(
                    "a template needs a name and a secret".into(),
                ));
            };
            FromTemplate {
                template,
                name,
                secret,
                base_url: body.base_url,
                allow_private: body.allow_private,
                allowed_agents: body.allowed_agents,
            }
            .build()
            .map_err(ApiError::BadRequest)?
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either service or template".into(),
            ));
        }
    };
    svc.validate().map_err(ApiError::BadRequest)?;
    if state
        .proxy
        .get(&svc.name)
        .is_some_and(|e| e.origin == Origin::File)
    {
        return Err(ApiError::Conflict(format!(
            "service {} is declared in a file",
            svc.name
        )));
    }
    let svc = state.store.put_service(svc, caller.origin.clone()).await?;
    state.proxy.insert(svc.clone(), Origin::Api);
    Ok((
        StatusCode::CREATED,
        Json(ServiceView {
            service: svc,
            origin: Origin::Api,
        }),
    ))
}

/// Every service (admins and agents).
#[utoipa::path(get, path = "/v1/services", tag = "proxy", responses((status = 200, body = Vec<ServiceView>)))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Json<Vec<ServiceView>> {
    Json(
        state
            .proxy
            .list()
            .into_iter()
            .map(|(service, origin)| ServiceView { service, origin })
            .collect(),
    )
}

/// Remove a service declared through the API (admin).
#[utoipa::path(delete, path = "/v1/services/{name}", tag = "proxy", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_service(name.clone(), caller.origin.clone())
        .await?;
    state.proxy.remove(&name);
    Ok(StatusCode::NO_CONTENT)
}
