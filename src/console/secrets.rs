//! The secrets page: the namespace tree with each secret's metadata, versions, expiry, access
//! counts and active leases. Values are never read here.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{Nav, page as frame};
use super::{UiError, Viewer};
use crate::lease::LeaseState;
use crate::state::AppState;
use crate::store::SecretRecord;

/// Most secrets listed.
const MOST: usize = 2000;

/// `GET /ui/secrets`.
pub async fn page(State(state): State<AppState>, v: Viewer) -> Result<Response, UiError> {
    v.admin_only(&state, "/ui/secrets").await?;
    let secrets = state
        .store
        .list_secrets("", None, true, MOST + 1, |_| true)?;
    let truncated = secrets.len() > MOST;
    let mut active: HashMap<String, (u32, u32)> = HashMap::new();
    for l in state.store.open_leases()? {
        let e = active.entry(l.path.clone()).or_default();
        match l.state {
            LeaseState::Active => e.0 += 1,
            _ => e.1 += 1,
        }
    }
    let mut tree: BTreeMap<&str, Vec<&SecretRecord>> = BTreeMap::new();
    for s in secrets.iter().take(MOST) {
        tree.entry(s.namespace.as_str()).or_default().push(s);
    }
    let body = html! {
        h1 { "Secrets" }
        p.note { (secrets.len().min(MOST)) " secrets in " (tree.len()) " namespaces. Values are never shown here." }
        @for (ns, list) in &tree {
            details.namespace open {
                summary { code { (ns) "/" } " · " (list.len()) }
                div.table-wrap {
                    table.secrets {
                        thead { tr { th { "Path" } th { "Type" } th { "Sensitivity" } th { "Version" } th { "Expires" } th { "Reads" } th { "Leases" } th { "Updated" } } }
                        tbody {
                            @for s in list {
                                @let (act, pend) = active.get(&s.path).copied().unwrap_or((0, 0));
                                tr.deleted[s.deleted_at.is_some()] {
                                    td { code { (s.path.strip_prefix(&format!("{ns}/")).unwrap_or(&s.path)) }
                                        @if s.deleted_at.is_some() { " " span.state { "deleted" } }
                                        @if !s.metadata.is_empty() {
                                            details.meta { summary { "metadata" } pre { (serde_json::to_string_pretty(&s.metadata).unwrap_or_default()) } }
                                        }
                                    }
                                    td { (s.secret_type) }
                                    td { span class={"sens sens-" (s.sensitivity)} { (s.sensitivity) } }
                                    td { "v" (s.current_version) @if s.latest_version != s.current_version { " (latest v" (s.latest_version) ")" } }
                                    td { @if let Some(e) = &s.expired_at { "expired " (e) } @else { (s.expires_at.clone().unwrap_or_else(|| "never".into())) } }
                                    td { (s.access_count) @if let Some(m) = s.max_access_count { " / " (m) } }
                                    td { (act) " active" @if pend > 0 { ", " (pend) " pending" } }
                                    td.nowrap { (s.updated_at) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if truncated { p.note { "Only the first " (MOST) " secrets are listed; use " code { "latchkey ls" } " for the rest." } }
    };
    let n = super::approvals::pending_count(&state, &v)?;
    Ok(frame(&v, Nav::Secrets, "Secrets", n, body).into_response())
}
