//! Scheduled job settings: one cron schedule (and options) per housekeeping job.

use serde::{Deserialize, Serialize};

/// One scheduled job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Cron expression with seconds: `sec min hour day-of-month month day-of-week [year]`.
    pub schedule: String,
    /// Run it at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// audit_retention: drop events older than this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// digest: the period summarised, in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_hours: Option<u32>,
}

fn yes() -> bool {
    true
}

fn job(schedule: &str, enabled: bool) -> JobConfig {
    JobConfig {
        schedule: schedule.into(),
        enabled,
        retention_days: None,
        period_hours: None,
    }
}

/// The daemon's housekeeping jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Mark secrets past `expires_at` expired (audited) and revoke their leases.
    pub expire_secrets: JobConfig,
    /// Drop audit events older than `retention_days`, keeping a signed checkpoint.
    pub audit_retention: JobConfig,
    /// Remind approvers of secrets whose metadata `rotate_every` has passed.
    pub rotation_reminders: JobConfig,
    /// Post a digest (pending approvals, denials, most-read secrets) to the chats.
    pub digest: JobConfig,
    /// Re-wrap every data key under the newest key-encryption key.
    pub rewrap: JobConfig,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            expire_secrets: job("0 * * * * *", true),
            audit_retention: JobConfig {
                retention_days: Some(365),
                ..job("0 0 3 * * *", true)
            },
            rotation_reminders: job("0 0 9 * * *", true),
            digest: JobConfig {
                period_hours: Some(168),
                ..job("0 0 8 * * Mon", true)
            },
            rewrap: job("0 0 4 * * Sun", true),
        }
    }
}

impl JobsConfig {
    /// Every job by name.
    pub fn all(&self) -> [(&'static str, &JobConfig); 5] {
        [
            ("expire_secrets", &self.expire_secrets),
            ("audit_retention", &self.audit_retention),
            ("rotation_reminders", &self.rotation_reminders),
            ("digest", &self.digest),
            ("rewrap", &self.rewrap),
        ]
    }
}
