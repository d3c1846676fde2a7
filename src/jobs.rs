//! Scheduled jobs (cron expressions with seconds, from the `cron` crate): expire secrets,
//! audit retention, rotation reminders, a digest for the approvers' chats, key re-wrap.
//! A job never runs twice at once; a run missed while the daemon was down runs once at start;
//! each run's start, end and result are kept in redb and shown by `GET /v1/jobs`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cron::Schedule;
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use crate::audit::{Actor, Draft};
use crate::config::{Config, JobConfig};
use crate::notice::Notice;
use crate::store::{Origin, Store};

/// The message of a run that found nothing to do (logged at debug, not info).
const IDLE: &str = "nothing to do";

/// Why a job could not run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// No such job.
    #[error("no job named {0:?}")]
    Unknown(String),
    /// It is running now.
    #[error("job {0} is already running")]
    Running(String),
    /// It ran and failed.
    #[error("job {name} failed: {message}")]
    Failed {
        /// The job.
        name: String,
        /// What went wrong.
        message: String,
    },
}

/// A job as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// Name.
    pub name: String,
    /// Cron expression.
    pub schedule: String,
    /// Scheduled at all?
    pub enabled: bool,
    /// Next scheduled run (RFC 3339).
    pub next_run: Option<String>,
    /// Running now?
    pub running: bool,
    /// Last run: start, end, result and message.
    #[schema(value_type = Object)]
    pub last_run: crate::store::JobRun,
}

/// The scheduler and the run-now entry point.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
    config: Arc<Config>,
    running: Arc<Mutex<HashSet<String>>>,
}

fn schedule(j: &JobConfig) -> Option<Schedule> {
    j.schedule.parse().ok()
}

fn utc(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or_default()
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Parses `90d`, `12h`, `30m`, `45s` or a number of seconds.
pub fn parse_interval(v: &serde_json::Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return (n > 0).then_some(n);
    }
    let s = v.as_str()?.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return None,
    };
    n.checked_mul(mult)
}

impl Jobs {
    /// Jobs over the store with the validated config.
    pub fn new(store: Store, config: Arc<Config>) -> Jobs {
        Jobs {
            store,
            config,
            running: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    fn job(&self, name: &str) -> Option<JobConfig> {
        self.config
            .jobs
            .all()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, j)| j.clone())
    }

    fn claim(&self, name: &str) -> bool {
        self.running
            .lock()
            .map(|mut r| r.insert(name.to_string()))
            .unwrap_or(false)
    }

    fn release(&self, name: &str) {
        if let Ok(mut r) = self.running.lock() {
            r.remove(name);
        }
    }

    /// Every job with its schedule and last run.
    pub async fn list(&self) -> Vec<JobView> {
        let running = self.running.lock().map(|r| r.clone()).unwrap_or_default();
        let mut out = Vec::new();
        for (name, j) in self.config.jobs.all() {
            let next_run = if j.enabled {
                schedule(j)
                    .and_then(|s| s.upcoming(Utc).next())
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            } else {
                None
            };
            let last_run = self
                .store
                .read_job_run(name)
                .ok()
                .flatten()
                .unwrap_or_default();
            out.push(JobView {
                name: name.to_string(),
                schedule: j.schedule.clone(),
                enabled: j.enabled,
                next_run,
                running: running.contains(name),
                last_run,
            });
        }
        out
    }

    /// Runs a job now (single-flight), recording its start, end and result.
    pub async fn run_now(&self, name: &str) -> Result<String, JobError> {
        self.run_slot(name, None).await
    }

    /// Runs a job for a scheduled `slot` (unix seconds), or now when `None`: single-flight in
    /// this daemon and, through the job's record, across every daemon of the store (the
    /// record says a run is going on, or this slot has been started already).
    pub async fn run_slot(&self, name: &str, slot: Option<i64>) -> Result<String, JobError> {
        let cfg = self
            .job(name)
            .ok_or_else(|| JobError::Unknown(name.to_string()))?;
        let metrics = self.store.metrics();
        if !self.claim(name) {
            metrics.job_run(name, "skipped");
            return Err(JobError::Running(name.to_string()));
        }
        let started = self.store.start_job_run(name.to_string(), slot).await;
        let Ok(Some(mut record)) = started else {
            self.release(name);
            metrics.job_run(name, "skipped");
            return Err(JobError::Running(name.to_string()));
        };
        let result = self.body(name, &cfg).await;
        record.last_finished = Some(now_unix());
        let (status, message) = match &result {
            Ok(m) => ("ok", m.clone()),
            Err(m) => ("error", m.clone()),
        };
        record.last_result = Some(status.into());
        metrics.job_run(name, status);
        record.last_message = Some(message.clone());
        let _ = self.store.save_job_run(name.to_string(), record).await;
        self.release(name);
        // A frequent job with nothing to do (expire_secrets runs every minute) is not news.
        if status == "ok" && message == IDLE {
            tracing::debug!(job = name, status, %message, "job ran");
        } else {
            tracing::info!(job = name, status, %message, "job ran");
        }
        result.map_err(|message| JobError::Failed {
            name: name.to_string(),
            message,
        })
    }

