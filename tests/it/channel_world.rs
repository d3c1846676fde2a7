//! The world of the approval-channel tests: a daemon wired to the fake Telegram and Discord
//! servers (`bots::fake::telegram`, `bots::fake::discord`), its approvers and routes, the
//! agent and secrets, and the daemon-side helpers (leases, readiness, audit, long-polls,
//! bounded waits). What approvers see and do on the platforms is in `channel_approvers`.

use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use bots::fake::discord::{self as fake_discord, FakeDiscord};
use bots::fake::telegram::{self as fake_telegram, FakeTelegram};
use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::Daemon;
use latchkey::config::{ApproverConfig, Config, Credential, DiscordRoute, TelegramRoute};
use latchkey::policy::{OnDeadline, Override, Requirement};

/// The approvers' group: gets every card.
pub(crate) const MAIN_CHAT: i64 = -1_001_000_000_001;
/// The staging group: gets staging cards only.
pub(crate) const STAGING_CHAT: i64 = -1_001_000_000_002;
/// The Discord channel every card goes to.
pub(crate) const DC_CHANNEL: u64 = 1_200_000_000_000_000_100;
pub(crate) const APP_ID: u64 = 1_100_000_000_000_000_000;
pub(crate) const WEBHOOK_URL: &str = "https://latchkey.example/bots/telegram/webhook";
pub(crate) const WEBHOOK_SECRET: &str = "tg-hook_SECRET-0123456789";
pub(crate) const BAD_TG_TOKEN: &str = "7654321:LkWrongTgToken-xyz";
pub(crate) const BAD_DC_TOKEN: &str = "MTEwMDAw.LkWrongDcToken.xyz";

/// Alice and Bob decide everything; Carol decides staging only; Mallory is nobody.
pub(crate) const ALICE_TG: i64 = 1111;
pub(crate) const BOB_TG: i64 = 2222;
pub(crate) const CAROL_TG: i64 = 3333;
pub(crate) const MALLORY_TG: i64 = 6666;
pub(crate) const ALICE_DC: &str = "400000000000000001";
pub(crate) const BOB_DC: &str = "400000000000000002";
pub(crate) const MALLORY_DC: &str = "400000000000000009";

/// Longest any wait in these tests may take.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub(crate) struct Setup {
    pub(crate) telegram: bool,
    pub(crate) discord: bool,
    pub(crate) webhook: bool,
    pub(crate) tg_token: String,
    pub(crate) dc_token: String,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            telegram: true,
            discord: true,
            webhook: false,
            tg_token: fake_telegram::TOKEN.into(),
            dc_token: fake_discord::TOKEN.into(),
        }
    }
}

fn approver(name: &str, patterns: &[&str], tg: i64, dc: Option<&str>) -> ApproverConfig {
    ApproverConfig {
        name: name.into(),
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        telegram_user_id: Some(tg),
        discord_user_id: dc.map(str::to_string),
    }
}

fn policy(pattern: &str, quorum: u32, deadline: Option<u64>) -> Override {
    Override {
        pattern: pattern.into(),
        tiers: None,
        sensitivities: None,
        requirement: Requirement::Approval,
        quorum,
        deadline_seconds: deadline,
        on_deadline: OnDeadline::Deny,
    }
}

/// The Ed25519 key Discord would sign interactions with (the public half is configured).
pub(crate) fn discord_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn configure(cfg: &mut Config, s: &Setup, tg_url: &str, dc_url: &str) {
    cfg.approvers = vec![
        approver("alice", &["**"], ALICE_TG, Some(ALICE_DC)),
        approver("bob", &["**"], BOB_TG, Some(BOB_DC)),
        approver("carol", &["staging/**"], CAROL_TG, None),
        // Carol again, under another name, for production only.
        approver("carol-prod", &["production/**"], CAROL_TG, None),
    ];
    cfg.approval_policies = vec![policy("quorum/**", 2, None), policy("short/**", 1, Some(1))];
    let tg = &mut cfg.channels.telegram;
    tg.enabled = s.telegram;
    tg.token = Credential(s.tg_token.clone());
    tg.api_url = tg_url.to_string();
    if s.webhook {
        tg.mode = "webhook".into();
        tg.webhook_url = WEBHOOK_URL.into();
        tg.webhook_secret = Credential(WEBHOOK_SECRET.into());
    }
    // Two routes lead to the main chat for production paths: it must get one copy only.
    tg.routes = vec![
        TelegramRoute {
            pattern: "production/**".into(),
            chat_id: MAIN_CHAT,
        },
        TelegramRoute {
            pattern: "**".into(),
            chat_id: MAIN_CHAT,
        },
        TelegramRoute {
            pattern: "staging/**".into(),
            chat_id: STAGING_CHAT,
        },
    ];
    let dc = &mut cfg.channels.discord;
    dc.enabled = s.discord;
    dc.bot_token = Credential(s.dc_token.clone());
    dc.application_id = APP_ID;
    dc.public_key = hex(discord_key().verifying_key().as_bytes());
    dc.api_url = dc_url.to_string();
    dc.routes = vec![DiscordRoute {
        pattern: "**".into(),
        channel_id: DC_CHANNEL,
    }];
}

/// The key that MACs button data, derived as the daemon does from the keyring's signing key.
fn callback_key(dir: &Path) -> Vec<u8> {
    let ring = crate::common::keyring_of(dir);
    let mut mac = Hmac::<Sha256>::new_from_slice(ring.signing_key()).unwrap();
    mac.update(b"latchkey approval buttons v1");
    mac.finalize().into_bytes().to_vec()
}

