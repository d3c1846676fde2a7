//! Prometheus metrics: one registry per daemon (made with its store, so the several daemons a
//! test runs in one process never share counters), typed families whose labels are bounded
//! (route templates, fixed outcome names, operator-made subscription ids; never a path, an
//! agent name or any other value agent traffic can multiply), and the text `GET /metrics`
//! answers. The README's "Metrics" section lists every metric.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::lease::{ApprovalState, LeaseState};
use crate::notice::{ApprovalChange, Notice};

/// The `Content-Type` of the answer (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Seconds, from 1 ms to a minute (HTTP requests; long-polls land in the top buckets).
const HTTP_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];
/// Seconds, from 0.1 ms to 5 s (one group commit).
const COMMIT_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 5.0,
];
/// Jobs per group commit (`store.max_batch` is at most 4096).
const BATCH_BUCKETS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];
/// Seconds from an approval's request to its decision: a human, or a deadline.
const DECISION_BUCKETS: [f64; 13] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChatLabels {
    platform: &'static str,
    call: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubscriptionLabels {
    subscription: String,
}

/// A chat platform API call, by what it was for.
#[derive(Debug, Clone, Copy)]
pub enum ChatCall {
    /// Posting an approval card.
    Post,
    /// Editing a card (a vote, the outcome, a stale copy).
    Edit,
    /// Answering a Telegram button tap.
    Answer,
    /// A Telegram `getUpdates` long-poll.
    Poll,
    /// Registering or removing the Telegram webhook.
    Webhook,
    /// Checking the credentials at start (`getMe`, `users/@me`).
    Check,
    /// A plain notice (reminders, digests, failing webhooks).
    Notice,
    /// A reply to a chat command (`/whoami`, `/pending`).
    Reply,
}

impl ChatCall {
    fn as_str(self) -> &'static str {
        match self {
            ChatCall::Post => "post",
            ChatCall::Edit => "edit",
            ChatCall::Answer => "answer",
            ChatCall::Poll => "poll",
            ChatCall::Webhook => "webhook",
            ChatCall::Check => "check",
            ChatCall::Notice => "notice",
            ChatCall::Reply => "reply",
        }
    }
}

/// What a scrape reads from the store (the whole cluster's state on PostgreSQL).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Leases waiting for an approval.
    pub pending_leases: u64,
    /// Leases granted and usable.
    pub active_leases: u64,
    /// Approvals collecting votes.
    pub pending_approvals: u64,
    /// Each webhook subscription (id) with how many audit events it is behind the log.
    pub webhook_lag: Vec<(String, u64)>,
}

/// The daemon's metrics: a cheap handle (one `Arc`) to its registry and families.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    batch_size: Histogram,
    commit_duration: Histogram,
    commits: Family<OutcomeLabels, Counter>,
    retries: Counter,
    lease_transitions: Family<StateLabels, Counter>,
    approvals_opened: Counter,
    decision_latency: HistogramFamily<DecisionLabels>,
    webhook_deliveries: Family<OutcomeLabels, Counter>,
    chat_calls: Family<ChatLabels, Counter>,
    job_runs: Family<JobLabels, Counter>,
}

