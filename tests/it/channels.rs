//! Approval channels end to end: the daemon runs with the real Telegram (teloxide) and Discord
//! (serenity) clients pointed at fake platform servers on 127.0.0.1 (`bots::fake::telegram`,
//! `bots::fake::discord`). Cards are posted to the routed chats, taps arrive by long polling, by the
//! Telegram webhook or as signed Discord interactions, become votes (approver checked on every
//! tap), and every copy of a card is edited with the outcome. Every wait is bounded.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use bots::fake::discord::{self as fake_discord, Failure, FakeDiscord};
use bots::fake::telegram::{self as fake_telegram, FakeTelegram, tap_update};
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::Daemon;
use latchkey::config::{ApproverConfig, Config, Credential, DiscordRoute, TelegramRoute};
use latchkey::policy::{OnDeadline, Override, Requirement};

/// The approvers' group: gets every card.
const MAIN_CHAT: i64 = -1_001_000_000_001;
/// The staging group: gets staging cards only.
const STAGING_CHAT: i64 = -1_001_000_000_002;
/// The Discord channel every card goes to.
const DC_CHANNEL: u64 = 1_200_000_000_000_000_100;
const APP_ID: u64 = 1_100_000_000_000_000_000;
const WEBHOOK_URL: &str = "https://latchkey.example/bots/telegram/webhook";
const WEBHOOK_SECRET: &str = "tg-hook_SECRET-0123456789";
const BAD_TG_TOKEN: &str = "7654321:LkWrongTgToken-xyz";
const BAD_DC_TOKEN: &str = "MTEwMDAw.LkWrongDcToken.xyz";

/// Alice and Bob decide everything; Carol decides staging only; Mallory is nobody.
const ALICE_TG: i64 = 1111;
const BOB_TG: i64 = 2222;
const CAROL_TG: i64 = 3333;
const MALLORY_TG: i64 = 6666;
const ALICE_DC: &str = "400000000000000001";
const BOB_DC: &str = "400000000000000002";
const MALLORY_DC: &str = "400000000000000009";

/// Longest any wait in these tests may take.
const WAIT: Duration = Duration::from_secs(15);