    async fn body(&self, name: &str, cfg: &JobConfig) -> Result<String, String> {
        let e = |e: crate::store::StoreError| e.to_string();
        match name {
            "expire_secrets" => match self.store.expire_secrets().await.map_err(e)? {
                0 => Ok(IDLE.to_string()),
                n => Ok(format!("expired {n} secret(s)")),
            },
            "audit_retention" => {
                let days = i64::from(cfg.retention_days.unwrap_or(365));
                let cutoff = now_unix() - days * 86400;
                let mut total = 0;
                loop {
                    let n = self.store.apply_audit_retention(cutoff).await.map_err(e)?;
                    total += n;
                    if n < 10_000 {
                        break;
                    }
                }
                Ok(format!(
                    "dropped {total} audit event(s) older than {days} day(s)"
                ))
            }
            "rotation_reminders" => self.rotation_reminders().await,
            "digest" => self.digest(cfg).await,
            "rewrap" => Ok(format!(
                "re-wrapped {} data key(s)",
                self.store.rewrap_all(Origin::system()).await.map_err(e)?
            )),
            other => Err(format!("no job named {other}")),
        }
    }

    async fn rotation_reminders(&self) -> Result<String, String> {
        let now = now_unix();
        let secrets = self
            .store
            .list_secrets("", None, false, usize::MAX, |r| {
                r.metadata.contains_key("rotate_every")
            })
            .map_err(|e| e.to_string())?;
        let mut due = 0;
        for s in secrets {
            let Some(every) = s.metadata.get("rotate_every").and_then(parse_interval) else {
                continue;
            };
            let versions = self
                .store
                .list_versions(&s.path)
                .map_err(|e| e.to_string())?;
            let Some(current) = versions.iter().find(|v| v.current) else {
                continue;
            };
            let written = crate::store::parse_query_time(&current.created_at)
                .map_or(now, |t| t.unix_timestamp());
            if now - written < every {
                continue;
            }
            due += 1;
            let days = (now - written) / 86400;
            self.store
                .append_event(Draft {
                    event: "secret.rotation_due",
                    actor: Actor::system(),
                    namespace: s.namespace.clone(),
                    resource_path: s.path.clone(),
                    action: "remind".into(),
                    outcome: "success",
                    ip: None,
                    details: json!({"rotate_every": s.metadata.get("rotate_every"), "current_version": current.version, "age_days": days}),
                })
                .await
                .map_err(|e| e.to_string())?;
            let text = format!(
                "🔁 Rotation due: {} (rotate every {}; current version {} is {days} day(s) old). Store a new value with `latchkey secret put {}`.",
                s.path,
                s.metadata
                    .get("rotate_every")
                    .map(|v| v.to_string().trim_matches('"').to_string())
                    .unwrap_or_default(),
                current.version,
                s.path
            );
            self.store.notices().publish(Notice::Announcement {
                path: Some(s.path.clone()),
                text,
            });
        }
        Ok(format!("{due} secret(s) due for rotation"))
    }

