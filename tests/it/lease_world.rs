//! The world of the lease tests: a daemon with approvers alice (everything), bob (quorum/**
//! and production/**) and carol (staging/**), approval policies for quorum and short
//! deadlines, and helpers to store secrets, request, show and use leases, and vote.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::Daemon;
use latchkey::config::{ApproverConfig, Config};
use latchkey::policy::{OnDeadline, Override, Requirement};

fn approver(name: &str, patterns: &[&str]) -> ApproverConfig {
    ApproverConfig {
        name: name.into(),
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        telegram_user_id: None,
        discord_user_id: None,
    }
}

fn policy(pattern: &str, quorum: u32, deadline: Option<u64>, on_deadline: OnDeadline) -> Override {
    Override {
        pattern: pattern.into(),
        tiers: None,
        sensitivities: None,
        requirement: Requirement::Approval,
        quorum,
        deadline_seconds: deadline,
        on_deadline,
    }
}

pub(crate) fn setup(cfg: &mut Config) {
    cfg.approvers = vec![
        approver("alice", &["**"]),
        approver("bob", &["quorum/**", "production/**"]),
        approver("carol", &["staging/**"]),
    ];
    cfg.approval_policies = vec![
        policy("quorum/**", 2, None, OnDeadline::Deny),
        policy("short/deny/**", 1, Some(1), OnDeadline::Deny),
        policy("short/grant/**", 1, Some(1), OnDeadline::Grant),
    ];
}

/// A daemon with approvers alice, bob, carol (and their tokens), and a grant letting every
/// agent read and list everything outside its namespace.
pub(crate) struct World {
    pub(crate) d: Daemon,
    pub(crate) alice: String,
    pub(crate) bob: String,
    pub(crate) carol: String,
}

pub(crate) async fn world() -> World {
    let d = Daemon::start_with(setup).await;
    let admin = d.admin.clone();
    let (s, b) = d.call(Method::POST, "/v1/grants", Some(&admin), Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "**", "actions": ["read", "list"]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut tokens = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (s, b) = d
            .call(
                Method::POST,
                &format!("/v1/approvers/{name}/tokens"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        tokens.push(b["token"].as_str().unwrap().to_string());
    }
    let carol = tokens.pop().unwrap();
    let bob = tokens.pop().unwrap();
    let alice = tokens.pop().unwrap();
    World {
        d,
        alice,
        bob,
        carol,
    }
}

impl World {
    pub(crate) async fn secret(&self, path: &str, sensitivity: &str, value: &str) {
        let admin = self.d.admin.clone();
        let (s, b) = self
            .d
            .put(
                &admin,
                path,
                json!({"value": value, "sensitivity": sensitivity}),
            )
            .await;
        assert!(s.is_success(), "{b}");
    }

    pub(crate) async fn lease(&self, key: &str, body: Value) -> (StatusCode, Value) {
        self.d
            .call(Method::POST, "/v1/leases", Some(key), Some(body))
            .await
    }

    pub(crate) async fn vote(
        &self,
        who: &str,
        approval: &str,
        decision: &str,
    ) -> (StatusCode, Value) {
        self.d
            .call(
                Method::POST,
                &format!("/v1/approvals/{approval}/votes"),
                Some(who),
                Some(json!({"decision": decision})),
            )
            .await
    }

    pub(crate) async fn use_lease(&self, key: &str, id: &str) -> (StatusCode, Value) {
        self.d
            .call(
                Method::POST,
                &format!("/v1/leases/{id}/secret"),
                Some(key),
                None,
            )
            .await
    }

    pub(crate) async fn show(&self, key: &str, id: &str) -> Value {
        self.d
            .call(Method::GET, &format!("/v1/leases/{id}"), Some(key), None)
            .await
            .1
    }
}
