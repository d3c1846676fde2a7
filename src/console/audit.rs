//! The audit page: a timeline filtered by event type, agent, path prefix and time range, paged
//! with the API's seq cursor; a chart of events per hour by type over the range; the chain's
//! verification; and the filtered rows exported as JSON lines or CSV.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::chart::Series;
use super::layout::{Nav, fragment, page as frame};
use super::{UiError, Viewer};
use crate::audit::Event;
use crate::http::Query;
use crate::state::AppState;
use crate::store::{AuditFilter, parse_query_time};

/// Most events the chart and an export read.
const SCAN_CAP: usize = 100_000;

/// The page's filters (all optional; the range defaults to the last 24 hours).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct AuditQuery {
    /// Event type or pattern (`secret.*`).
    event: String,
    /// Agent name or id.
    agent: String,
    /// Resource path prefix.
    path: String,
    /// From (`YYYY-MM-DDTHH:MM`, UTC, or RFC 3339).
    since: String,
    /// Until.
    until: String,
    /// Cursor: the first seq of the page.
    from_seq: Option<u64>,
    /// Export format: `jsonl` or `csv`.
    format: String,
}

/// A browser's `datetime-local` value (taken as UTC) or RFC 3339.
fn parse_time(field: &str, s: &str) -> Result<Option<time::OffsetDateTime>, UiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let full = if s.len() == 16 {
        format!("{s}:00Z")
    } else {
        s.to_string()
    };
    parse_query_time(&full)
        .or_else(|| parse_query_time(&format!("{s}Z")))
        .map(Some)
        .ok_or_else(|| {
            UiError::BadRequest(format!(
                "{field}: {s:?} is not a time such as 2026-12-01T09:30"
            ))
        })
}

fn input_time(t: time::OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]"
    ))
    .unwrap_or_default()
}

/// The filter, and the range it covers.
fn filter_of(state: &AppState, q: &AuditQuery) -> Result<(AuditFilter, i64, i64), UiError> {
    let now = time::OffsetDateTime::now_utc();
    let until = parse_time("until", &q.until)?;
    let since = parse_time("since", &q.since)?
        .unwrap_or_else(|| until.unwrap_or(now) - time::Duration::hours(24));
    let agent_id = if q.agent.trim().is_empty() {
        None
    } else {
        match state.store.find_agent(q.agent.trim()) {
            Ok(a) => Some(a.id),
            Err(crate::store::StoreError::NotFound(_)) => {
                return Err(UiError::BadRequest(format!(
                    "no agent {:?}",
                    q.agent.trim()
                )));
            }
            Err(e) => return Err(e.into()),
        }
    };
    let nonempty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let filter = AuditFilter {
        from_seq: q.from_seq,
        event: nonempty(&q.event),
        agent_id,
        path_prefix: nonempty(&q.path),
        since: Some(since),
        until,
        limit: 100,
        ..Default::default()
    };
    let end = until.unwrap_or(now).unix_timestamp();
    Ok((filter, since.unix_timestamp(), end))
}

/// Every matching event (at most `SCAN_CAP`), from the start of the range.
fn scan(
    state: &AppState,
    filter: &AuditFilter,
    mut each: impl FnMut(&Event),
) -> Result<bool, UiError> {
    let mut f = AuditFilter {
        from_seq: None,
        limit: 10_000,
        ..filter.clone()
    };
    let mut seen = 0;
    loop {
        let page = state.store.query_audit(&f)?;
        for e in &page.events {
            each(e);
        }
        seen += page.events.len();
        match page.next_seq {
            Some(next) if seen < SCAN_CAP => f.from_seq = Some(next),
            Some(_) => return Ok(false),
            None => return Ok(true),
        }
    }
}

fn unix_of(e: &Event) -> i64 {
    parse_query_time(&e.timestamp).map_or(0, |t| t.unix_timestamp())
}

fn query_string(q: &AuditQuery) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("event", &q.event),
        ("agent", &q.agent),
        ("path", &q.path),
        ("since", &q.since),
        ("until", &q.until),
    ] {
        if !v.is_empty() {
            ser.append_pair(k, v);
        }
    }
    ser.finish()
}

