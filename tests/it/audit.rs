//! The audit log: queries and filters, chain verification, tamper detection.

use latchkey::store::keys::Key;
use latchkey::store::kv::{ReadTxn, Table, WriteTxn};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::Daemon;

#[tokio::test]
async fn query_filters_and_pages() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    let (agent, key) = d.agent("auditee", 2).await;
    for i in 0..5 {
        d.put(&admin, &format!("prod/k{i}"), json!({"value": "v"}))
            .await;
    }
    d.put(&key, "mine", json!({"value": "v"})).await;

    let (_, b) = d
        .get("/v1/audit?event=secret.created&path_prefix=prod/&limit=2")
        .await;
    assert_eq!(b["events"].as_array().unwrap().len(), 2);
    let next = b["next_seq"].as_u64().unwrap();
    let (_, b2) = d
        .get(&format!(
            "/v1/audit?event=secret.created&path_prefix=prod/&limit=100&from_seq={next}"
        ))
        .await;
    assert_eq!(b2["events"].as_array().unwrap().len(), 3);

    let (_, b) = d.get(&format!("/v1/audit?actor={agent}")).await;
    let events = b["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actor_type"], "agent");
    assert_eq!(events[0]["namespace"], format!("entities/{agent}"));

    let (_, all) = d.get("/v1/audit?limit=1000").await;
    let all = all["events"].as_array().unwrap();
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gapless");
    for w in all.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
    }
    let ts = all[0]["timestamp"].as_str().unwrap();
    let (_, b) = d.get(&format!("/v1/audit?since={ts}&limit=1000")).await;
    assert_eq!(b["events"].as_array().unwrap().len(), all.len());
    let (_, b) = d.get("/v1/audit?until=2000-01-01T00:00:00Z").await;
    assert_eq!(b["events"].as_array().unwrap().len(), 0);
    let (s, _) = d.get("/v1/audit?since=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = d.call(Method::GET, "/v1/audit", Some(&key), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    d.stop().await;
}

#[tokio::test]
async fn verify_detects_a_tampered_event() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    for i in 0..4 {
        d.put(&admin, &format!("t/k{i}"), json!({"value": "v"}))
            .await;
    }
    let (_, v) = d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    let total = v["checked"].as_u64().unwrap();
    let (dir, admin) = d.stop().await;
    crate::common::raw_write(dir.path(), |t| {
        let raw = t.get(Table::Audit, &3u64.encode()).unwrap().unwrap();
        let mut e: Value = serde_json::from_slice(&raw).unwrap();
        e["resource_path"] = json!("t/innocent");
        t.put(
            Table::Audit,
            &3u64.encode(),
            &serde_json::to_vec(&e).unwrap(),
        )
        .unwrap();
    });
    let d = Daemon::start_in(dir, admin).await;
    let (s, v) = d.get("/v1/audit/verify").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_break"]["seq"], 3, "{v}");
    assert!(v["last_seq"].as_u64().unwrap() >= total);
    let (dir, admin) = d.stop().await;
    // Deleting an event is a gap.
    crate::common::raw_write(dir.path(), |t| {
        assert!(t.delete(Table::Audit, &2u64.encode()).unwrap());
    });
    let d = Daemon::start_in(dir, admin).await;
    let (_, v) = d.get("/v1/audit/verify").await;
    assert_eq!(v["first_break"]["seq"], 2, "{v}");
    d.stop().await;
}
