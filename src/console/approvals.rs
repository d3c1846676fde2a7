//! The approvals page: the pending inbox first (live: a decision taken anywhere refreshes it),
//! each card with who asks, what, why, votes and the deadline; Approve / Deny for those who may
//! decide, through the same vote operation as the API; decided approvals below, filterable.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, fragment, label, page as frame, when};
use super::session::same_site;
use super::{UiError, Viewer};
use crate::http::{JsonBody, Path, Query};
use crate::lease::{ApprovalState, Decision};
use crate::state::AppState;
use crate::store::ApprovalRecord;

/// Approvals the viewer may see: all for the admin, the ones an approver may decide.
fn visible(state: &AppState, v: &Viewer, a: &ApprovalRecord) -> bool {
    v.is_admin() || may_decide(state, v, a)
}

fn may_decide(state: &AppState, v: &Viewer, a: &ApprovalRecord) -> bool {
    v.caller
        .approver(state)
        .is_some_and(|ap| ap.may_decide(&a.path))
}

fn pending(state: &AppState, v: &Viewer) -> Result<Vec<ApprovalRecord>, UiError> {
    Ok(state
        .store
        .list_approvals(true, None, 1000)?
        .into_iter()
        .filter(|a| visible(state, v, a))
        .collect())
}

/// The pending count in the header.
pub fn pending_count(state: &AppState, v: &Viewer) -> Result<usize, UiError> {
    Ok(pending(state, v)?.len())
}

fn card(state: &AppState, v: &Viewer, a: &ApprovalRecord) -> Markup {
    let t = &a.tally;
    let decidable = t.state == ApprovalState::Pending && may_decide(state, v, a);
    html! {
        article.card.approval #{"approval-" (a.id)} data-approval=(a.id) {
            header {
                span.agent { (a.agent_name) }
                span.tier { "tier " (a.trust_tier) }
                span class={"sens sens-" (a.sensitivity)} { (a.sensitivity) }
                @if t.state != ApprovalState::Pending { span class={"state state-" (label(&t.state))} { (label(&t.state)) } }
            }
            p.path { code { (a.path) } }
            dl {
                dt { "Action" } dd { (label(&a.action)) }
                dt { "Lease" } dd { (a.ttl_seconds) " s, " (a.uses) " use" @if a.uses != 1 { "s" } }
                @if let Some(keys) = &a.keys { dt { "Keys" } dd { (keys.join(", ")) } }
                dt { "Why" } dd.reason { (a.reason) }
                dt { "Votes" } dd { (t.approvals()) " of " (t.quorum) " needed"
                    @for vote in &t.votes {
                        br; span.vote { (vote.approver) ": " (label(&vote.decision)) " via " (vote.via)
                            @if let Some(r) = &vote.reason { " — " q { (r) } } }
                    }
                }
                @if t.state == ApprovalState::Pending {
                    dt { "Deadline" } dd { span.countdown data-deadline=(t.deadline) { (when(t.deadline)) } " (then " (label(&t.on_deadline)) ")" }
                } @else {
                    dt { "Decided" } dd { (t.decided_at.map(when).unwrap_or_default())
                        @if let Some(by) = &t.decided_by { " by " (by) } }
                }
                dt { "Asked" } dd { (when(a.requested_at)) }
            }
            @if decidable {
                form.vote method="post" action={"/ui/approvals/" (a.id) "/vote"} {
                    (v.csrf_field())
                    input type="text" name="reason" maxlength="400" placeholder="Reason (shown to the agent)" aria-label="Reason";
                    div.buttons {
                        button.approve type="submit" name="decision" value="approve" { "Approve" }
                        button.deny type="submit" name="decision" value="deny" { "Deny" }
                    }
                }
            } @else if t.state == ApprovalState::Pending {
                p.note { "You are not an approver for this path." }
            }
        }
    }
}

fn inbox_markup(state: &AppState, v: &Viewer) -> Result<Markup, UiError> {
    let open = pending(state, v)?;
    Ok(html! {
        h2 { "Pending " span.count { (open.len()) } }
        @if open.is_empty() { p.empty { "Nothing waits for a decision." } }
        div.cards { @for a in &open { (card(state, v, a)) } }
    })
}

