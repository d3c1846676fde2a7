//! Scheduled jobs: effects on a one-second schedule, run-now, the missed-run rule, retention
//! keeping the chain verifiable, and bad cron expressions refused at start.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Daemon, code, config};

/// One job as `GET /v1/jobs` shows it.
async fn show_job(d: &Daemon, name: &str) -> Value {
    let (_, jobs) = d.get("/v1/jobs").await;
    jobs.as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap()
        .clone()
}

/// The job once its last run has recorded a result (polled every 50 ms, at most 5 s).
async fn job_with_result(d: &Daemon, name: &str) -> Value {
    let start = Instant::now();
    loop {
        let job = show_job(d, name).await;
        if !job["last_run"]["last_result"].is_null() || start.elapsed() > Duration::from_secs(5) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn expire_secrets_every_second_revokes_leases() {
    let d = Daemon::start_with(|c| c.jobs.expire_secrets.schedule = "* * * * * *".into()).await;
    let admin = d.admin.clone();
    let (_, key) = d.agent("expirer", 3).await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    d.put(
        &key,
        "short-lived",
        json!({"value": "v", "expires_at": soon}),
    )
    .await;
    let (_, l) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(&key),
            Some(json!({"path": "short-lived", "uses": 3})),
        )
        .await;
    assert_eq!(l["state"], "active");
    let ev = d
        .wait_events("secret.expired", 1, Duration::from_secs(5))
        .await;
    assert_eq!(ev.len(), 1, "expired once, audited");
    let (_, l) = d
        .call(
            Method::GET,
            &format!("/v1/leases/{}", l["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(l["state"], "revoked");
    // The run's result is recorded just after its effects: wait (bounded) for it.
    let job = job_with_result(&d, "expire_secrets").await;
    assert_eq!(job["schedule"], "* * * * * *");
    assert!(job["next_run"].is_string());
    assert_eq!(job["last_run"]["last_result"], "ok", "{job}");
    let _ = admin;
    d.stop().await;
}

#[tokio::test]
async fn run_now_rotation_reminders_digest_and_errors() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    d.put(
        &admin,
        "rotate/me",
        json!({"value": "v", "metadata": {"rotate_every": 1}}),
    )
    .await;
    d.put(
        &admin,
        "rotate/fresh",
        json!({"value": "v", "metadata": {"rotate_every": "90d"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/jobs/rotation_reminders/run",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["message"], "1 secret(s) due for rotation");
    let due = d.events("secret.rotation_due").await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0]["resource_path"], "rotate/me");
    let (s, b) = d
        .call(Method::POST, "/v1/jobs/digest/run", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(d.events("digest.posted").await.len(), 1);
    let (s, b) = d
        .call(Method::POST, "/v1/jobs/rewrap/run", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = d
        .call(Method::POST, "/v1/jobs/nope/run", Some(&admin), None)
        .await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    let (_, key) = d.agent("nosy", 1).await;
    let (s, _) = d.call(Method::GET, "/v1/jobs", Some(&key), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    d.stop().await;
}

#[tokio::test]
async fn a_run_missed_while_down_runs_once_at_start() {
    let tweak = |c: &mut latchkey::config::Config| c.jobs.rewrap.schedule = "0 0 0 * * *".into();
    let d = Daemon::start_with(tweak).await;
    let (dir, admin) = d.stop().await;
    // Pretend the daemon has been down for two days: the midnight run was missed.
    crate::common::raw_write(dir.path(), |t| {
        use latchkey::store::keys::Key;
        use latchkey::store::kv::{Table, WriteTxn};
        let two_days_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 2 * 86400;
        let rec = json!({"known_since": two_days_ago, "last_started": null, "last_finished": null, "last_result": null, "last_message": null});
        t.put(
            Table::JobRuns,
            &"rewrap".encode(),
            &serde_json::to_vec(&rec).unwrap(),
        )
        .unwrap();
    });
    let started = time::OffsetDateTime::now_utc().unix_timestamp();
    let d = Daemon::start_in_with(dir, admin, tweak).await;
    let job = job_with_result(&d, "rewrap").await;
    assert_eq!(job["last_run"]["last_result"], "ok", "{job}");
    assert!(crate::common::unix(&job["last_run"]["last_started"]) >= started);
    // Not again: only once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = show_job(&d, "rewrap").await;
    assert_eq!(
        again["last_run"]["last_started"],
        job["last_run"]["last_started"]
    );
    d.stop().await;
}

#[tokio::test]
async fn retention_keeps_the_chain_verifiable() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    for i in 0..5 {
        d.put(&admin, &format!("ret/k{i}"), json!({"value": "v"}))
            .await;
    }
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/jobs/audit_retention/run",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (
            StatusCode::OK,
            Some("dropped 0 audit event(s) older than 365 day(s)")
        )
    );
    let (dir, admin) = d.stop().await;
    // Drop everything older than "now + 10 s" through the same store operation the job uses.
    {
        let (store, writer, _) = latchkey::open_store(&config(dir.path())).unwrap();
        let dropped = store
            .apply_audit_retention(time::OffsetDateTime::now_utc().unix_timestamp() + 10)
            .await
            .unwrap();
        assert!(dropped >= 6);
        drop(store);
        writer.join();
    }
    let d = Daemon::start_in(dir, admin).await;
    let admin = d.admin.clone();
    d.put(&admin, "ret/after", json!({"value": "v"})).await;
    let (_, v) = d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["checkpoint_seq"].as_u64().unwrap() >= 6);
    assert!(v["checked"].as_u64().unwrap() >= 2, "{v}");
    let (_, page) = d.get("/v1/audit?limit=1000").await;
    assert!(
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"] != "secret.created" || e["resource_path"] == "ret/after")
    );
    d.stop().await;
}

#[test]
fn a_bad_cron_expression_is_refused_at_start_with_the_job_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[jobs.digest]\nschedule = \"every tuesday\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("jobs.digest.schedule") && err.contains("every tuesday"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rotation_reminder_reaches_the_telegram_chat() {
    use bots::fake::telegram::{FakeTelegram, TOKEN};
    let tg = FakeTelegram::start().await;
    let url = tg.url.clone();
    let d = Daemon::start_with(move |c| {
        c.channels.telegram.enabled = true;
        c.channels.telegram.token = latchkey::config::Credential(TOKEN.into());
        c.channels.telegram.api_url = url.clone();
        c.channels.telegram.routes = vec![latchkey::config::TelegramRoute {
            pattern: "keys/**".into(),
            chat_id: -1001,
        }];
        c.jobs.rotation_reminders.schedule = "* * * * * *".into();
    })
    .await;
    let admin = d.admin.clone();
    d.put(
        &admin,
        "keys/stale",
        json!({"value": "v", "metadata": {"rotate_every": 1}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = Vec::new();
    while Instant::now() < deadline {
        sent = tg.bodies("sendMessage");
        if sent.iter().any(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.contains("Rotation due: keys/stale"))
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reminder = sent
        .iter()
        .find(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.contains("Rotation due: keys/stale"))
        })
        .unwrap_or_else(|| panic!("no reminder in {sent:?}"));
    assert_eq!(reminder["chat_id"], -1001);
    assert!(!d.events("secret.rotation_due").await.is_empty());
    d.stop().await;
}