    async fn digest(&self, cfg: &JobConfig) -> Result<String, String> {
        let hours = i64::from(cfg.period_hours.unwrap_or(168));
        let since = time::OffsetDateTime::now_utc() - time::Duration::hours(hours);
        let mut filter = crate::store::AuditFilter {
            since: Some(since),
            limit: 1000,
            ..Default::default()
        };
        let (mut denials, mut reads) = (0u64, std::collections::BTreeMap::<String, u64>::new());
        for _ in 0..1000 {
            let page = self.store.query_audit(&filter).map_err(|e| e.to_string())?;
            for ev in &page.events {
                match ev.event.as_str() {
                    "approval.denied" | "lease.denied" | "access.denied" => denials += 1,
                    "secret.read" => *reads.entry(ev.resource_path.clone()).or_default() += 1,
                    _ => {}
                }
            }
            match page.next_seq {
                Some(n) => filter.from_seq = Some(n),
                None => break,
            }
        }
        let pending = self
            .store
            .list_approvals(true, None, 1000)
            .map_err(|e| e.to_string())?
            .len();
        let mut top: Vec<_> = reads.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top: Vec<String> = top
            .iter()
            .take(5)
            .map(|(p, n)| format!("  {p}: {n}"))
            .collect();
        let text = format!(
            "📋 Latchkey digest, last {hours} h: {pending} pending approval(s), {denials} denial(s).\nMost-read secrets:\n{}",
            if top.is_empty() {
                "  (none)".to_string()
            } else {
                top.join("\n")
            }
        );
        self.store
            .append_event(Draft {
                event: "digest.posted",
                actor: Actor::system(),
                namespace: String::new(),
                resource_path: "digest".into(),
                action: "digest".into(),
                outcome: "success",
                ip: None,
                details: json!({"period_hours": hours, "pending": pending, "denials": denials}),
            })
            .await
            .map_err(|e| e.to_string())?;
        self.store
            .notices()
            .publish(Notice::Announcement { path: None, text });
        Ok(format!(
            "digest posted: {pending} pending, {denials} denial(s)"
        ))
    }

    /// The scheduler: catches up missed runs once, then fires each job on its schedule.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let enabled: Vec<(&'static str, Schedule)> = self
            .config
            .jobs
            .all()
            .into_iter()
            .filter(|(_, j)| j.enabled)
            .filter_map(|(n, j)| schedule(j).map(|s| (n, s)))
            .collect();
        let now = now_unix();
        for (name, sched) in &enabled {
            let record = self
                .store
                .job_run(name.to_string())
                .await
                .unwrap_or_default();
            let since = record.last_started.unwrap_or(record.known_since);
            if let Some(missed) = sched
                .after(&utc(since))
                .next()
                .map(|t| t.timestamp())
                .filter(|t| *t <= now)
            {
                tracing::info!(
                    job = name,
                    "a run was missed while the daemon was down; running it now"
                );
                let jobs = self.clone();
                let name = name.to_string();
                tokio::spawn(async move {
                    let _ = jobs.run_slot(&name, Some(missed)).await;
                });
            }
        }
        loop {
            let now = Utc::now();
            let next = enabled
                .iter()
                .filter_map(|(n, s)| s.after(&now).next().map(|t| (t, *n)))
                .min();
            let Some((at, _)) = next else { return };
            let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            for (name, sched) in &enabled {
                // Every job due at this instant (several may share a time).
                if sched.includes(at) {
                    let jobs = self.clone();
                    let name = name.to_string();
                    let slot = at.timestamp();
                    tokio::spawn(async move {
                        if let Err(JobError::Running(n)) = jobs.run_slot(&name, Some(slot)).await {
                            tracing::debug!(job = %n, "skipped: running, or run by another daemon");
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn single_flight() {
        let running = Mutex::new(HashSet::new());
        let claim = |n: &str| running.lock().unwrap().insert(n.to_string());
        assert!(claim("digest"));
        assert!(
            !claim("digest"),
            "a second run of the same job is refused while the first runs"
        );
        assert!(claim("rewrap"), "other jobs are independent");
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval(&json!("90d")), Some(90 * 86400));
        assert_eq!(parse_interval(&json!("12h")), Some(12 * 3600));
        assert_eq!(parse_interval(&json!(30)), Some(30));
        assert_eq!(parse_interval(&json!("5x")), None);
        assert_eq!(parse_interval(&json!("-3d")), None);
        assert_eq!(parse_interval(&json!(0)), None);
    }

    #[test]
    fn default_schedules_parse() {
        for (name, j) in crate::config::JobsConfig::default().all() {
            assert!(schedule(j).is_some(), "{name}");
        }
        assert!("every second".parse::<Schedule>().is_err());
        assert!(
            "* * * * * *"
                .parse::<Schedule>()
                .unwrap()
                .upcoming(Utc)
                .next()
                .is_some()
        );
    }
}