/// Filters of the decided list.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DecidedQuery {
    /// `approved`, `denied`, `expired`, `auto_granted`, `cancelled` or empty for all.
    state: String,
    /// Agent name (exact) or empty.
    agent: String,
    /// Cursor: approvals older than this id.
    before: String,
}

fn page_handler(state: &AppState, v: &Viewer, q: &DecidedQuery) -> Result<Response, UiError> {
    let inbox = inbox_markup(state, v)?;
    let before = (!q.before.is_empty()).then_some(q.before.as_str());
    let mut decided = Vec::new();
    let mut cursor = before.map(str::to_string);
    let mut more = None;
    // Walk decided approvals newest first until a page of matches (bounded: 20 batches).
    for _ in 0..20 {
        let batch = state.store.list_approvals(false, cursor.as_deref(), 200)?;
        let Some(last) = batch.last() else { break };
        cursor = Some(last.id.clone());
        let full = batch.len() < 200;
        for a in batch {
            if a.tally.state == ApprovalState::Pending || !visible(state, v, &a) {
                continue;
            }
            if (!q.state.is_empty() && label(&a.tally.state) != q.state)
                || (!q.agent.is_empty() && a.agent_name != q.agent)
            {
                continue;
            }
            if decided.len() == 25 {
                more = decided.last().map(|d: &ApprovalRecord| d.id.clone());
                break;
            }
            decided.push(a);
        }
        if more.is_some() || full {
            break;
        }
    }
    let states = [
        "",
        "approved",
        "denied",
        "expired",
        "auto_granted",
        "cancelled",
    ];
    let body = html! {
        section #inbox hx-get="/ui/approvals/inbox" hx-trigger="lk-change from:body" hx-swap="innerHTML" {
            (inbox)
        }
        section.decided {
            h2 { "Decided" }
            form.filters method="get" action="/ui/approvals" {
                label { "State " select name="state" {
                    @for s in states { option value=(s) selected[s == q.state] { @if s.is_empty() { "any" } @else { (s) } } }
                } }
                label { "Agent " input type="text" name="agent" value=(q.agent) placeholder="agent name"; }
                button type="submit" { "Filter" }
            }
            @if decided.is_empty() { p.empty { "No decided approvals match." } }
            div.cards { @for a in &decided { (card(state, v, a)) } }
            @if let Some(m) = more {
                p { a href={"/ui/approvals?state=" (q.state) "&agent=" (q.agent) "&before=" (m)} { "Older →" } }
            }
        }
    };
    let n = pending_count(state, v)?;
    Ok(frame(v, Nav::Approvals, "Approvals", n, body).into_response())
}

/// `GET /ui/approvals`.
pub async fn page(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<DecidedQuery>,
) -> Result<Response, UiError> {
    page_handler(&state, &v, &q)
}

/// `GET /ui/approvals/inbox`: the pending list alone (htmx refreshes it on every change).
pub async fn inbox(State(state): State<AppState>, v: Viewer) -> Result<Response, UiError> {
    Ok(fragment(inbox_markup(&state, &v)?).into_response())
}

/// `GET /ui/approvals/count`: the header's badge.
pub async fn count(State(state): State<AppState>, v: Viewer) -> Result<Response, UiError> {
    let n = pending_count(&state, &v)?;
    Ok(fragment(html! {
        span #pending-count .badge hx-get="/ui/approvals/count" hx-trigger="lk-change from:body" hx-swap="outerHTML" { (n) }
    })
    .into_response())
}

/// A vote from a card.
#[derive(Deserialize)]
pub struct VoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

/// `POST /ui/approvals/{id}/vote`: the API's vote (same checks, same audit), via `console`.
pub async fn vote(
    State(state): State<AppState>,
    headers: HeaderMap,
    v: Viewer,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<VoteForm>,
) -> Result<Response, UiError> {
    same_site(&headers)?;
    v.check_csrf(&state, &form.csrf, &format!("/ui/approvals/{id}/vote"))
        .await?;
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        other => {
            return Err(UiError::BadRequest(format!(
                "decision is approve or deny, not {other:?}"
            )));
        }
    };
    let reason = form.reason.trim();
    let body = crate::http::approvals::VoteBody {
        decision,
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        via: Some("console".into()),
    };
    let _answer = crate::http::approvals::vote(
        State(state.clone()),
        v.caller.clone(),
        Path(id),
        JsonBody(body),
    )
    .await?;
    Ok(Redirect::to("/ui/approvals").into_response())
}
