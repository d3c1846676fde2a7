//! Reading the audit log: filtered, paginated queries and the chain verification walk.
//! Appends happen only inside write jobs (see `WriteCtx::audit`).

use std::ops::Bound;

use serde::Serialize;

use super::keys::Key;
use super::kv::{ReadTxn, Records, Table};
use super::{Store, StoreError};
use crate::audit::{Break, ChainVerifier, Event, GENESIS, type_matches};

/// Which events to return.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// First seq (inclusive).
    pub from_seq: Option<u64>,
    /// Last seq (inclusive).
    pub to_seq: Option<u64>,
    /// Event type pattern (`secret.*`).
    pub event: Option<String>,
    /// Actor id.
    pub actor: Option<String>,
    /// The agent that acted (its key or one of its tokens).
    pub agent_id: Option<String>,
    /// Resource path prefix.
    pub path_prefix: Option<String>,
    /// Namespace (exact).
    pub namespace: Option<String>,
    /// Earliest timestamp (RFC 3339, inclusive).
    pub since: Option<time::OffsetDateTime>,
    /// Latest timestamp (RFC 3339, inclusive).
    pub until: Option<time::OffsetDateTime>,
    /// Page size.
    pub limit: usize,
}

/// One page of events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Matching events in seq order.
    pub events: Vec<Event>,
    /// Pass as `from_seq` to get the next page; absent at the end.
    pub next_seq: Option<u64>,
    /// The highest seq in the log (0 when empty).
    pub last_seq: u64,
}

/// The result of walking the chain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// True when every event verified.
    pub ok: bool,
    /// How many events were checked.
    pub checked: u64,
    /// The last seq in the log.
    pub last_seq: u64,
    /// The first broken link, if any.
    pub first_break: Option<Break>,
    /// Events up to this seq were dropped by retention (verified through a signed checkpoint).
    pub checkpoint_seq: Option<u64>,
}

/// The audit log by seq.
pub(super) const AUDIT: Records<Event> = Records::new(Table::Audit);

/// The last event of the log.
pub(super) fn last_event(tx: &impl ReadTxn) -> Result<Option<Event>, StoreError> {
    Ok(AUDIT
        .range(tx, Bound::Unbounded, Bound::Unbounded, true, 1)?
        .pop()
        .map(|(_, e)| e))
}

fn parse_ts(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

impl Store {
    /// Events matching `f`, in seq order.
    pub fn query_audit(&self, f: &AuditFilter) -> Result<AuditPage, StoreError> {
        let txn = self.kv_read()?;
        let from = f.from_seq.unwrap_or(1);
        let to = f.to_seq.unwrap_or(u64::MAX);
        let last_seq = last_event(&txn)?.map_or(0, |e| e.seq);
        let mut events = Vec::new();
        let mut next_seq = None;
        if from <= to {
            let (lo, hi) = (Bound::Included(from.encode()), Bound::Included(to.encode()));
            AUDIT.scan(&txn, lo, hi, false, |_, e| {
                if events.len() >= f.limit {
                    next_seq = Some(e.seq);
                    return Ok(false);
                }
                let skip = f
                    .event
                    .as_deref()
                    .is_some_and(|p| !type_matches(p, &e.event))
                    || f.actor.as_deref().is_some_and(|a| a != e.actor.id)
                    || f.agent_id
                        .as_deref()
                        .is_some_and(|a| e.actor.agent_id.as_deref() != Some(a))
                    || f.path_prefix
                        .as_deref()
                        .is_some_and(|p| !e.resource_path.starts_with(p))
                    || f.namespace.as_deref().is_some_and(|n| n != e.namespace);
                if skip {
                    return Ok(true);
                }
                if f.since.is_some() || f.until.is_some() {
                    let Some(ts) = parse_ts(&e.timestamp) else {
                        return Ok(true);
                    };
                    if f.since.is_some_and(|s| ts < s) || f.until.is_some_and(|u| ts > u) {
                        return Ok(true);
                    }
                }
                events.push(e);
                Ok(true)
            })?;
        }
        Ok(AuditPage {
            events,
            next_seq,
            last_seq,
        })
    }

    /// Walks the whole chain and reports the first broken link.
    pub fn verify_audit(&self) -> Result<VerifyReport, StoreError> {
        let checkpoint = self.audit_checkpoint()?;
        let txn = self.kv_read()?;
        let (start, prev) = match &checkpoint {
            Some(cp) if !cp.valid(self.keyring().signing_key()) => {
                let first_break = Some(Break {
                    seq: cp.seq,
                    reason: "the retention checkpoint's signature does not verify".into(),
                });
                let last_seq = last_event(&txn)?.map_or(0, |e| e.seq);
                return Ok(VerifyReport {
                    ok: false,
                    checked: 0,
                    last_seq,
                    first_break,
                    checkpoint_seq: Some(cp.seq),
                });
            }
            Some(cp) => (cp.seq + 1, cp.hash.clone()),
            None => (1, GENESIS.to_string()),
        };
        let mut verifier = ChainVerifier::new(start, prev);
        let mut checked = 0;
        let mut last_seq = 0;
        let mut first_break = None;
        // Raw rows: an undecodable event is a break to report, not an error.
        let mut from = Bound::Included(start.encode());
        loop {
            let rows = txn.range(
                Table::Audit,
                from.as_ref().map(Vec::as_slice),
                Bound::Unbounded,
                false,
                1024,
            )?;
            let full = rows.len() == 1024;
            for (k, v) in rows {
                let seq = super::keys::Reader::new(&k).u64().unwrap_or(0);
                last_seq = seq;
                if first_break.is_none() {
                    let result = match super::decode::<Event>(&v) {
                        Ok(e) => verifier.check(seq, &e),
                        Err(e) => Err(Break {
                            seq,
                            reason: format!("undecodable event: {e}"),
                        }),
                    };
                    match result {
                        Ok(()) => checked += 1,
                        Err(b) => first_break = Some(b),
                    }
                }
                from = Bound::Excluded(k);
            }
            if !full {
                break;
            }
        }
        Ok(VerifyReport {
            ok: first_break.is_none(),
            checked,
            last_seq,
            first_break,
            checkpoint_seq: checkpoint.map(|c| c.seq),
        })
    }
}

/// Parses an RFC 3339 timestamp given in a query.
pub fn parse_query_time(s: &str) -> Option<time::OffsetDateTime> {
    parse_ts(s)
}
