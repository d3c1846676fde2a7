//! `latchkey audit …`: show the last events (and follow new ones), query with filters
//! across pages, and verify the hash chain (exit status non-zero when it is broken).

use std::time::Duration;

use anyhow::bail;
use serde_json::{Value, json};

use super::client::Client;
use super::{GlobalOpts, array, print_json, text};

/// Largest page the daemon serves.
const PAGE: u64 = 1000;

/// Audit commands (admin).
#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Show the last N events; --follow keeps printing new ones until Ctrl-C.
    ///
    /// With --json, each event is printed as one line of JSON.
    Tail {
        /// How many events.
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20)]
        n: u64,
        /// Keep polling (every second) for new events.
        #[arg(short, long)]
        follow: bool,
    },
    /// Query events with filters, following pages up to --limit events.
    Query {
        /// First seq (inclusive).
        #[arg(long, value_name = "SEQ")]
        from_seq: Option<u64>,
        /// Last seq (inclusive).
        #[arg(long, value_name = "SEQ")]
        to_seq: Option<u64>,
        /// Event type or pattern, e.g. `secret.*`.
        #[arg(long, value_name = "PATTERN")]
        event: Option<String>,
        /// Actor id.
        #[arg(long, value_name = "ID")]
        actor: Option<String>,
        /// Resource path prefix.
        #[arg(long, value_name = "P")]
        path_prefix: Option<String>,
        /// Namespace.
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
        /// Earliest time (RFC 3339).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Latest time (RFC 3339).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Most events to print.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u64,
    },
    /// Walk the hash chain; exits non-zero when a link is broken.
    Verify,
}

/// One event as a line: `seq timestamp event outcome actor_type:actor_id resource_path`.
pub(crate) fn event_line(e: &Value) -> String {
    format!(
        "{} {} {} {} {}:{} {}",
        text(e, "seq"),
        text(e, "timestamp"),
        text(e, "event"),
        text(e, "outcome"),
        text(e, "actor_type"),
        text(e, "actor_id"),
        text(e, "resource_path"),
    )
}

fn print_events(opts: &GlobalOpts, events: &[Value]) {
    for e in events {
        if opts.json {
            outln!("{e}");
        } else {
            outln!("{}", event_line(e));
        }
    }
}

/// Where a tail of `n` events ending at `last_seq` starts.
pub(crate) fn tail_start(last_seq: u64, n: u64) -> u64 {
    last_seq.saturating_sub(n.saturating_sub(1)).max(1)
}

/// Fetches events from `from` (to `to`, if given), following pages, at most `max`.
/// Returns them with the seq to continue from when `max` cut the listing short.
async fn fetch(
    client: &Client,
    filters: &[(&str, String)],
    from: u64,
    to: Option<u64>,
    max: u64,
) -> anyhow::Result<(Vec<Value>, Option<u64>)> {
    let mut events = Vec::new();
    let mut from = from;
    loop {
        let left = max.saturating_sub(events.len() as u64);
        if left == 0 {
            return Ok((events, Some(from)));
        }
        let mut query = filters.to_vec();
        query.push(("from_seq", from.to_string()));
        query.push(("limit", left.min(PAGE).to_string()));
        if let Some(t) = to {
            query.push(("to_seq", t.to_string()));
        }
        let page = client.get("/v1/audit", &query).await?;
        events.extend_from_slice(array(&page, "events"));
        match page.get("next_seq").and_then(Value::as_u64) {
            Some(next) if next > from => from = next,
            _ => return Ok((events, None)),
        }
    }
}

/// The seq after the last of `events`, or `current` when there are none.
fn after_last(events: &[Value], current: u64) -> u64 {
    events
        .last()
        .and_then(|e| e.get("seq"))
        .and_then(Value::as_u64)
        .map_or(current, |s| s + 1)
}

/// Runs an audit command.
pub async fn run(opts: &GlobalOpts, cmd: AuditCommand) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    match cmd {
        AuditCommand::Tail { n, follow } => {
            // A one-event page carries `last_seq`, the head of the log.
            let report = client
                .get("/v1/audit", &[("limit", "1".to_string())])
                .await?;
            let last = report.get("last_seq").and_then(Value::as_u64).unwrap_or(0);
            let mut next = last + 1;
            if last > 0 && n > 0 {
                let (events, _) = fetch(&client, &[], tail_start(last, n), Some(last), n).await?;
                print_events(opts, &events);
            }
            if !follow {
                return Ok(());
            }
            // One Ctrl-C listener for the whole loop, so a press during a request counts too.
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::pin!(ctrl_c);
            loop {
                let (from, client) = (next, &client);
                let poll = async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    fetch(client, &[], from, None, u64::MAX).await
                };
                tokio::select! {
                    _ = &mut ctrl_c => return Ok(()),
                    got = poll => {
                        let (events, _) = got?;
                        print_events(opts, &events);
                        next = after_last(&events, next);
                    }
                }
            }
        }
        AuditCommand::Query {
            from_seq,
            to_seq,
            event,
            actor,
            path_prefix,
            namespace,
            since,
            until,
            limit,
        } => {
            let filters: Vec<(&str, String)> = [
                ("event", event),
                ("actor", actor),
                ("path_prefix", path_prefix),
                ("namespace", namespace),
                ("since", since),
                ("until", until),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let (events, next) =
                fetch(&client, &filters, from_seq.unwrap_or(1), to_seq, limit).await?;
            if opts.json {
                print_json(&json!({"events": events, "next_seq": next}));
            } else {
                print_events(opts, &events);
                if let Some(n) = next {
                    eprintln!("(stopped at --limit {limit}; continue with --from-seq {n})");
                }
            }
        }
        AuditCommand::Verify => {
            let report = client.get("/v1/audit/verify", &[]).await?;
            if opts.json {
                print_json(&report);
            }
            if report.get("ok") == Some(&Value::Bool(true)) {
                if !opts.json {
                    outln!("audit chain OK: {} events", text(&report, "checked"));
                }
            } else {
                let brk = report.get("first_break").unwrap_or(&Value::Null);
                bail!(
                    "audit chain BROKEN at seq {}: {}",
                    text(brk, "seq"),
                    text(brk, "reason")
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn event_lines() {
        let e = json!({"seq": 7, "timestamp": "2025-01-02T03:04:05Z", "event": "secret.created",
            "outcome": "success", "actor_type": "admin", "actor_id": "tok1", "resource_path": "prod/k"});
        assert_eq!(
            event_line(&e),
            "7 2025-01-02T03:04:05Z secret.created success admin:tok1 prod/k"
        );
    }

    #[test]
    fn tail_window() {
        assert_eq!(tail_start(100, 20), 81);
        assert_eq!(tail_start(5, 20), 1);
        assert_eq!(tail_start(5, 1), 5);
        assert_eq!(after_last(&[json!({"seq": 9})], 3), 10);
        assert_eq!(after_last(&[], 3), 3);
    }
}