#[derive(Clone)]
struct Setup {
    telegram: bool,
    discord: bool,
    webhook: bool,
    tg_token: String,
    dc_token: String,
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
fn discord_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn configure(cfg: &mut Config, s: &Setup, tg_url: &str, dc_url: &str) {
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
    let master = latchkey::crypto::keyring::resolve_master_key(dir).unwrap();
    let ring = latchkey::crypto::Keyring::load(dir, &master).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(ring.signing_key()).unwrap();
    mac.update(b"latchkey approval buttons v1");
    mac.finalize().into_bytes().to_vec()
}

/// Polls `f` every 25 ms until it yields something; fails after [`WAIT`].
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
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
struct World {
    d: Daemon,
    tg: FakeTelegram,
    dc: FakeDiscord,
    /// The agent's API key.
    agent: String,
    /// The button MAC key.
    cb_key: Vec<u8>,
    http: reqwest::Client,
    next_update: AtomicI64,
}

async fn world(setup: Setup) -> World {
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
    async fn pending(&self, path: &str, reason: &str) -> (String, String) {
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

    async fn lease(&self, id: &str) -> Value {
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

    async fn lease_becomes(&self, id: &str, want: &str) -> Value {
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

    /// Every Telegram copy of an approval's card, as last sent or edited.
    fn tg_cards(&self, approval: &str) -> Vec<Value> {
        self.tg
            .messages()
            .into_iter()
            .filter(|m| m["text"].as_str().is_some_and(|t| t.contains(approval)))
            .collect()
    }

    /// The (first) Telegram card of an approval, once posted.
    async fn tg_card(&self, approval: &str) -> Value {
        eventually("the Telegram card", || {
            self.tg_cards(approval).into_iter().next()
        })
        .await
    }

    /// The Telegram card once its text contains `text`.
    async fn tg_card_showing(&self, approval: &str, text: &str) -> Value {
        eventually(&format!("the Telegram card to show {text:?}"), || {
            self.tg_cards(approval)
                .into_iter()
                .find(|m| m["text"].as_str().unwrap().contains(text))
        })
        .await
    }

    /// sendMessage calls that carried an approval's card (failed ones included).
    fn tg_sends(&self, approval: &str) -> Vec<fake_telegram::Call> {
        self.tg
            .calls_to("sendMessage")
            .into_iter()
            .filter(|c| {
                c.body["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(approval))
            })
            .collect()
    }

    /// The Discord card of an approval, once posted.
    async fn dc_card(&self, approval: &str) -> Value {
        self.dc_card_showing(approval, approval).await
    }

    async fn dc_card_showing(&self, approval: &str, text: &str) -> Value {
        eventually(&format!("the Discord card to show {text:?}"), || {
            self.dc.messages().into_iter().find(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|t| t.contains(approval) && t.contains(text))
            })
        })
        .await
    }

    /// Delivers a tap on `card`'s button by getUpdates; returns the callback query's id.
    fn tap(&self, user: i64, name: &str, card: &Value, data: &str) -> String {
        let id = self.next_update.fetch_add(1, Ordering::SeqCst);
        let qid = format!("cbq-{id}");
        self.tg
            .push_update(tap_update(id, &qid, user, name, card, data));
        qid
    }

    /// Delivers a `/command` typed by `user` in the main chat by getUpdates.
    fn command(&self, user: i64, text: &str) {
        let id = self.next_update.fetch_add(1, Ordering::SeqCst);
        let name = text.split_whitespace().next().unwrap_or_default();
        self.tg.push_update(json!({
            "update_id": id,
            "message": {"message_id": id, "date": fake_telegram::DATE, "text": text,
                        "from": {"id": user, "is_bot": false, "first_name": "User"},
                        "chat": {"id": MAIN_CHAT, "title": "Approvers", "type": "supergroup"},
                        "entities": [{"offset": 0, "length": name.len(), "type": "bot_command"}]}
        }));
    }

    /// Waits until `/readyz` reports `want` for a check.
    async fn readyz_shows(&self, check: &str, want: impl Fn(&str) -> bool) -> Value {
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

    /// The answerCallbackQuery call for a query id.
    async fn answer(&self, qid: &str) -> Value {
        eventually(&format!("the answer to {qid}"), || {
            self.tg
                .bodies("answerCallbackQuery")
                .into_iter()
                .find(|b| b["callback_query_id"] == qid)
        })
        .await
    }

    /// POSTs a Telegram update to the webhook route with `secret` in the header.
    async fn webhook(&self, body: &str, secret: Option<&str>) -> StatusCode {
        let mut req = self
            .http
            .post(format!("{}/bots/telegram/webhook", self.d.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        req.send().await.unwrap().status()
    }

    /// POSTs an interaction, signed by `key` over timestamp + body as Discord does (`None`:
    /// no signature headers).
    async fn interact(&self, body: &str, key: Option<&SigningKey>) -> (StatusCode, Value) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.interact_at(body, key, now).await
    }

    /// As [`Self::interact`], signed with the timestamp `at` (unix seconds).
    async fn interact_at(
        &self,
        body: &str,
        key: Option<&SigningKey>,
        at: i64,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/bots/discord/interactions", self.d.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            let timestamp = at.to_string();
            let mut signed = timestamp.as_bytes().to_vec();
            signed.extend_from_slice(body.as_bytes());
            req = req
                .header("X-Signature-Ed25519", hex(&key.sign(&signed).to_bytes()))
                .header("X-Signature-Timestamp", timestamp);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        self.d.events(kind).await
    }

    /// Checks that no bot token (good or bad) shows up in what the daemon tells its users.
    async fn assert_no_tokens(&self) {
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

/// The callback data of a Telegram card's buttons: (approve, deny).
fn tg_buttons(card: &Value) -> (String, String) {
    let rows = card["reply_markup"]["inline_keyboard"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{card}");
    let row = rows[0].as_array().unwrap();
    assert_eq!(row.len(), 2, "two buttons: {card}");
    let data = |i: usize| row[i]["callback_data"].as_str().unwrap().to_string();
    (data(0), data(1))
}

/// The custom ids of a Discord card's buttons: (approve, deny).
fn dc_buttons(msg: &Value) -> (String, String) {
    let rows = msg["components"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{msg}");
    let row = rows[0]["components"].as_array().unwrap();
    assert_eq!(row.len(), 2, "two buttons: {msg}");
    let id = |i: usize| row[i]["custom_id"].as_str().unwrap().to_string();
    (id(0), id(1))
}

/// A button click in a server channel, as Discord sends it: the clicker is `member.user`.
fn click(user_id: &str, username: &str, msg: &Value, custom_id: &str) -> String {
    json!({
        "app_permissions": "562949953601536",
        "application_id": APP_ID.to_string(),
        "channel": {"id": DC_CHANNEL.to_string(), "guild_id": "1200000000000000000",
                    "name": "approvals", "type": 0},
        "channel_id": DC_CHANNEL.to_string(),
        "context": 0,
        "data": {"component_type": 2, "custom_id": custom_id, "id": 2},
        "entitlements": [],
        "guild": {"features": [], "id": "1200000000000000000", "locale": "en-US"},
        "guild_id": "1200000000000000000",
        "guild_locale": "en-US",
        "id": "1300000000000000042",
        "locale": "en-GB",
        "member": {"nick": "boss", "roles": [], "permissions": "2248473465835073",
                   "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                   "user": {"id": user_id, "username": username, "discriminator": "0",
                            "global_name": "Display Name", "avatar": null, "public_flags": 0}},
        "message": msg,
        "token": "aW50ZXJhY3Rpb246MTMwMDAwMDAwMDAwMDAwMDA0Mjp0b2tlbg",
        "type": 3,
        "version": 1,
    })
    .to_string()
}

/// Starts `GET /v1/leases/{id}?wait=30` in the background; yields (elapsed, body).
fn long_poll(w: &World, id: &str) -> tokio::task::JoinHandle<(Duration, Value)> {
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

#[tokio::test]
async fn telegram_polling_tap_approves_wakes_the_agent_and_closes_the_card() {
    let w = world(Setup {
        discord: false,
        ..Setup::default()
    })
    .await;
    let (lease, approval) = w.pending("/production/db", "nightly deploy").await;

    // The card reaches the routed chat once (two routes name it), and no other chat.
    let card = w.tg_card(&approval).await;
    assert_eq!(card["chat"]["id"], MAIN_CHAT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sends = w.tg_sends(&approval);
    assert_eq!(sends.len(), 1, "one copy per chat: {sends:?}");
    assert_eq!(sends[0].body["chat_id"], MAIN_CHAT);
    let text = card["text"].as_str().unwrap();
    for line in [
        "🔐 Approval needed",
        "Who: agent-1 (tier 1)",
        "What: read production/db (critical)",
        "Why: nightly deploy",
        "Votes: 0/1",
    ] {
        assert!(text.contains(line), "{line:?} missing from {text}");
    }
    let (yes, no) = tg_buttons(&card);
    for (data, decision) in [(&yes, bots::Decision::Approve), (&no, bots::Decision::Deny)] {
        assert!(data.len() <= 64, "{data}");
        assert_eq!(
            bots::callback::decode(&w.cb_key, data).unwrap(),
            (approval.clone(), decision)
        );
    }

    // The agent long-polls; Alice taps Approve; the poll wakes at once.
    let poll = long_poll(&w, &lease);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tapped = Instant::now();
    let qid = w.tap(ALICE_TG, "alice", &card, &yes);
    let (elapsed, body) = tokio::time::timeout(WAIT, poll).await.unwrap().unwrap();
    assert_eq!(body["state"], "active", "{body}");
    assert!(elapsed >= Duration::from_millis(300), "the poll waited");
    assert!(
        tapped.elapsed() < Duration::from_secs(5),
        "woke within seconds of the tap (long-poll hold included)"
    );
    let answer = w.answer(&qid).await;
    assert_eq!(answer["show_alert"], false, "{answer}");
    assert!(
        answer["text"].as_str().unwrap().contains("approved"),
        "{answer}"
    );

    // The card is edited: outcome shown, no keyboard.
    let closed = w
        .tg_card_showing(&approval, "Outcome: ✅ approved by alice at")
        .await;
    assert!(
        closed["text"]
            .as_str()
            .unwrap()
            .starts_with("🔐 Approval closed")
    );
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    let edit =
        w.tg.bodies("editMessageText")
            .into_iter()
            .rfind(|b| b["text"].as_str().unwrap().contains(&approval))
            .unwrap();
    assert_eq!(edit["chat_id"], MAIN_CHAT);
    assert_eq!(edit["message_id"], card["message_id"]);
    assert_eq!(edit["reply_markup"]["inline_keyboard"], json!([]));

    // The update is confirmed (the next getUpdates asks for a higher offset).
    eventually("the update to be confirmed", || {
        (w.tg.unconfirmed() == 0).then_some(())
    })
    .await;
    let voted = w.events("approval.voted").await;
    assert_eq!(voted.len(), 1);
    assert_eq!(voted[0]["details"]["via"], "telegram");
    assert_eq!(voted[0]["details"]["approver"], "alice");

    // A staging card goes to the staging chat and the main chat.
    let (_, staging) = w.pending("/staging/db", "").await;
    eventually("both staging copies", || {
        let mut chats: Vec<i64> = w
            .tg_cards(&staging)
            .iter()
            .map(|m| m["chat"]["id"].as_i64().unwrap())
            .collect();
        chats.sort();
        (chats == [STAGING_CHAT, MAIN_CHAT]).then_some(())
    })
    .await;

    // /whoami and /pending answer in the chat; a command naming another bot is not ours.
    w.command(ALICE_TG, "/whoami@other_bot");
    w.command(ALICE_TG, "/pending");
    let reply = eventually("the /pending reply", || {
        w.tg.bodies("sendMessage")
            .into_iter()
            .find(|b| b["text"].as_str().unwrap().starts_with("Pending approvals"))
    })
    .await;
    assert!(
        reply["text"].as_str().unwrap().contains(&staging),
        "{reply}"
    );
    w.command(BOB_TG, "/whoami@Latchkey_Bot");
    let whoami = |b: &Value| {
        b["text"]
            .as_str()
            .unwrap()
            .starts_with("Your Telegram user id")
    };
    let reply = eventually("the /whoami reply", || {
        w.tg.bodies("sendMessage").into_iter().find(whoami)
    })
    .await;
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains(&BOB_TG.to_string()),
        "{reply}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replies =
        w.tg.bodies("sendMessage")
            .into_iter()
            .filter(whoami)
            .count();
    assert_eq!(replies, 1, "/whoami@other_bot is for another bot");
    w.assert_no_tokens().await;
    w.d.stop().await;
}

#[tokio::test]
async fn telegram_webhook_mode_checks_the_secret_token() {
    let w = world(Setup {
        discord: false,
        webhook: true,
        ..Setup::default()
    })
    .await;
    let set = eventually("setWebhook", || {
        w.tg.bodies("setWebhook").into_iter().next()
    })
    .await;
    assert_eq!(set["url"], WEBHOOK_URL);
    assert_eq!(set["secret_token"], WEBHOOK_SECRET);

    let (lease, approval) = w.pending("/production/db", "webhook").await;
    let card = w.tg_card(&approval).await;
    let (yes, _) = tg_buttons(&card);
    let update = tap_update(1, "cbq-hook", ALICE_TG, "alice", &card, &yes).to_string();

    // Wrong, empty or missing secret: 401 and nothing happens.
    for secret in [None, Some(""), Some("wrong"), Some(&WEBHOOK_SECRET[1..])] {
        assert_eq!(
            w.webhook(&update, secret).await,
            StatusCode::UNAUTHORIZED,
            "{secret:?}"
        );
    }
    assert_eq!(
        w.webhook("not json", Some(WEBHOOK_SECRET)).await,
        StatusCode::BAD_REQUEST
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.tg.bodies("answerCallbackQuery").is_empty());
    assert_eq!(w.lease(&lease).await["state"], "pending");
    assert!(w.events("approval.voted").await.is_empty());
    // No poller runs in webhook mode.
    assert!(w.tg.calls_to("getUpdates").is_empty());

    // The right secret: the tap counts.
    assert_eq!(
        w.webhook(&update, Some(WEBHOOK_SECRET)).await,
        StatusCode::OK
    );
    w.lease_becomes(&lease, "active").await;
    let answer = w.answer("cbq-hook").await;
    assert!(
        answer["text"].as_str().unwrap().contains("approved"),
        "{answer}"
    );
    let closed = w
        .tg_card_showing(&approval, "Outcome: ✅ approved by alice")
        .await;
    assert!(closed.get("reply_markup").is_none(), "{closed}");

    // Telegram re-delivers an update it is unsure about: it counts once.
    let again = tap_update(1, "cbq-hook-2", ALICE_TG, "alice", &card, &yes).to_string();
    assert_eq!(
        w.webhook(&again, Some(WEBHOOK_SECRET)).await,
        StatusCode::OK
    );
    let answer = w.answer("cbq-hook-2").await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("already approved by alice at"),
        "{answer}"
    );
    assert_eq!(w.events("approval.voted").await.len(), 1);

    // A person listed under two approver names: the entry that may decide the path counts.
    let (lease, approval) = w.pending("/production/db", "carol's turn").await;
    let card = w.tg_card(&approval).await;
    let (yes, _) = tg_buttons(&card);
    let update = tap_update(2, "cbq-carol", CAROL_TG, "carol", &card, &yes).to_string();
    assert_eq!(
        w.webhook(&update, Some(WEBHOOK_SECRET)).await,
        StatusCode::OK
    );
    let answer = w.answer("cbq-carol").await;
    assert_eq!(answer["show_alert"], false, "{answer}");
    w.lease_becomes(&lease, "active").await;
    w.tg_card_showing(&approval, "Outcome: ✅ approved by carol-prod")
        .await;
    assert!(w.tg.calls_to("getUpdates").is_empty());
    w.assert_no_tokens().await;
    w.d.stop().await;
}

#[tokio::test]
async fn discord_signed_click_denies_and_updates_the_card() {
    let w = world(Setup {
        telegram: false,
        ..Setup::default()
    })
    .await;
    // PING: signed → PONG; unsigned, wrongly signed or altered → 401.
    let ping = json!({"type": 1, "id": "1300000000000000001", "application_id": APP_ID.to_string(),
                      "token": "ping-token", "version": 1})
    .to_string();
    let (s, b) = w.interact(&ping, Some(&discord_key())).await;
    assert_eq!((s, &b), (StatusCode::OK, &json!({"type": 1})));
    let other = SigningKey::from_bytes(&[8u8; 32]);
    assert_eq!(w.interact(&ping, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.interact(&ping, Some(&other)).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (lease, approval) = w.pending("/production/db", "hotfix").await;
    let msg = w.dc_card(&approval).await;
    let post =
        w.dc.calls_with("POST")
            .into_iter()
            .find(|c| c.status == 200)
            .unwrap();
    assert_eq!(
        post.path,
        format!("/api/v10/channels/{DC_CHANNEL}/messages")
    );
    assert_eq!(post.body["allowed_mentions"], json!({"parse": []}));
    let (yes, no) = dc_buttons(&msg);
    assert_eq!(
        bots::callback::decode(&w.cb_key, &yes).unwrap(),
        (approval.clone(), bots::Decision::Approve)
    );
    assert_eq!(
        bots::callback::decode(&w.cb_key, &no).unwrap(),
        (approval.clone(), bots::Decision::Deny)
    );

    // Bob clicks Deny; unsigned, badly signed or altered clicks are refused first.
    let deny = click(BOB_DC, "bob", &msg, &no);
    assert_eq!(w.interact(&deny, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.interact(&deny, Some(&other)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let timestamp = "1777636800";
    let signed = [timestamp.as_bytes(), deny.as_bytes()].concat();
    let sig = hex(&discord_key().sign(&signed).to_bytes());
    let altered = deny.replace(BOB_DC, ALICE_DC);
    let r = w
        .http
        .post(format!("{}/bots/discord/interactions", w.d.base))
        .header("X-Signature-Ed25519", &sig)
        .header("X-Signature-Timestamp", timestamp)
        .body(altered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A genuine click captured and replayed an hour later is refused too.
    let hour_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
    let (s, _) = w.interact_at(&deny, Some(&discord_key()), hour_ago).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a stale interaction");
    assert_eq!(w.lease(&lease).await["state"], "pending");
    assert!(w.events("approval.voted").await.is_empty());

    let (s, b) = w.interact(&deny, Some(&discord_key())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["type"], 7, "UPDATE_MESSAGE: {b}");
    assert_eq!(b["data"]["components"], json!([]), "no buttons: {b}");
    assert_eq!(b["data"]["allowed_mentions"], json!({"parse": []}));
    let content = b["data"]["content"].as_str().unwrap();
    assert!(
        content.contains("Outcome: ❌ denied by bob at"),
        "{content}"
    );
    assert_eq!(w.lease(&lease).await["state"], "denied");
    assert_eq!(w.events("approval.denied").await.len(), 1);
    let voted = w.events("approval.voted").await;
    assert_eq!(voted[0]["details"]["via"], "discord");
    assert_eq!(voted[0]["details"]["decision"], "deny");

    // The posted message itself is edited too (every copy shows the outcome).
    let edited = w.dc_card_showing(&approval, "❌ denied by bob").await;
    assert_eq!(edited["components"], json!([]));
    let patch = w.dc.calls_with("PATCH");
    assert!(
        patch.iter().any(|c| c.path
            == format!(
                "/api/v10/channels/{DC_CHANNEL}/messages/{}",
                msg["id"].as_str().unwrap()
            )),
        "{patch:?}"
    );
    w.assert_no_tokens().await;
    w.d.stop().await;
}

#[tokio::test]
async fn quorum_of_two_across_telegram_and_discord() {
    let w = world(Setup::default()).await;
    let (lease, approval) = w.pending("/quorum/key", "two people").await;
    let card = w.tg_card(&approval).await;
    let msg = w.dc_card(&approval).await;
    assert!(card["text"].as_str().unwrap().contains("Votes: 0/2"));

    // Alice approves in Telegram: counted, both cards show 1/2 and keep their buttons.
    let (yes, _) = tg_buttons(&card);
    let qid = w.tap(ALICE_TG, "alice", &card, &yes);
    let answer = w.answer(&qid).await;
    assert_eq!(answer["text"], "vote counted (1/2)");
    let card1 = w.tg_card_showing(&approval, "Votes: 1/2").await;
    assert!(card1.get("reply_markup").is_some(), "{card1}");
    let msg1 = w.dc_card_showing(&approval, "Votes: 1/2").await;
    assert_eq!(
        msg1["components"][0]["components"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(w.lease(&lease).await["state"], "pending");

    // Bob approves in Discord: quorum, both cards closed.
    let (dc_yes, _) = dc_buttons(&msg);
    let (s, b) = w
        .interact(&click(BOB_DC, "bob", &msg, &dc_yes), Some(&discord_key()))
        .await;
    assert_eq!((s, b["type"].as_u64()), (StatusCode::OK, Some(7)), "{b}");
    assert!(
        b["data"]["content"]
            .as_str()
            .unwrap()
            .contains("Outcome: ✅ approved by bob"),
        "{b}"
    );
    assert_eq!(w.lease(&lease).await["state"], "active");
    let closed = w
        .tg_card_showing(&approval, "Outcome: ✅ approved by bob")
        .await;
    assert!(closed["text"].as_str().unwrap().contains("Votes: 2/2"));
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    let closed = w
        .dc_card_showing(&approval, "Outcome: ✅ approved by bob")
        .await;
    assert_eq!(closed["components"], json!([]));
    let voted = w.events("approval.voted").await;
    let mut via: Vec<&str> = voted
        .iter()
        .map(|e| e["details"]["via"].as_str().unwrap())
        .collect();
    via.sort();
    assert_eq!(via, ["discord", "telegram"]);
    w.assert_no_tokens().await;
    w.d.stop().await;
}

#[tokio::test]
async fn refusals_forgeries_double_taps_and_late_taps() {
    let w = world(Setup::default()).await;
    let (lease, approval) = w.pending("/quorum/key", "").await;
    let card = w.tg_card(&approval).await;
    let (yes, no) = tg_buttons(&card);

    // Mallory is nobody; Carol decides staging only: both refused with an alert, audited.
    for (user, name) in [(MALLORY_TG, "mallory"), (CAROL_TG, "carol")] {
        let qid = w.tap(user, name, &card, &yes);
        let answer = w.answer(&qid).await;
        assert_eq!(answer["show_alert"], true, "{answer}");
        assert!(
            answer["text"].as_str().unwrap().contains("not an approver"),
            "{answer}"
        );
    }
    let rejected = w.events("approval.vote_rejected").await;
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let mut ids: Vec<&str> = rejected
        .iter()
        .map(|e| e["actor_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["3333", "6666"]);
    assert!(rejected.iter().all(|e| e["actor_type"] == "telegram"));
    assert!(
        rejected
            .iter()
            .all(|e| e["details"]["approval_id"] == approval)
    );

    // Forged callback data (decision flipped, or another tag): refused, audited.
    let flipped = yes.replacen(":y:", ":n:", 1);
    let retagged = format!("{}AAAAAAAAAAA", &yes[..yes.len() - 11]);
    for data in [flipped, retagged, "a:../x:y:AAAAAAAAAAA".to_string()] {
        let qid = w.tap(ALICE_TG, "alice", &card, &data);
        let answer = w.answer(&qid).await;
        assert_eq!(answer["show_alert"], true, "{answer}");
        assert!(
            answer["text"].as_str().unwrap().contains("not valid"),
            "{answer}"
        );
    }
    assert_eq!(w.events("approval.vote_rejected").await.len(), 5);
    assert_eq!(w.lease(&lease).await["state"], "pending");
    assert!(w.events("approval.voted").await.is_empty());

    // Discord: a non-approver and a forged button get an ephemeral refusal.
    let msg = w.dc_card(&approval).await;
    let (dc_yes, _) = dc_buttons(&msg);
    let (s, b) = w
        .interact(
            &click(MALLORY_DC, "mallory", &msg, &dc_yes),
            Some(&discord_key()),
        )
        .await;
    assert_eq!((s, b["type"].as_u64()), (StatusCode::OK, Some(4)), "{b}");
    assert_eq!(b["data"]["flags"], 64, "ephemeral: {b}");
    assert!(
        b["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not an approver")
    );
    let forged = dc_yes.replacen(":y:", ":n:", 1);
    let (_, b) = w
        .interact(
            &click(ALICE_DC, "alice", &msg, &forged),
            Some(&discord_key()),
        )
        .await;
    assert_eq!(
        (b["type"].as_u64(), b["data"]["flags"].as_u64()),
        (Some(4), Some(64))
    );
    assert!(
        b["data"]["content"].as_str().unwrap().contains("not valid"),
        "{b}"
    );
    assert_eq!(w.events("approval.vote_rejected").await.len(), 7);

    // A double tap (two callback queries in one batch) counts once.
    let first = w.next_update.fetch_add(2, Ordering::SeqCst);
    w.tg.push_update(tap_update(first, "dbl-1", ALICE_TG, "alice", &card, &yes));
    w.tg.push_update(tap_update(
        first + 1,
        "dbl-2",
        ALICE_TG,
        "alice",
        &card,
        &yes,
    ));
    let mut texts = vec![
        w.answer("dbl-1").await["text"]
            .as_str()
            .unwrap()
            .to_string(),
        w.answer("dbl-2").await["text"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    texts.sort();
    assert_eq!(
        texts,
        ["vote counted (1/2)", "you already voted; it counts once"]
    );
    assert_eq!(w.events("approval.voted").await.len(), 1);

    // Bob decides; the edit of the Telegram card fails once, so that copy keeps its buttons.
    w.tg_card_showing(&approval, "Votes: 1/2").await;
    w.tg.fail_next(
        "editMessageText",
        1,
        400,
        "Bad Request: message can't be edited",
        None,
    );
    let qid = w.tap(BOB_TG, "bob", &card, &yes);
    assert!(
        w.answer(&qid).await["text"]
            .as_str()
            .unwrap()
            .starts_with("approved")
    );
    w.lease_becomes(&lease, "active").await;
    eventually("the failed edit", || {
        w.tg.calls_to("editMessageText")
            .iter()
            .any(|c| c.status == 400)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stale = w.tg_card(&approval).await;
    assert!(stale.get("reply_markup").is_some(), "still stale: {stale}");

    // A tap after the decision: "already approved by bob at …", and the tapped card closes.
    let qid = w.tap(ALICE_TG, "alice", &stale, &no);
    let answer = w.answer(&qid).await;
    assert_eq!(answer["show_alert"], true, "{answer}");
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("already approved by bob at "),
        "{answer}"
    );
    let closed = w
        .tg_card_showing(&approval, "Outcome: ✅ approved by bob")
        .await;
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    let (_, b) = w
        .interact(
            &click(ALICE_DC, "alice", &msg, &dc_yes),
            Some(&discord_key()),
        )
        .await;
    assert!(
        b["data"]["content"]
            .as_str()
            .unwrap()
            .contains("already approved by bob"),
        "{b}"
    );
    assert_eq!(w.lease(&lease).await["state"], "active");
    assert_eq!(w.events("approval.voted").await.len(), 2);
    w.assert_no_tokens().await;
    w.d.stop().await;
}

#[tokio::test]
async fn rate_limits_delay_the_card_but_never_the_api() {
    let w = world(Setup::default()).await;
    w.tg.rate_limit_next("sendMessage", 2);
    w.dc.fail_next("POST", Failure::RateLimited, 2);

    let started = Instant::now();
    let (lease, approval) = w.pending("/production/db", "while throttled").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the request does not wait for the platforms"
    );
    // The API answers at once while the channels wait out the rate limits.
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(w.lease(&lease).await["state"], "pending");
        let (s, _) = w.d.get(&format!("/v1/approvals/{approval}")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(t.elapsed() < Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The cards arrive once the platforms recover, after waiting retry_after each time.
    let card = w.tg_card(&approval).await;
    let msg = w.dc_card(&approval).await;
    let sends = w.tg_sends(&approval);
    let statuses: Vec<u16> = sends.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    for pair in sends.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(900),
            "retry_after honoured"
        );
    }
    let posts = w.dc.calls_with("POST");
    let statuses: Vec<u16> = posts.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    for pair in posts.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(900),
            "Discord's retry_after honoured"
        );
    }
    assert_eq!(w.lease(&lease).await["state"], "pending");
    let (s, r) = w.d.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a rate limit is not a misconfiguration: {r}"
    );

    // getUpdates itself is rate limited once: /readyz says so, then recovers.
    w.tg.rate_limit_next("getUpdates", 1);
    w.readyz_shows("channel:telegram", |v| v.starts_with("rate limited"))
        .await;
    let r = w.readyz_shows("channel:telegram", |v| v == "ok").await;
    assert_eq!(r["status"], "ready");

    // Discord fails once with a 500 when the card is edited; the edit is retried.
    w.dc.fail_next("PATCH", Failure::ServerError, 1);
    let (yes, _) = tg_buttons(&card);
    let qid = w.tap(ALICE_TG, "alice", &card, &yes);
    w.answer(&qid).await;
    w.lease_becomes(&lease, "active").await;
    let closed = w
        .dc_card_showing(&approval, "Outcome: ✅ approved by alice")
        .await;
    assert_eq!(closed["components"], json!([]));
    assert_eq!(closed["id"], msg["id"]);
    let patches: Vec<u16> = w.dc.calls_with("PATCH").iter().map(|c| c.status).collect();
    assert_eq!(patches, [500, 200]);
    w.tg_card_showing(&approval, "Outcome: ✅ approved by alice")
        .await;
    w.assert_no_tokens().await;
    w.d.stop().await;
}

#[tokio::test]
async fn markup_in_a_reason_is_shown_literally() {
    let w = world(Setup::default()).await;
    let reason = "*bold* <b>x</b> [link](http://evil) @everyone _u_ `c`";
    let (_, approval) = w.pending("/markup/key", reason).await;
    let card = w.tg_card(&approval).await;
    let send = w.tg_sends(&approval).pop().unwrap().body;
    assert!(send.get("parse_mode").is_none(), "plain text: {send}");
    assert!(send.get("entities").is_none(), "{send}");
    assert_eq!(send["link_preview_options"]["is_disabled"], true, "{send}");
    assert!(
        card["text"]
            .as_str()
            .unwrap()
            .contains(&format!("Why: {reason}\n")),
        "{card}"
    );

    let msg = w.dc_card(&approval).await;
    let content = msg["content"].as_str().unwrap();
    let escaped =
        "Why: \\*bold\\* <b\\>x</b\\> \\[link\\](http://evil) @\u{200B}everyone \\_u\\_ \\`c\\`";
    assert!(content.contains(escaped), "{content}");
    assert!(!content.contains("@everyone"));
    assert_eq!(msg["allowed_mentions"], json!({"parse": []}));

    // The decided cards (edit and click answer) are just as literal.
    let (_, no) = dc_buttons(&msg);
    let (_, b) = w
        .interact(&click(ALICE_DC, "alice", &msg, &no), Some(&discord_key()))
        .await;
    assert!(
        b["data"]["content"].as_str().unwrap().contains(escaped),
        "{b}"
    );
    assert_eq!(b["data"]["allowed_mentions"], json!({"parse": []}));
    w.tg_card_showing(&approval, "denied by alice").await;
    let edit =
        w.tg.bodies("editMessageText")
            .into_iter()
            .rfind(|b| b["text"].as_str().unwrap().contains(&approval))
            .unwrap();
    assert!(edit.get("parse_mode").is_none(), "{edit}");
    assert!(edit["text"].as_str().unwrap().contains(reason));
    let edited = w.dc_card_showing(&approval, "denied by alice").await;
    assert_eq!(edited["allowed_mentions"], json!({"parse": []}));
    w.d.stop().await;
}

#[tokio::test]
async fn expiry_closes_every_card() {
    let w = world(Setup::default()).await;
    let (lease, approval) = w.pending("/short/key", "in a hurry").await;
    let card = w.tg_card(&approval).await;
    w.dc_card(&approval).await;
    w.lease_becomes(&lease, "expired").await;
    let closed = w.tg_card_showing(&approval, "Outcome: ⌛ expired").await;
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    let msg = w.dc_card_showing(&approval, "Outcome: ⌛ expired").await;
    assert_eq!(msg["components"], json!([]));
    // A late tap is told so, and changes nothing.
    let (yes, _) = tg_buttons(&card);
    let qid = w.tap(ALICE_TG, "alice", &card, &yes);
    let answer = w.answer(&qid).await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("already expired"),
        "{answer}"
    );
    assert_eq!(w.lease(&lease).await["state"], "expired");

    // A pending request withdrawn by revoking its lease closes its cards as well.
    let (lease, approval) = w.pending("/production/db", "never mind").await;
    let card = w.tg_card(&approval).await;
    let msg = w.dc_card(&approval).await;
    let (s, b) =
        w.d.call(
            Method::DELETE,
            &format!("/v1/leases/{lease}"),
            Some(&w.agent),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    w.tg_card_showing(&approval, "Outcome: ⌛ expired by lease revocation")
        .await;
    let closed =
        w.tg.message(MAIN_CHAT, card["message_id"].as_i64().unwrap())
            .unwrap();
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    w.dc_card_showing(&approval, "Outcome: ⌛ expired by lease revocation")
        .await;
    let closed =
        w.dc.message(&DC_CHANNEL.to_string(), msg["id"].as_str().unwrap())
            .unwrap();
    assert_eq!(closed["components"], json!([]));
    w.d.stop().await;
}

#[tokio::test]
async fn readiness_reports_each_channel_check() {
    let good = world(Setup::default()).await;
    let (s, r) = good.d.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "ready");
    assert_eq!(r["checks"]["channel:telegram"], "ok");
    assert_eq!(r["checks"]["channel:discord"], "ok");
    assert_eq!(good.tg.calls_to("getMe").len(), 1);

    // A chat that refuses the card is reported, and stays reported when the approval
    // closes (there is no copy there to edit, which says nothing about the chat).
    good.tg
        .fail_next("sendMessage", 1, 400, "Bad Request: chat not found", None);
    let (lease, approval) = good.pending("/production/db", "lost").await;
    let target = format!("channel:telegram:{MAIN_CHAT}");
    good.readyz_shows(&target, |v| v.contains("chat not found"))
        .await;
    let msg = good.dc_card(&approval).await;
    let (_, no) = dc_buttons(&msg);
    good.interact(&click(BOB_DC, "bob", &msg, &no), Some(&discord_key()))
        .await;
    good.lease_becomes(&lease, "denied").await;
    good.dc_card_showing(&approval, "denied by bob").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, r) = good.d.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert_eq!(
        r["checks"][&target],
        "channel misconfigured: Telegram: Bad Request: chat not found"
    );
    good.d.stop().await;

    let bad = world(Setup {
        tg_token: BAD_TG_TOKEN.into(),
        dc_token: BAD_DC_TOKEN.into(),
        ..Setup::default()
    })
    .await;
    let until = Instant::now() + WAIT;
    let r = loop {
        let (s, r) = bad.d.call(Method::GET, "/readyz", None, None).await;
        let checked = ["channel:telegram", "channel:discord"]
            .iter()
            .all(|c| r["checks"][c].as_str().is_some_and(|v| v != "starting"));
        if checked {
            assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{r}");
            break r;
        }
        assert!(Instant::now() < until, "never checked: {r}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(r["status"], "not_ready");
    assert_eq!(
        r["checks"]["channel:telegram"],
        "channel misconfigured: the Telegram bot token was refused"
    );
    assert_eq!(
        r["checks"]["channel:discord"],
        "channel misconfigured: the Discord bot token was refused"
    );
    assert_eq!(r["checks"]["store"], "ok");
    let me = bad.tg.calls_to("getMe");
    assert!(!me.is_empty() && me.iter().all(|c| !c.token_ok && c.status == 401));
    // The API itself still works, and no token shows anywhere.
    let (_, approval) = bad.pending("/production/db", "no channel").await;
    let (s, _) = bad.d.get(&format!("/v1/approvals/{approval}")).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    bad.assert_no_tokens().await;
    bad.d.stop().await;
}
