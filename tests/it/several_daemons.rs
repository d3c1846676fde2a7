//! Several daemons active-active on one PostgreSQL database (run by the `it_postgres` target;
//! `it`, on redb, has one daemon per file and skips these): a lease asked on one daemon and
//! approved through another wakes the first one's long-poll; a single-use lease read by 40
//! clients spread over two daemons yields its value once; writes through both daemons at once
//! keep one gap-free, verifiable audit chain.

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Daemon, on_postgres};
use crate::lease_world::{setup, world};

#[tokio::test]
async fn an_approval_through_one_daemon_wakes_a_long_poll_on_the_other() {
    if !on_postgres() {
        return;
    }
    let w = world().await;
    let b = w.d.another(setup).await;
    w.secret("/shared/vip", "sensitive", "vip-value").await;
    let (_, key) = w.d.agent("two-daemons", 2).await;
    let (s, l) = w
        .lease(
            &key,
            json!({"path": "/shared/vip", "reason": "cross-daemon"}),
        )
        .await;
    assert_eq!(
        (s, &l["state"]),
        (StatusCode::CREATED, &json!("pending")),
        "{l}"
    );
    let (id, approval) = (
        l["id"].as_str().unwrap().to_string(),
        l["approval"]["id"].as_str().unwrap().to_string(),
    );
    // The agent waits on daemon A; alice approves through daemon B.
    let waiting = {
        let (base, key, id) = (w.d.base.clone(), key.clone(), id.clone());
        tokio::spawn(async move {
            let out = reqwest::Client::new()
                .get(format!("{base}/v1/leases/{id}?wait=20&seen=pending"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            (
                out.json::<serde_json::Value>().await.unwrap(),
                Instant::now(),
            )
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, v) = b
        .call(
            Method::POST,
            &format!("/v1/approvals/{approval}/votes"),
            Some(&w.alice),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let voted = Instant::now();
    let (lease, woke) = waiting.await.unwrap();
    assert_eq!(lease["state"], "active", "{lease}");
    // Figures are for the benchmark harness; this only shows the order of magnitude.
    eprintln!(
        "cross-daemon wake-up after the vote: {:?}",
        woke.saturating_duration_since(voted)
    );
    let (s, v) = w.use_lease(&key, &id).await;
    assert_eq!((s, &v["value"]), (StatusCode::OK, &json!("vip-value")));
    b.stop().await;
    w.d.stop().await;
}

#[tokio::test]
async fn a_single_use_lease_read_by_40_clients_over_two_daemons_yields_one_value() {
    if !on_postgres() {
        return;
    }
    let w = world().await;
    let b = w.d.another(setup).await;
    w.secret("/shared/once", "standard", "once-value").await;
    let (_, key) = w.d.agent("racer", 2).await;
    let (s, l) = w
        .lease(&key, json!({"path": "/shared/once", "uses": 1}))
        .await;
    assert_eq!(
        (s, &l["state"]),
        (StatusCode::CREATED, &json!("active")),
        "{l}"
    );
    let id = l["id"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let mut calls = Vec::new();
    for i in 0..40 {
        let base = if i % 2 == 0 { &w.d.base } else { &b.base }.clone();
        let (http, key, id) = (http.clone(), key.clone(), id.clone());
        calls.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/v1/leases/{id}/secret"))
                .bearer_auth(key)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        }));
    }
    let mut values = 0;
    for c in calls {
        let (s, v) = c.await.unwrap();
        if s == StatusCode::OK {
            assert_eq!(v["value"], "once-value");
            values += 1;
        } else {
            assert!(s.is_client_error(), "{s} {v}");
        }
    }
    assert_eq!(values, 1, "exactly one client gets the value");
    let reads = w.d.events("secret.read").await;
    assert_eq!(reads.len(), 1, "one secret.read event");
    b.stop().await;
    w.d.stop().await;
}

#[tokio::test]
async fn writes_through_two_daemons_at_once_keep_one_verifiable_chain() {
    if !on_postgres() {
        return;
    }
    let a = Daemon::start().await;
    let b = a.another(|_| {}).await;
    let admin = a.admin.clone();
    let mut writes = Vec::new();
    for i in 0..60 {
        let (base, admin) = (
            if i % 2 == 0 { &a.base } else { &b.base }.clone(),
            admin.clone(),
        );
        writes.push(tokio::spawn(async move {
            reqwest::Client::new()
                .put(format!("{base}/v1/secrets/chain/k{i}"))
                .bearer_auth(admin)
                .json(&json!({"value": format!("v{i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for w in writes {
        assert_eq!(w.await.unwrap(), StatusCode::CREATED);
    }
    for d in [&a, &b] {
        let (_, v) = d.get("/v1/audit/verify").await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["checked"], v["last_seq"], "no gap: {v}");
    }
    let (_, created) = a.get("/v1/audit?event=secret.created&limit=1000").await;
    assert_eq!(created["events"].as_array().unwrap().len(), 60);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn postgres_restarted_under_load_answers_503_and_loses_nothing_acknowledged() {
    if !on_postgres() {
        return;
    }
    // A cluster of its own: the suite's shared one must keep running.
    let mut cluster = latchkey::store::pg_cluster::Cluster::start_new(
        latchkey::store::pg_cluster::ClusterOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = crate::common::init_store_at(dir.path(), &cluster.url()).await;
    let d = Daemon::start_in(dir, admin.clone()).await;
    let (base, http) = (d.base.clone(), reqwest::Client::new());
    let writer = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
        for i in 0..400 {
            let r = http
                .put(format!("{base}/v1/secrets/load/k{i}"))
                .bearer_auth(&admin)
                .json(&json!({"value": format!("v{i}")}))
                .send()
                .await;
            let Ok(r) = r else { continue };
            *statuses.entry(r.status().as_u16()).or_default() += 1;
            if r.status() == StatusCode::CREATED {
                acknowledged.push(i);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        (acknowledged, statuses)
    });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        cluster.start().unwrap();
        cluster
    })
    .await
    .unwrap();
    let (acknowledged, statuses) = writer.await.unwrap();
    eprintln!("statuses during the restart: {statuses:?}");
    assert!(
        statuses.keys().all(|s| [201, 503].contains(s)),
        "only created or 503 unavailable, never a 500: {statuses:?}"
    );
    assert!(
        statuses.contains_key(&503),
        "the restart was seen: {statuses:?}"
    );
    // The daemon reconnected by itself, and every acknowledged write is there.
    let (s, list) = d.get("/v1/secrets?prefix=load/&limit=1000").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let stored = list["secrets"].as_array().unwrap().len();
    assert!(
        stored >= acknowledged.len(),
        "{stored} < {}",
        acknowledged.len()
    );
    for i in acknowledged {
        let (s, _) = d.get(&format!("/v1/secrets/load/k{i}")).await;
        assert_eq!(s, StatusCode::OK, "acknowledged write k{i} is missing");
    }
    let (_, v) = d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    d.stop().await;
    drop(cluster);
}

#[tokio::test]
async fn a_key_rotated_on_one_daemon_is_used_by_the_other() {
    if !on_postgres() {
        return;
    }
    let a = Daemon::start().await;
    let b = a.another(|_| {}).await;
    let admin = a.admin.clone();
    let (s, keys) = a
        .call(Method::POST, "/v1/keys/rotate", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{keys}");
    a.put(
        &admin,
        "rot/k",
        json!({"value": "sealed-under-the-new-key"}),
    )
    .await;
    // B hears of the new key (a notification) and opens what A sealed with it.
    let mut got = json!(null);
    for _ in 0..50 {
        let (s, v) = b
            .call(
                Method::POST,
                "/v1/export",
                Some(&admin),
                Some(json!({"paths": ["rot/k"]})),
            )
            .await;
        if s == StatusCode::OK {
            got = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(got["secrets"]["rot/k"], "sealed-under-the-new-key", "{got}");
    let (_, listed) = b.get("/v1/keys").await;
    assert_eq!(
        listed.to_string(),
        keys.to_string(),
        "both daemons list the same keys"
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn one_daemon_delivers_a_subscription_in_order_whichever_daemon_writes() {
    if !on_postgres() {
        return;
    }
    let a = Daemon::start_with(crate::webhook_delivery::dev).await;
    let b = a.another(crate::webhook_delivery::dev).await;
    let r = crate::receiver::Receiver::start().await;
    crate::webhook_delivery::subscribe(&a, &r, json!({"events": ["audit.secret.*"]})).await;
    let admin = a.admin.clone();
    for i in 0..20 {
        let d = if i % 2 == 0 { &a } else { &b };
        d.put(
            &admin,
            &format!("hooked/k{i}"),
            json!({"value": format!("v{i}")}),
        )
        .await;
    }
    let got = r
        .wait_for(std::time::Duration::from_secs(20), |got| {
            got.iter()
                .filter(|x| x.body["type"] == "audit.secret.created")
                .count()
                >= 20
        })
        .await;
    assert!(got.len() >= 20);
    // A second deliverer would still be sending: give it time to show.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let got = r.received();
    let created: Vec<&crate::receiver::Received> = got
        .iter()
        .filter(|x| x.body["type"] == "audit.secret.created")
        .collect();
    assert_eq!(created.len(), 20, "each event once: {created:?}");
    assert!(created.iter().all(|x| x.verified));
    let seqs = r.delivered_seqs();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    // /readyz says which daemon holds the subscription's delivery: exactly one.
    let mut holders = 0;
    for d in [&a, &b] {
        let (_, ready) = d.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(ready["checks"]["store_backend"], "postgres", "{ready}");
        let duties = ready["checks"]["duties"].as_array().unwrap();
        holders += duties
            .iter()
            .filter(|x| x.as_str().is_some_and(|n| n.starts_with("webhook:")))
            .count();
    }
    assert_eq!(holders, 1);
    b.stop().await;
    a.stop().await;
}

/// The daemon binary, on the PostgreSQL database of `dir`, listening on a free port.
fn spawn_binary(dir: &std::path::Path, url: &str) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .env("LATCHKEY_STORE_BACKEND", "postgres")
        .env("LATCHKEY_STORE_URL", url)
        .env("LATCHKEY_WEBHOOKS_ALLOW_LOOPBACK", "true")
        .env("LATCHKEY_WEBHOOKS_MIN_BACKOFF_MS", "50")
        .env_remove("LATCHKEY_MASTER_KEY")
        .env_remove("LATCHKEY_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn a_daemon_killed_under_load_loses_nothing_acknowledged_and_its_duty_moves() {
    if !on_postgres() {
        return;
    }
    let cluster = crate::common::pg_cluster().unwrap();
    let url = cluster
        .create_database(&format!("kill{}", std::process::id()))
        .unwrap();
    let a_dir = tempfile::tempdir().unwrap();
    let admin = crate::common::init_store_at(a_dir.path(), &url).await;
    let (mut a, a_base) = spawn_binary(a_dir.path(), &url);
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http
            .get(format!("{a_base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "daemon A did not start");
    // A subscription while A runs alone: A's worker claims its delivery.
    let r = crate::receiver::Receiver::start().await;
    let (s, sub) = {
        let resp = http
            .post(format!("{a_base}/v1/webhooks"))
            .bearer_auth(&admin)
            .json(&json!({"url": r.url, "events": ["audit.secret.created"]}))
            .send()
            .await
            .unwrap();
        (
            resp.status(),
            resp.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    r.set_secrets(&[sub["secret"].as_str().unwrap()]);
    let b_dir = tempfile::tempdir().unwrap();
    for f in ["master.key", "test-store-url"] {
        let bytes = std::fs::read(a_dir.path().join(f)).unwrap();
        latchkey::crypto::keyring::write_private(&b_dir.path().join(f), &bytes).unwrap();
    }
    let b = Daemon::start_in_with(b_dir, admin.clone(), crate::webhook_delivery::dev).await;

    // Write load on A; A is killed (SIGKILL) half-way.
    let writer = {
        let (http, a_base, admin) = (http.clone(), a_base.clone(), admin.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..400 {
                let r = http
                    .put(format!("{a_base}/v1/secrets/killed/k{i}"))
                    .bearer_auth(&admin)
                    .json(&json!({"value": format!("v{i}")}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::CREATED => acknowledged.push(i),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    a.kill().unwrap();
    a.wait().unwrap();
    let acknowledged = writer.await.unwrap();
    assert!(!acknowledged.is_empty(), "some writes went through A first");
    // Every write A acknowledged is there, through B, and the chain verifies.
    for i in &acknowledged {
        let (s, _) = b.get(&format!("/v1/secrets/killed/k{i}")).await;
        assert_eq!(s, StatusCode::OK, "acknowledged write k{i} is missing");
    }
    let (_, v) = b.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    // The delivery duty moves to B (its claim expires 15 s after A's last renewal), and every
    // acknowledged secret.created event arrives.
    let got = r
        .wait_for(std::time::Duration::from_secs(40), |got| {
            let seen: std::collections::HashSet<String> = got
                .iter()
                .filter_map(|x| x.body["data"]["resource_path"].as_str().map(String::from))
                .collect();
            acknowledged
                .iter()
                .all(|i| seen.contains(&format!("killed/k{i}")))
        })
        .await;
    // A may have delivered everything before it died: B takes the duty when A's claim
    // expires (at most 15 s after A's last renewal); polled, bounded.
    let mut ready = serde_json::Value::Null;
    for _ in 0..150 {
        ready = b.call(Method::GET, "/readyz", None, None).await.1;
        if ready["checks"]["duties"].to_string().contains("webhook:") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        ready["checks"]["duties"].to_string().contains("webhook:"),
        "B holds the delivery now: {ready}"
    );
    let seen: std::collections::HashSet<String> = got
        .iter()
        .filter_map(|x| x.body["data"]["resource_path"].as_str().map(String::from))
        .collect();
    for i in &acknowledged {
        assert!(
            seen.contains(&format!("killed/k{i}")),
            "k{i} was not delivered"
        );
    }
    b.stop().await;
}

#[tokio::test]
async fn a_daemon_that_lost_a_duty_cannot_commit_work_under_it() {
    if !on_postgres() {
        return;
    }
    let a = Daemon::start_with(crate::webhook_delivery::dev).await;
    let r = crate::receiver::Receiver::start().await;
    let sub = crate::webhook_delivery::subscribe(&a, &r, json!({"events": ["audit.*"]})).await;
    let id = sub["id"].as_str().unwrap().to_string();
    let duty = format!("webhook:{id}");
    r.wait_for(std::time::Duration::from_secs(10), |got| !got.is_empty())
        .await;
    // A second store on the same database: another daemon, as far as duties go.
    let cfg = crate::common::config(a.dir.path());
    let (other, writer, _) = latchkey::open_store(&cfg).unwrap();
    let (o, d) = (other.clone(), duty.clone());
    assert!(
        !tokio::task::spawn_blocking(move || o.holds_duty(&d))
            .await
            .unwrap(),
        "daemon A holds the delivery"
    );
    let err = other
        .save_webhook_progress(id.clone(), None, 1_000_000, Vec::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no longer holds"), "{err}");
    // The claim runs out (as when A is cut off): the other store takes the duty over, with a
    // new fencing token, and may move the cursor.
    let url = std::fs::read_to_string(a.dir.path().join("test-store-url")).unwrap();
    let db = url.rsplit('/').next().unwrap().to_string();
    crate::common::pg_cluster()
        .unwrap()
        .psql(
            &db,
            &format!(
                "UPDATE duties SET expires_at = now() - interval '1 second' WHERE name = '{duty}'"
            ),
        )
        .unwrap();
    let (o, d) = (other.clone(), duty.clone());
    assert!(
        tokio::task::spawn_blocking(move || o.holds_duty(&d))
            .await
            .unwrap()
    );
    let cursor = other.webhook_cursor(&id).unwrap();
    other
        .save_webhook_progress(id.clone(), Some(cursor), cursor, Vec::new())
        .await
        .unwrap();
    drop(other);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .unwrap();
    a.stop().await;
}

#[tokio::test]
async fn two_daemons_with_telegram_post_one_card_per_approval_and_one_polls() {
    if !on_postgres() {
        return;
    }
    use crate::channel_approvers::tg_buttons;
    use crate::channel_world::{ALICE_TG, Setup, configure, world};
    let setup = Setup {
        discord: false,
        ..Setup::default()
    };
    let w = world(setup.clone()).await;
    let (tg_url, dc_url) = (w.tg.url.clone(), w.dc.url.clone());
    let b =
        w.d.another(move |cfg| configure(cfg, &setup, &tg_url, &dc_url))
            .await;
    // An approval opened through A: one card, whichever daemons run.
    let (lease, approval) = w.pending("/production/db", "two daemons").await;
    let card = w.tg_card(&approval).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(w.tg_sends(&approval).len(), 1, "one card per approval");
    // Alice taps Approve: whichever daemon polls handles it, once.
    let (yes, _) = tg_buttons(&card);
    w.tap(ALICE_TG, "alice", &card, &yes);
    let l = w.lease_becomes(&lease, "active").await;
    assert_eq!(l["state"], "active");
    // Exactly one daemon holds the polling duty.
    let mut pollers = 0;
    for d in [&w.d, &b] {
        let (_, ready) = d.call(Method::GET, "/readyz", None, None).await;
        if ready["checks"]["duties"]
            .to_string()
            .contains("telegram-polling")
        {
            pollers += 1;
        }
    }
    assert_eq!(pollers, 1);
    // An approval opened through B: one card too.
    let (s, l2) = b
        .call(
            Method::POST,
            "/v1/leases",
            Some(&w.agent),
            Some(json!({"path": "/production/db", "reason": "through B"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l2}");
    let approval2 = l2["approval"]["id"].as_str().unwrap();
    w.tg_card(approval2).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(w.tg_sends(approval2).len(), 1, "one card per approval");
    b.stop().await;
}