fn histogram_family<L>(buckets: fn() -> Histogram) -> HistogramFamily<L>
where
    L: Clone + std::hash::Hash + Eq,
{
    Family::new_with_constructor(buckets)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered (and at zero).
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("latchkey");
        let build: Family<VersionLabels, Gauge> = Family::default();
        build
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register("build_info", "The daemon's version (always 1)", build);
        let started: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        started.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        r.register(
            "start_time_seconds",
            "When this daemon started (unix seconds)",
            started,
        );
        let inner = Inner {
            http_requests: Family::default(),
            http_duration: histogram_family(|| Histogram::new(HTTP_BUCKETS)),
            batch_size: Histogram::new(BATCH_BUCKETS),
            commit_duration: Histogram::new(COMMIT_BUCKETS),
            commits: Family::default(),
            retries: Counter::default(),
            lease_transitions: Family::default(),
            approvals_opened: Counter::default(),
            decision_latency: histogram_family(|| Histogram::new(DECISION_BUCKETS)),
            webhook_deliveries: Family::default(),
            chat_calls: Family::default(),
            job_runs: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            inner.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            inner.http_duration.clone(),
        );
        r.register(
            "store_batch_size",
            "Write jobs per group commit of this daemon's writer",
            inner.batch_size.clone(),
        );
        r.register(
            "store_commit_duration_seconds",
            "Time from a batch's start to its commit (or failure), retries included",
            inner.commit_duration.clone(),
        );
        r.register(
            "store_batches",
            "Write batches by outcome: committed, failed, or conflicted (retries ran out)",
            inner.commits.clone(),
        );
        r.register(
            "store_batch_retries",
            "Batches run again because the database asked (conflicts between daemons)",
            inner.retries.clone(),
        );
        r.register(
            "lease_transitions",
            "Lease state changes this daemon committed, by the state entered",
            inner.lease_transitions.clone(),
        );
        r.register(
            "approvals_opened",
            "Approvals this daemon opened (one per lease that waits for approvers)",
            inner.approvals_opened.clone(),
        );
        r.register(
            "approval_decision_seconds",
            "Time from an approval's request to its decision, by decision",
            inner.decision_latency.clone(),
        );
        r.register(
            "webhook_deliveries",
            "Webhook delivery attempts this daemon made, by outcome",
            inner.webhook_deliveries.clone(),
        );
        r.register(
            "chat_api_calls",
            "Calls to the Telegram and Discord APIs, by platform, call and outcome",
            inner.chat_calls.clone(),
        );
        r.register(
            "job_runs",
            "Scheduled job runs on this daemon, by job and result",
            inner.job_runs.clone(),
        );
        // The known outcomes start at zero, so that rates and alerts work before the first.
        for outcome in ["committed", "failed", "conflicted"] {
            drop(inner.commits.get_or_create(&OutcomeLabels { outcome }));
        }
        for outcome in ["delivered", "gone", "http_error", "no_response"] {
            drop(
                inner
                    .webhook_deliveries
                    .get_or_create(&OutcomeLabels { outcome }),
            );
        }
        for state in ["active", "exhausted", "expired", "revoked", "denied"] {
            drop(
                inner
                    .lease_transitions
                    .get_or_create(&StateLabels { state }),
            );
        }
        Metrics(Arc::new(Inner {
            registry: r,
            ..inner
        }))
    }

    /// Counts an answered HTTP request. `route` is the matched route template (or
    /// `unmatched`), never the request's path.
    pub fn http_request(
        &self,
        method: &axum::http::Method,
        route: &str,
        status: u16,
        took: Duration,
    ) {
        let method = method_label(method);
        self.0
            .http_requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_string(),
                status,
            })
            .inc();
        self.0
            .http_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records a committed write batch: its size, how long it took, and what its notices say
    /// (lease transitions, approvals opened and decided).
    pub fn batch_committed(&self, size: usize, took: Duration, notices: &[Notice]) {
        self.batch_done(size, took, "committed");
        for n in notices {
            match n {
                Notice::Lease { state, .. } => {
                    self.0
                        .lease_transitions
                        .get_or_create(&StateLabels {
                            state: lease_state(*state),
                        })
                        .inc();
                }
                Notice::Approval { change, approval } => match change {
                    ApprovalChange::Opened => {
                        self.0.approvals_opened.inc();
                    }
                    ApprovalChange::Closed => {
                        let t = &approval.tally;
                        let waited = t
                            .decided_at
                            .map_or(0, |at| at.saturating_sub(approval.requested_at).max(0));
                        self.0
                            .decision_latency
                            .get_or_create(&DecisionLabels {
                                decision: approval_state(t.state),
                            })
                            .observe(waited as f64);
                    }
                    ApprovalChange::Voted => {}
                },
                Notice::Announcement { .. } => {}
            }
        }
    }

    /// Records a write batch that did not commit (`failed`, or `conflicted` when the
    /// database kept asking for a retry).
    pub fn batch_failed(&self, size: usize, took: Duration, conflicted: bool) {
        self.batch_done(size, took, if conflicted { "conflicted" } else { "failed" });
    }

    fn batch_done(&self, size: usize, took: Duration, outcome: &'static str) {
        self.0.batch_size.observe(size as f64);
        self.0.commit_duration.observe(took.as_secs_f64());
        self.0
            .commits
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a batch run again at the database's request.
    pub fn batch_retried(&self) {
        self.0.retries.inc();
    }

    /// Counts a webhook delivery attempt by its outcome: `delivered` (2xx), `gone` (410),
    /// `http_error` (another status) or `no_response`.
    pub fn webhook_delivery(&self, status: Option<u16>) {
        let outcome = match status {
            Some(s) if (200..300).contains(&s) => "delivered",
            Some(410) => "gone",
            Some(_) => "http_error",
            None => "no_response",
        };
        self.0
            .webhook_deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a chat API call; `platform` is the channel's name (`telegram`, `discord`).
    pub fn chat_call<T>(
        &self,
        platform: &str,
        call: ChatCall,
        result: &Result<T, bots::ChannelError>,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(bots::ChannelError::RateLimited { .. }) => "rate_limited",
            Err(bots::ChannelError::Unavailable(_)) => "unavailable",
            Err(bots::ChannelError::Misconfigured(_)) => "misconfigured",
            Err(bots::ChannelError::Rejected(_)) => "rejected",
        };
        self.chat(platform, call, outcome);
    }

    /// Counts a chat API call that got no answer in time (outcome `timeout`).
    pub fn chat_call_timed_out(&self, platform: &str, call: ChatCall) {
        self.chat(platform, call, "timeout");
    }

    fn chat(&self, platform: &str, call: ChatCall, outcome: &'static str) {
        let platform = match platform {
            "telegram" => "telegram",
            "discord" => "discord",
            _ => "other",
        };
        self.0
            .chat_calls
            .get_or_create(&ChatLabels {
                platform,
                call: call.as_str(),
                outcome,
            })
            .inc();
    }

    /// Counts a job run: `ok`, `error`, or `skipped` (already running here or on another
    /// daemon, or the slot was taken). `job` is a configured job's name (a fixed set).
    pub fn job_run(&self, job: &str, result: &'static str) {
        self.0
            .job_runs
            .get_or_create(&JobLabels {
                job: job.to_string(),
                result,
            })
            .inc();
    }

    /// The Prometheus text: every family of this daemon, then the gauges of `snapshot`
    /// (`None` when the store could not be read: `latchkey_store_readable` is then 0).
    pub fn render(&self, snapshot: Option<&Snapshot>) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.0.registry);
        let mut r = Registry::with_prefix("latchkey");
        let readable: Gauge = Gauge::default();
        readable.set(i64::from(snapshot.is_some()));
        r.register(
            "store_readable",
            "Whether this scrape could read the store (1) or not (0)",
            readable,
        );
        if let Some(s) = snapshot {
            let leases: Family<StateLabels, Gauge> = Family::default();
            for (state, n) in [("pending", s.pending_leases), ("active", s.active_leases)] {
                leases.get_or_create(&StateLabels { state }).set(gauge(n));
            }
            r.register(
                "leases",
                "Open leases in the store, by state (the whole cluster on PostgreSQL)",
                leases,
            );
            let pending: Gauge = Gauge::default();
            pending.set(gauge(s.pending_approvals));
            r.register(
                "approvals_pending",
                "Approvals collecting votes in the store (the whole cluster on PostgreSQL)",
                pending,
            );
            let lag: Family<SubscriptionLabels, Gauge> = Family::default();
            for (id, n) in &s.webhook_lag {
                lag.get_or_create(&SubscriptionLabels {
                    subscription: id.clone(),
                })
                .set(gauge(*n));
            }
            r.register(
                "webhook_lag_events",
                "Audit events a webhook subscription is behind the log, by subscription id",
                lag,
            );
        }
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &r);
        out
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A request method as a label: the standard ones by name, any other as `other`.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn lease_state(s: LeaseState) -> &'static str {
    match s {
        LeaseState::Pending => "pending",
        LeaseState::Active => "active",
        LeaseState::Exhausted => "exhausted",
        LeaseState::Expired => "expired",
        LeaseState::Revoked => "revoked",
        LeaseState::Denied => "denied",
    }
}