/// `GET /ui/audit`.
pub async fn page(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<AuditQuery>,
) -> Result<Response, UiError> {
    v.admin_only(&state, "/ui/audit").await?;
    let (filter, since, until) = filter_of(&state, &q)?;
    let events = state.store.query_audit(&filter)?;
    let mut series = Series::new(since, until);
    let complete = scan(&state, &filter, |e| series.add(unix_of(e), &e.event))?;
    let qs = query_string(&q);
    let since_value = if q.since.is_empty() {
        time::OffsetDateTime::from_unix_timestamp(since)
            .map(input_time)
            .unwrap_or_default()
    } else {
        q.since.clone()
    };
    let body = html! {
        h1 { "Audit" }
        section.card {
            div #verify hx-get="/ui/audit/verify" hx-trigger="load" { "Checking the chain…" }
        }
        form.filters method="get" action="/ui/audit" {
            label { "Event " input type="text" name="event" value=(q.event) placeholder="secret.* or lease.granted"; }
            label { "Agent " input type="text" name="agent" value=(q.agent) placeholder="name or id"; }
            label { "Path prefix " input type="text" name="path" value=(q.path) placeholder="production/"; }
            label { "From (UTC) " input type="datetime-local" name="since" value=(since_value); }
            label { "Until (UTC) " input type="datetime-local" name="until" value=(q.until); }
            button type="submit" { "Filter" }
        }
        section.card {
            h2 { (series.total()) " events" @if !complete { " (the first " (SCAN_CAP) ")" } }
            (series.render())
            p.exports {
                "Export these rows: "
                a href={"/ui/audit/export?format=jsonl&" (qs)} download { "JSON lines" }
                " · "
                a href={"/ui/audit/export?format=csv&" (qs)} download { "CSV" }
            }
        }
        div.table-wrap {
            table.events {
                thead { tr { th { "Seq" } th { "Time" } th { "Event" } th { "Actor" } th { "Path" } th { "Outcome" } th { "Details" } } }
                tbody {
                    @for e in &events.events {
                        tr {
                            td { (e.seq) }
                            td.nowrap { (e.timestamp) }
                            td { code { (e.event) } }
                            td { (e.actor.kind) ":" (e.actor.id) }
                            td { code { (e.resource_path) } }
                            td { (e.outcome) }
                            td.details { (truncate(&e.details.to_string(), 200)) }
                        }
                    }
                }
            }
        }
        @if events.events.is_empty() { p.empty { "No events match." } }
        @if let Some(next) = events.next_seq {
            p { a href={"/ui/audit?" (qs) "&from_seq=" (next)} { "Next page →" } }
        }
    };
    let n = super::approvals::pending_count(&state, &v)?;
    Ok(frame(&v, Nav::Audit, "Audit", n, body).into_response())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// `GET /ui/audit/verify`: walks the chain (a fragment loaded after the page).
pub async fn verify(State(state): State<AppState>, v: Viewer) -> Result<Response, UiError> {
    v.admin_only(&state, "/ui/audit/verify").await?;
    let store = state.store.clone();
    let report = tokio::task::spawn_blocking(move || store.verify_audit())
        .await
        .map_err(|e| UiError::Api(crate::error::ApiError::Internal(e.to_string())))??;
    Ok(fragment(html! {
        @if report.ok {
            p.flash.good #chain-status data-ok="true" {
                "Chain verified: " (report.checked) " events, last seq " (report.last_seq)
                @if let Some(c) = report.checkpoint_seq { " (from the signed checkpoint at seq " (c) ")" }
                "."
            }
        } @else {
            p.flash.bad #chain-status data-ok="false" {
                "The chain is broken"
                @if let Some(b) = &report.first_break { " at seq " (b.seq) ": " (b.reason) }
                " (" (report.checked) " events checked, last seq " (report.last_seq) ")."
            }
        }
    })
    .into_response())
}

/// A CSV field, quoted when needed; a leading `= + - @` is defused for spreadsheets.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /ui/audit/export?format=jsonl|csv&…`: the filtered rows as a download.
pub async fn export(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<AuditQuery>,
) -> Result<Response, UiError> {
    v.admin_only(&state, "/ui/audit/export").await?;
    let (filter, _, _) = filter_of(&state, &q)?;
    let csv = match q.format.as_str() {
        "" | "jsonl" => false,
        "csv" => true,
        other => {
            return Err(UiError::BadRequest(format!(
                "format is jsonl or csv, not {other:?}"
            )));
        }
    };
    let mut out = String::new();
    if csv {
        out.push_str("seq,timestamp,event,actor_type,actor_id,agent_id,namespace,resource_path,action,outcome,ip,details,hash\n");
    }
    scan(&state, &filter, |e| {
        if csv {
            let row = [
                e.seq.to_string(),
                e.timestamp.clone(),
                e.event.clone(),
                e.actor.kind.clone(),
                e.actor.id.clone(),
                e.actor.agent_id.clone().unwrap_or_default(),
                e.namespace.clone(),
                e.resource_path.clone(),
                e.action.clone(),
                e.outcome.clone(),
                e.ip.clone().unwrap_or_default(),
                e.details.to_string(),
                e.hash.clone(),
            ];
            let line: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
        } else {
            out.push_str(&serde_json::to_string(e).unwrap_or_default());
        }
        out.push('\n');
    })?;
    let (kind, name) = if csv {
        ("text/csv; charset=utf-8", "latchkey-audit.csv")
    } else {
        ("application/x-ndjson", "latchkey-audit.jsonl")
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