/// Polls `f` every 25 ms until it yields something; fails after [`WAIT`].
pub(crate) async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A daemon with both fakes, approvers, an agent that may read everything, and secrets.
pub(crate) struct World {
    pub(crate) d: Daemon,
    pub(crate) tg: FakeTelegram,
    pub(crate) dc: FakeDiscord,
    /// The agent's API key.
    pub(crate) agent: String,
    /// The button MAC key.
    pub(crate) cb_key: Vec<u8>,
    pub(crate) http: reqwest::Client,
    pub(crate) next_update: AtomicI64,
}

pub(crate) async fn world(setup: Setup) -> World {
    let tg = FakeTelegram::start().await;
    let dc = FakeDiscord::start(&[DC_CHANNEL]).await;
    let (tg_url, dc_url) = (tg.url.clone(), dc.url.clone());
    let s = setup.clone();
    let d = Daemon::start_with(move |cfg| configure(cfg, &s, &tg_url, &dc_url)).await;
    let admin = d.admin.clone();
    let (st, b) = d
        .call(
            Method::POST,
            "/v1/grants",
            Some(&admin),
            Some(
                json!({"subject": {"kind": "namespace", "value": "entities"},
                        "pattern": "**", "actions": ["read", "list"]}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    for path in [
        "production/db",
        "staging/db",
        "quorum/key",
        "short/key",
        "markup/key",
    ] {
        let (st, b) = d
            .put(
                &admin,
                path,
                json!({"value": format!("value-of-{path}"), "sensitivity": "critical"}),
            )
            .await;
        assert!(st.is_success(), "{b}");
    }
    let (_, agent) = d.agent("agent-1", 1).await;
    let cb_key = callback_key(d.dir.path());
    let w = World {
        d,
        tg,
        dc,
        agent,
        cb_key,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        next_update: AtomicI64::new(700_000),
    };
    let good = setup.tg_token == fake_telegram::TOKEN && setup.dc_token == fake_discord::TOKEN;
    if good {
        // The start-up checks (getMe, users/@me) are done before a test scripts failures.
        let mut want = Vec::new();
        if setup.telegram {
            want.push("channel:telegram");
        }
        if setup.discord {
            want.push("channel:discord");
        }
        let until = Instant::now() + WAIT;
        loop {
            let (_, r) = w.d.call(Method::GET, "/readyz", None, None).await;
            if want.iter().all(|c| r["checks"][c] == "ok") {
                break;
            }
            assert!(Instant::now() < until, "channels never became ready: {r}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    w
}

impl World {
    /// Requests a lease as the agent; returns (lease id, approval id).
    pub(crate) async fn pending(&self, path: &str, reason: &str) -> (String, String) {
        let (s, l) = self
            .d
            .call(
                Method::POST,
                "/v1/leases",
                Some(&self.agent),
                Some(json!({"path": path, "reason": reason})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        assert_eq!(l["state"], "pending", "{l}");
        (
            l["id"].as_str().unwrap().to_string(),
            l["approval"]["id"].as_str().unwrap().to_string(),
        )
    }

    pub(crate) async fn lease(&self, id: &str) -> Value {
        let (s, l) = self
            .d
            .call(
                Method::GET,
                &format!("/v1/leases/{id}"),
                Some(&self.agent),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{l}");
        l
    }

    pub(crate) async fn lease_becomes(&self, id: &str, want: &str) -> Value {
        let until = Instant::now() + WAIT;
        loop {
            let l = self.lease(id).await;
            if l["state"] == want {
                return l;
            }
            assert!(Instant::now() < until, "lease never became {want}: {l}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/readyz` reports `want` for a check.
    pub(crate) async fn readyz_shows(&self, check: &str, want: impl Fn(&str) -> bool) -> Value {
        let until = Instant::now() + WAIT;
        loop {
            let (_, r) = self.d.call(Method::GET, "/readyz", None, None).await;
            if r["checks"][check].as_str().is_some_and(&want) {
                return r;
            }
            assert!(Instant::now() < until, "{check} never as wanted: {r}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub(crate) async fn events(&self, kind: &str) -> Vec<Value> {
        self.d.events(kind).await
    }

    /// Checks that no bot token (good or bad) shows up in what the daemon tells its users.
    pub(crate) async fn assert_no_tokens(&self) {
        let mut seen = vec![
            self.d.get("/v1/audit?limit=1000").await.1.to_string(),
            self.d.get("/v1/approvals").await.1.to_string(),
        ];
        seen.push(
            self.d
                .call(Method::GET, "/readyz", None, None)
                .await
                .1
                .to_string(),
        );
        let (_, lease_list) = self
            .d
            .call(Method::GET, "/v1/leases", Some(&self.agent), None)
            .await;
        seen.push(lease_list.to_string());
        for text in seen {
            for token in [
                fake_telegram::TOKEN,
                fake_discord::TOKEN,
                BAD_TG_TOKEN,
                BAD_DC_TOKEN,
                "LkTgSecret",
                "LkDcSecret",
                "LkWrong",
                WEBHOOK_SECRET,
            ] {
                assert!(!text.contains(token), "{token} leaked: {text}");
            }
        }
    }
}

/// Starts `GET /v1/leases/{id}?wait=30` in the background; yields (elapsed, body).
pub(crate) fn long_poll(w: &World, id: &str) -> tokio::task::JoinHandle<(Duration, Value)> {
    let (url, key) = (
        format!("{}/v1/leases/{id}?wait=30", w.d.base),
        w.agent.clone(),
    );
    tokio::spawn(async move {
        let started = Instant::now();
        let r = reqwest::Client::new()
            .get(url)
            .bearer_auth(key)
            .timeout(Duration::from_secs(40))
            .send()
            .await
            .unwrap();
        (started.elapsed(), r.json().await.unwrap())
    })
}
