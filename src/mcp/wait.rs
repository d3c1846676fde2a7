//! The approval wait. MCP clients cut a tool call off at about 60 s (the TypeScript SDK's
//! default, which Claude Desktop cannot change), so a tool never waits longer than
//! [`MAX_WAIT_SECONDS`]: it long-polls the lease until an approver decides or the bound runs
//! out, then answers an ordinary tool result — the value, the denial with the approver's
//! reason, or `pending` with the lease id and the instruction to call `wait_for_lease`.

use std::time::Duration;

use latchkey_client::{Client, Error, Lease, LeaseState, SecretValue};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::time::Instant;

/// How long a tool waits for an approver when not told.
pub const DEFAULT_WAIT_SECONDS: u64 = 40;
/// The longest a tool waits (under the ~60 s cut-off of MCP clients, with room to answer).
pub const MAX_WAIT_SECONDS: u64 = 45;
/// What a pending answer suggests before the next `wait_for_lease` (it long-polls anyway).
pub const POLL_AFTER_MS: u64 = 1000;
/// Pause after a failed poll (daemon restarting, timeout), bounded by the wait.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The deadline of a wait of `wait_seconds` (default 40, at most 45; 0 looks once).
pub fn bound(wait_seconds: Option<u64>) -> Instant {
    let secs = wait_seconds
        .unwrap_or(DEFAULT_WAIT_SECONDS)
        .min(MAX_WAIT_SECONDS);
    Instant::now() + Duration::from_secs(secs)
}

/// Long-polls `lease` until it leaves `pending` or `until` passes; answers the lease as last
/// seen. A poll the daemon times out (408) or that cannot reach it is retried within the
/// bound; any other refusal is returned.
pub async fn until_decided(
    client: &Client,
    mut lease: Lease,
    until: Instant,
) -> Result<Lease, Error> {
    while lease.state == LeaseState::Pending {
        let left = until.saturating_duration_since(Instant::now()).as_secs();
        if left == 0 {
            break;
        }
        match client
            .lease(&lease.id, Some((left, LeaseState::Pending)))
            .await
        {
            Ok(l) => lease = l,
            Err(e) if e.status() == Some(408) || e.is_unreachable() => {
                tokio::time::sleep_until((Instant::now() + RETRY_PAUSE).min(until)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(lease)
}

/// What a decided (or still pending) lease answers: a read lease's value once active (one use
/// spent), a proxy lease's readiness, or why it is not active.
pub async fn outcome(client: &Client, lease: Lease) -> Result<Value, Error> {
    if lease.state != LeaseState::Active {
        return Ok(not_active(&lease));
    }
    if lease.action == "read" {
        return Ok(revealed(&client.use_lease(&lease.id).await?));
    }
    Ok(json!({
        "state": "active",
        "lease_id": lease.id,
        "action": lease.action,
        "uses_left": lease.uses_left,
        "expires_at": lease.expires_at,
        "message": "Approved. Call call_service with this lease_id to make the call.",
    }))
}

/// A value read, for the model.
pub fn revealed(v: &SecretValue) -> Value {
    let mut out = json!({
        "state": "active",
        "path": v.lease.path,
        "lease_id": v.lease.id,
    });
    if let Some(value) = &v.value {
        out["value"] = Value::from(value.expose_secret());
    }
    if let Some(entries) = &v.entries {
        out["entries"] = Value::Object(super::tools::entries(entries));
    }
    out
}

/// A lease that is not (or no longer) usable: pending with how to go on, or ended with why.
pub fn not_active(lease: &Lease) -> Value {
    let approval = lease.approval.as_ref();
    match lease.state {
        LeaseState::Pending => json!({
            "state": "pending",
            "lease_id": lease.id,
            "approval_id": lease.approval_id,
            "path": lease.path,
            "waiting_for": "an approver (in Telegram, Discord, the CLI or the API)",
            "votes": approval.map(|a| a.votes),
            "votes_needed": approval.map(|a| a.votes_needed),
            "deadline": approval.and_then(|a| a.deadline.clone()).or(lease.expires_at.clone()),
            "poll_after_ms": POLL_AFTER_MS,
            "message": format!(
                "A human approver has not decided yet. Call wait_for_lease with lease_id \"{}\" to keep waiting (you may tell the user an approval is pending first).",
                lease.id
            ),
        }),
        LeaseState::Denied => json!({
            "state": "denied",
            "lease_id": lease.id,
            "approval_id": lease.approval_id,
            "path": lease.path,
            "reason": approval.and_then(|a| a.reason.clone()),
            "decided_by": approval.and_then(|a| a.decided_by.clone()),
            "message": "An approver denied this request. Do not ask again for the same thing without a new reason; tell the user why it was denied.",
        }),
        other => json!({
            "state": other.as_str(),
            "lease_id": lease.id,
            "path": lease.path,
            "message": match other {
                LeaseState::Expired => "The lease expired (or its approval's deadline passed) before it was used; request it again if still needed.",
                LeaseState::Revoked => "The lease was revoked.",
                LeaseState::Exhausted => "Every use of the lease is spent; request a new one.",
                _ => "The lease is not usable.",
            },
        }),
    }
}
