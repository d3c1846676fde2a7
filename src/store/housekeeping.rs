//! Housekeeping done by scheduled jobs: job run records, expiring secrets, and audit
//! retention with a signed checkpoint so the chain still verifies over what remains.

use std::ops::Bound;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use super::audit_log::AUDIT;
use super::kv::{Records, Table};
use super::secrets::SECRETS;
use super::{Origin, SecretRecord, Store, StoreError};
use crate::audit::{Draft, Event};

/// Scheduled job records by name.
const JOB_RUNS: Records<JobRun> = Records::new(Table::JobRuns);
/// Signed checkpoints (`audit` → the last event dropped by retention).
const CHECKPOINTS: Records<Checkpoint> = Records::new(Table::Checkpoints);

/// What the scheduler remembers of a job.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRun {
    /// When the daemon first knew the job (unix seconds): the start of "missed" detection.
    #[serde(with = "crate::util::unix_time")]
    #[schema(value_type = String, format = DateTime)]
    pub known_since: i64,
    /// When the last run started (unix seconds).
    #[serde(default, with = "crate::util::unix_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_started: Option<i64>,
    /// When it finished.
    #[serde(default, with = "crate::util::unix_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_finished: Option<i64>,
    /// `ok` or `error`.
    pub last_result: Option<String>,
    /// What it did, or what went wrong.
    pub last_message: Option<String>,
}

/// The signed stand-in for audit events dropped by retention.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    /// The last dropped seq.
    pub seq: u64,
    /// Its hash: the `prev_hash` of the first remaining event.
    pub hash: String,
    /// HMAC-SHA256 over `seq|hash` with the keyring's signing key (hex).
    pub signature: String,
}

fn sign(key: &[u8; 32], seq: u64, hash: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(format!("latchkey-audit-checkpoint|{seq}|{hash}").as_bytes());
    crate::util::hex(&mac.finalize().into_bytes())
}

impl Checkpoint {
    /// Does the signature hold?
    pub fn valid(&self, key: &[u8; 32]) -> bool {
        sign(key, self.seq, &self.hash) == self.signature
    }
}

impl Store {
    /// A job's record (creating it, with `known_since = now`, when new).
    pub async fn job_run(&self, name: String) -> Result<JobRun, StoreError> {
        if let Some(r) = self.read_job_run(&name)? {
            return Ok(r);
        }
        self.write(move |ctx| {
            let r = JobRun {
                known_since: ctx.now_unix(),
                ..Default::default()
            };
            JOB_RUNS.put(&mut ctx.kv(), name.as_str(), &r)?;
            Ok(r)
        })
        .await
    }

    /// Starts a run of a job, once across every daemon of the store: answers its record with
    /// `last_started` set to now, or `None` when a run is going on (started in the last hour
    /// and not finished) or the scheduled `slot` (unix seconds) has already been started,
    /// here or on another daemon.
    pub async fn start_job_run(
        &self,
        name: String,
        slot: Option<i64>,
    ) -> Result<Option<JobRun>, StoreError> {
        self.write(move |ctx| {
            let now = ctx.now_unix();
            let mut r = JOB_RUNS
                .get(&ctx.kv(), name.as_str())?
                .unwrap_or_else(|| JobRun {
                    known_since: now,
                    ..Default::default()
                });
            let started = r.last_started.unwrap_or(i64::MIN);
            let running = r.last_started.is_some()
                && r.last_finished.is_none_or(|f| f < started)
                && started > now - 3600;
            if running || slot.is_some_and(|s| started >= s) {
                return Ok(None);
            }
            r.last_started = Some(now);
            JOB_RUNS.put(&mut ctx.kv(), name.as_str(), &r)?;
            Ok(Some(r))
        })
        .await
    }

    /// A job's record, if any.
    pub fn read_job_run(&self, name: &str) -> Result<Option<JobRun>, StoreError> {
        JOB_RUNS.get(&self.kv_read()?, name)
    }

    /// Saves a job's record.
    pub async fn save_job_run(&self, name: String, run: JobRun) -> Result<(), StoreError> {
        self.write(move |ctx| {
            JOB_RUNS.put(&mut ctx.kv(), name.as_str(), &run)?;
            Ok(())
        })
        .await
    }

    /// Marks secrets past `expires_at` expired (audited `secret.expired`) and revokes their
    /// open leases. Returns how many.
    pub async fn expire_secrets(&self) -> Result<u64, StoreError> {
        self.write(move |ctx| {
            let now = ctx.now_unix();
            let due: Vec<SecretRecord> = {
                let mut v = Vec::new();
                for r in SECRETS.all(&ctx.kv())? {
                    let past = r
                        .expires_at
                        .as_deref()
                        .and_then(super::parse_query_time)
                        .is_some_and(|t| t.unix_timestamp() <= now);
                    if past && r.expired_at.is_none() && r.deleted_at.is_none() {
                        v.push(r);
                    }
                }
                v
            };
            let origin = Origin::system();
            for mut r in due.clone() {
                r.expired_at = Some(crate::util::rfc3339(ctx.now()));
                SECRETS.put(&mut ctx.kv(), r.path.as_str(), &r)?;
                let path = r.path.clone();
                let leases =
                    super::lease_end::revoke_open_leases(ctx, &origin, "secret expired", |l| {
                        l.path == path
                    })?;
                ctx.audit(Draft {
                    event: "secret.expired",
                    actor: origin.actor.clone(),
                    namespace: r.namespace.clone(),
                    resource_path: r.path.clone(),
                    action: "expire".into(),
                    outcome: "success",
                    ip: None,
                    details: json!({"expires_at": r.expires_at, "leases_revoked": leases}),
                })?;
            }
            Ok(due.len() as u64)
        })
        .await
    }

    /// Drops audit events older than `cutoff` (unix seconds), at most 10,000 per call, and
    /// moves the signed checkpoint to the last one dropped. Returns how many were dropped.
    pub async fn apply_audit_retention(&self, cutoff: i64) -> Result<u64, StoreError> {
        let key = *self.keyring().signing_key();
        self.write(move |ctx| {
            let mut last: Option<Event> = None;
            let mut doomed = Vec::new();
            let oldest =
                AUDIT.range(&ctx.kv(), Bound::Unbounded, Bound::Unbounded, false, 10_000)?;
            for (_, e) in oldest {
                let old = super::parse_query_time(&e.timestamp)
                    .is_some_and(|t| t.unix_timestamp() < cutoff);
                if !old {
                    break;
                }
                doomed.push(e.seq);
                last = Some(e);
            }
            let Some(last) = last else { return Ok(0) };
            let mut tx = ctx.kv();
            for seq in &doomed {
                AUDIT.delete(&mut tx, seq)?;
            }
            let cp = Checkpoint {
                seq: last.seq,
                hash: last.hash.clone(),
                signature: sign(&key, last.seq, &last.hash),
            };
            CHECKPOINTS.put(&mut ctx.kv(), "audit", &cp)?;
            ctx.audit(Draft {
                event: "audit.retention_applied",
                actor: Origin::system().actor,
                namespace: String::new(),
                resource_path: "audit".into(),
                action: "retention".into(),
                outcome: "success",
                ip: None,
                details: json!({"dropped": doomed.len(), "through_seq": last.seq}),
            })?;
            Ok(doomed.len() as u64)
        })
        .await
    }

    /// The audit checkpoint, if retention has dropped events.
    pub fn audit_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        CHECKPOINTS.get(&self.kv_read()?, "audit")
    }
}