fn approval_state(s: ApprovalState) -> &'static str {
    match s {
        ApprovalState::Pending => "pending",
        ApprovalState::Approved => "approved",
        ApprovalState::Denied => "denied",
        ApprovalState::Expired => "expired",
        ApprovalState::AutoGranted => "auto_granted",
        ApprovalState::Cancelled => "cancelled",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_parseable_text_with_bounded_labels() {
        let m = Metrics::new();
        m.http_request(
            &axum::http::Method::GET,
            "/v1/leases/{id}",
            200,
            Duration::from_millis(3),
        );
        m.http_request(
            &axum::http::Method::from_bytes(b"BREW").unwrap(),
            "unmatched",
            404,
            Duration::from_millis(1),
        );
        m.webhook_delivery(Some(204));
        m.webhook_delivery(None);
        m.chat_call::<()>("telegram", ChatCall::Post, &Ok(()));
        m.job_run("digest", "ok");
        let snap = Snapshot {
            pending_leases: 2,
            active_leases: 1,
            pending_approvals: 2,
            webhook_lag: vec![("01J".into(), 7)],
        };
        let text = m.render(Some(&snap));
        for line in [
            "latchkey_http_requests_total{method=\"GET\",route=\"/v1/leases/{id}\",status=\"200\"} 1",
            "latchkey_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1",
            "latchkey_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/leases/{id}\"} 1",
            "latchkey_webhook_deliveries_total{outcome=\"no_response\"} 1",
            "latchkey_chat_api_calls_total{platform=\"telegram\",call=\"post\",outcome=\"ok\"} 1",
            "latchkey_job_runs_total{job=\"digest\",result=\"ok\"} 1",
            "latchkey_leases{state=\"pending\"} 2",
            "latchkey_approvals_pending 2",
            "latchkey_webhook_lag_events{subscription=\"01J\"} 7",
            "latchkey_store_readable 1",
            "latchkey_store_batches_total{outcome=\"conflicted\"} 0",
            "latchkey_lease_transitions_total{state=\"denied\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(text.contains("latchkey_build_info{version=\""), "{text}");
        // Without a snapshot the store gauges are absent and say so.
        let text = m.render(None);
        assert!(text.contains("latchkey_store_readable 0"), "{text}");
        assert!(!text.contains("latchkey_leases{"), "{text}");
    }
}
