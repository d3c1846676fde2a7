//! The webhooks and channels page: each audit subscription's state, cursor lag, last delivery
//! and recent failures; each chat channel's health and the store's (the `/readyz` checks).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{Nav, label, page as frame};
use super::{UiError, Viewer};
use crate::state::AppState;
use crate::store::AuditFilter;

/// Recent attempts examined per subscription.
const RECENT: usize = 20;

/// `GET /ui/webhooks`.
pub async fn page(State(state): State<AppState>, v: Viewer) -> Result<Response, UiError> {
    v.admin_only(&state, "/ui/webhooks").await?;
    let head = state
        .store
        .query_audit(&AuditFilter {
            from_seq: Some(u64::MAX),
            limit: 1,
            ..Default::default()
        })?
        .last_seq;
    let mut rows = Vec::new();
    for w in state.store.list_webhooks()? {
        let cursor = state.store.webhook_cursor(&w.id)?;
        let recent = state.store.list_deliveries(&w.id, RECENT)?;
        let failures = recent
            .iter()
            .filter(|d| d.error.is_some() || !d.status.is_some_and(|s| (200..300).contains(&s)))
            .count();
        rows.push((w, cursor, recent, failures));
    }
    let (ready, checks) = crate::http::system::readiness(&state);
    let body = html! {
        h1 { "Webhooks and channels" }
        section.card {
            h2 { "Health " @if ready { span.state.state-approved { "ready" } } @else { span.state.state-denied { "not ready" } } }
            dl {
                @for (k, val) in &checks {
                    dt { (k) }
                    dd { (val.as_str().map(str::to_string).unwrap_or_else(|| val.to_string())) }
                }
            }
        }
        h2 { "Audit subscriptions" }
        @if rows.is_empty() { p.empty { "No subscriptions: " code { "latchkey webhook add URL" } } }
        div.cards {
            @for (w, cursor, recent, failures) in &rows {
                article.card.webhook #{"webhook-" (w.id)} {
                    header {
                        code { (w.url) }
                        span class={"state state-" (label(&w.status))} { (label(&w.status)) }
                    }
                    dl {
                        dt { "Events" } dd { (w.events.join(" ")) }
                        dt { "Cursor" } dd { (cursor) " of " (head) }
                        dt { "Lag" } dd.lag { (head.saturating_sub(*cursor)) " events" }
                        dt { "Last delivery" } dd {
                            @if let Some(d) = recent.first() {
                                (d.time) " · seq " (d.seq) " · "
                                @if let Some(s) = d.status { "HTTP " (s) } @else { "no answer" }
                                " · " (d.latency_ms) " ms"
                                @if let Some(e) = &d.error { " · " (e) }
                            } @else { "none yet" }
                        }
                        dt { "Recent failures" } dd { (failures) " of the last " (recent.len()) }
                        @if let Some(r) = &w.status_reason { dt { "Why" } dd { (r) } }
                    }
                }
            }
        }
    };
    let n = super::approvals::pending_count(&state, &v)?;
    Ok(frame(&v, Nav::Webhooks, "Webhooks", n, body).into_response())
}
