//! The agents page: each agent's tier, state, key age, open leases and live scoped tokens; the
//! admin changes a tier, disables or enables an agent and revokes a token through the API's
//! own operations (same checks, same audit events).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, page as frame, when};
use super::session::same_site;
use super::{UiError, Viewer};
use crate::access::Admin;
use crate::http::{JsonBody, Path};
use crate::state::AppState;
use crate::store::TokenRecord;

/// How long ago a ULID was made, as `3d 4h`.
fn age_of(ulid: &str, now_ms: u64) -> String {
    let Ok(u) = ulid::Ulid::from_string(ulid) else {
        return "?".into();
    };
    let secs = now_ms.saturating_sub(u.timestamp_ms()) / 1000;
    match secs {
        s if s >= 86400 => format!("{}d {}h", s / 86400, s % 86400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}m", s / 60),
    }
}

/// `GET /ui/agents`.
pub async fn page(State(state): State<AppState>, v: Viewer) -> Result<Response, UiError> {
    v.admin_only(&state, "/ui/agents").await?;
    let agents = state.store.list_agents()?;
    let mut tokens: HashMap<String, Vec<TokenRecord>> = HashMap::new();
    for t in state.store.live_tokens()? {
        tokens.entry(t.agent_id.clone()).or_default().push(t);
    }
    let mut leases: HashMap<String, usize> = HashMap::new();
    for l in state.store.open_leases()? {
        *leases.entry(l.agent_id).or_default() += 1;
    }
    let now_ms =
        u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp() * 1000).unwrap_or(0);
    let body = html! {
        h1 { "Agents" }
        @if agents.is_empty() { p.empty { "No agents yet: " code { "latchkey agent create NAME" } } }
        div.cards {
            @for a in &agents {
                article.card.agent #{"agent-" (a.id)} {
                    header {
                        span.agent { (a.name) }
                        span.tier { "tier " (a.trust_tier) }
                        @if a.disabled { span.state.state-denied { "disabled" } }
                    }
                    dl {
                        dt { "Namespace" } dd { code { (a.namespace) "/" } }
                        dt { "Id" } dd { code { (a.id) } }
                        dt { "Key age" } dd { (age_of(&a.key_id, now_ms)) }
                        dt { "Open leases" } dd { (leases.get(&a.id).copied().unwrap_or(0)) }
                        @if !a.description.is_empty() { dt { "About" } dd { (a.description) } }
                    }
                    form.inline method="post" action={"/ui/agents/" (a.id)} {
                        (v.csrf_field())
                        label { "Tier "
                            select name="trust_tier" {
                                @for t in 1..=5u8 { option value=(t) selected[t == a.trust_tier] { (t) } }
                            }
                        }
                        input type="hidden" name="disabled" value=(a.disabled);
                        button type="submit" { "Set tier" }
                    }
                    form.inline method="post" action={"/ui/agents/" (a.id)} {
                        (v.csrf_field())
                        input type="hidden" name="disabled" value=(!a.disabled);
                        @if a.disabled { button type="submit" { "Enable" } }
                        @else { button.deny type="submit" { "Disable" } }
                    }
                    @let live = tokens.get(&a.id).map(Vec::as_slice).unwrap_or(&[]);
                    h3 { "Scoped tokens (" (live.len()) ")" }
                    @if !live.is_empty() {
                        div.table-wrap { table.tokens {
                            thead { tr { th { "Token" } th { "Scopes" } th { "Session / task" } th { "Expires" } th {} } }
                            tbody { @for t in live {
                                tr {
                                    td { code { (t.id) } @if !t.description.is_empty() { br; (t.description) } }
                                    td { (t.scopes.join(" ")) }
                                    td { (t.session_id.clone().unwrap_or_default()) " " (t.task_id.clone().unwrap_or_default()) }
                                    td.nowrap { (when(t.expires_at)) }
                                    td { form method="post" action={"/ui/tokens/" (t.id) "/revoke"} {
                                        (v.csrf_field())
                                        button.deny type="submit" { "Revoke" }
                                    } }
                                }
                            } }
                        } }
                    }
                }
            }
        }
    };
    let n = super::approvals::pending_count(&state, &v)?;
    Ok(frame(&v, Nav::Agents, "Agents", n, body).into_response())
}

/// A change to an agent.
#[derive(Deserialize)]
pub struct AgentForm {
    #[serde(default)]
    csrf: String,
    trust_tier: Option<u8>,
    disabled: Option<bool>,
}

/// `POST /ui/agents/{id}`: the API's `PATCH /v1/agents/{id}`.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    v: Viewer,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<AgentForm>,
) -> Result<Response, UiError> {
    same_site(&headers)?;
    v.check_csrf(&state, &form.csrf, &format!("/ui/agents/{id}"))
        .await?;
    v.admin_only(&state, &format!("/ui/agents/{id}")).await?;
    let body = crate::http::agents::UpdateAgent {
        trust_tier: form.trust_tier,
        disabled: form.disabled,
    };
    let _answer = crate::http::agents::update(
        State(state.clone()),
        Admin(v.caller.clone()),
        Path(id),
        JsonBody(body),
    )
    .await?;
    Ok(Redirect::to("/ui/agents").into_response())
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/tokens/{id}/revoke`: the API's `DELETE /v1/tokens/{id}`.
pub async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    v: Viewer,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Result<Response, UiError> {
    same_site(&headers)?;
    v.check_csrf(&state, &form.csrf, &format!("/ui/tokens/{id}/revoke"))
        .await?;
    v.admin_only(&state, &format!("/ui/tokens/{id}/revoke"))
        .await?;
    let _answer =
        crate::http::tokens::revoke_one(State(state.clone()), v.caller.clone(), Path(id)).await?;
    Ok(Redirect::to("/ui/agents").into_response())
}
