//! Approval channels in the daemon: builds cards from approvals, posts them to the Telegram
//! chats and Discord channels whose routes match the secret's path, and edits every copy when
//! the approval gains a vote or closes. Each target has its own queue and retries with backoff
//! (honouring `retry_after`), so one platform failing never blocks another or the API.

pub mod discord;
mod dispatch;
pub mod telegram;
pub mod votes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bots::{ApprovalChannel, Card, ChannelError, Outcome, OutcomeKind};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::lease::ApprovalState;
use crate::scope::Glob;
use crate::store::{ApprovalRecord, Store};

fn ts(unix: i64) -> String {
    crate::util::rfc3339_of(unix).unwrap_or_default()
}

/// The card an approval shows, built from server-side state only.
pub fn card(a: &ApprovalRecord) -> Card {
    let t = &a.tally;
    let outcome = match t.state {
        ApprovalState::Pending => None,
        s => Some(Outcome {
            kind: match s {
                ApprovalState::Approved => OutcomeKind::Approved,
                ApprovalState::AutoGranted => OutcomeKind::AutoGranted,
                ApprovalState::Denied => OutcomeKind::Denied,
                _ => OutcomeKind::Expired,
            },
            // A cancelled approval's `decided_by` is the id of whoever revoked the lease, which
            // means nothing in a chat; the card has no "cancelled" outcome, so say why it closed.
            decided_by: if s == ApprovalState::Cancelled {
                Some("lease revocation".into())
            } else {
                t.decided_by.clone()
            },
            decided_at: t.decided_at.map(ts).unwrap_or_default(),
        }),
    };
    Card {
        approval_id: a.id.clone(),
        requester: a.agent_name.clone(),
        trust_tier: a.trust_tier,
        secret_path: a.path.clone(),
        sensitivity: a.sensitivity.clone(),
        action: a.action.as_str().to_string(),
        ttl_seconds: a.ttl_seconds,
        uses: a.uses,
        keys: a.keys.clone(),
        reason: a.reason.clone(),
        requested_at: ts(a.requested_at),
        deadline: ts(t.deadline),
        votes: t.approvals(),
        votes_needed: t.quorum,
        outcome,
    }
}

/// The key that MACs button data: derived from the keyring's signing key.
pub fn callback_key(store: &Store) -> Vec<u8> {
    let ring = store.keyring();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(ring.signing_key())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(b"latchkey approval buttons v1");
    mac.finalize().into_bytes().to_vec()
}

/// One place cards go: a channel bound to one chat or channel, for paths matching any of its
/// patterns. Routes naming the same chat share one target, so a card matching several of
/// them is posted there once (and each copy is edited once).
struct Target {
    name: String,
    patterns: Vec<Glob>,
    channel: Arc<dyn ApprovalChannel>,
}

/// Adds `pattern` to the target called `name`, creating the target with `make` if needed.
fn add_route(
    targets: &mut Vec<Target>,
    name: String,
    pattern: &str,
    make: impl FnOnce() -> anyhow::Result<Arc<dyn ApprovalChannel>>,
) -> anyhow::Result<()> {
    let glob = Glob::parse(pattern).map_err(anyhow::Error::msg)?;
    if let Some(t) = targets.iter_mut().find(|t| t.name == name) {
        t.patterns.push(glob);
    } else {
        targets.push(Target {
            name,
            patterns: vec![glob],
            channel: make()?,
        });
    }
    Ok(())
}

/// Health of each channel, for `/readyz`.
#[derive(Clone, Default)]
pub struct Status(Arc<Mutex<BTreeMap<String, String>>>);

impl Status {
    /// Records a channel's state (`ok` or the problem).
    pub fn set(&self, name: &str, state: String) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(name.to_string(), state);
        }
    }

    /// Every channel's state.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The running channels.
#[derive(Clone)]
pub struct Hub {
    /// Telegram, when configured.
    pub telegram: Option<Arc<bots::telegram::TelegramChannel>>,
    /// Discord, when configured.
    pub discord: Option<Arc<bots::discord::DiscordChannel>>,
    /// One Discord client per routed channel, for plain notices (announcements).
    pub discord_notices: Arc<Vec<(u64, Arc<bots::discord::DiscordChannel>)>>,
    /// Health for `/readyz`.
    pub status: Status,
    /// The button MAC key.
    pub key: Arc<Vec<u8>>,
    /// The Telegram bot's username, once `getMe` has answered (for `/cmd@name` in groups).
    pub telegram_username: Arc<Mutex<Option<String>>>,
    queues: Arc<Vec<dispatch::Queue>>,
    shutdown: watch::Receiver<bool>,
    metrics: crate::metrics::Metrics,
}

/// A channel's state in `/readyz` until its first check has answered.
pub const STARTING: &str = "starting";

impl Hub {
    /// Builds the configured channels (a bad configuration is an error at start) and starts
    /// one queue per target plus the dispatcher that turns notices into posts and edits.
    pub fn start(
        cfg: &Config,
        store: &Store,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Hub> {
        let key = callback_key(store);
        let status = Status::default();
        let mut targets = Vec::new();
        let mut telegram = None;
        let tg = &cfg.channels.telegram;
        if tg.enabled {
            let make = |chats: Vec<i64>| {
                bots::telegram::TelegramChannel::new(bots::telegram::TelegramConfig {
                    token: tg.token.0.clone().into(),
                    api_url: Some(tg.api_url.clone()),
                    chats,
                    callback_key: key.clone().into(),
                })
                .map_err(|e| anyhow::anyhow!("Telegram channel: {e}"))
            };
            let mut all: Vec<i64> = tg.routes.iter().map(|r| r.chat_id).collect();
            all.sort_unstable();
            all.dedup();
            telegram = Some(Arc::new(make(all)?));
            status.set("telegram", STARTING.into());
            for r in &tg.routes {
                add_route(
                    &mut targets,
                    format!("telegram:{}", r.chat_id),
                    &r.pattern,
                    || Ok(Arc::new(make(vec![r.chat_id])?)),
                )?;
            }
        }
        let mut discord = None;
        let mut discord_notices = Vec::new();
        let dc = &cfg.channels.discord;
        if dc.enabled {
            let make = |channels: Vec<u64>| {
                bots::discord::DiscordChannel::new(bots::discord::DiscordConfig {
                    bot_token: dc.bot_token.0.clone(),
                    application_id: dc.application_id,
                    public_key_hex: dc.public_key.clone(),
                    api_url: (!dc.api_url.is_empty()).then(|| dc.api_url.clone()),
                    channels,
                    callback_key: key.clone(),
                })
                .map_err(|e| anyhow::anyhow!("Discord channel: {e}"))
            };
            let mut all: Vec<u64> = dc.routes.iter().map(|r| r.channel_id).collect();
            all.sort_unstable();
            all.dedup();
            discord = Some(Arc::new(make(all)?));
            status.set("discord", STARTING.into());
            for r in &dc.routes {
                add_route(
                    &mut targets,
                    format!("discord:{}", r.channel_id),
                    &r.pattern,
                    || Ok(Arc::new(make(vec![r.channel_id])?)),
                )?;
                if !discord_notices.iter().any(|(id, _)| *id == r.channel_id) {
                    discord_notices.push((r.channel_id, Arc::new(make(vec![r.channel_id])?)));
                }
            }
        }
        let mut queues = Vec::new();
        for t in targets {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push(dispatch::Queue {
                target: t.name.clone(),
                patterns: t.patterns.clone(),
                tx,
            });
            tokio::spawn(dispatch::run_target(
                t,
                rx,
                store.clone(),
                status.clone(),
                shutdown.clone(),
            ));
        }
        let hub = Hub {
            telegram,
            discord,
            discord_notices: Arc::new(discord_notices),
            status,
            key: Arc::new(key),
            telegram_username: Arc::default(),
            queues: Arc::new(queues),
            shutdown: shutdown.clone(),
            metrics: store.metrics().clone(),
        };
        tokio::spawn(dispatch::dispatch(
            hub.queues.clone(),
            store.clone(),
            store.notices().subscribe_local(),
            shutdown,
        ));
        Ok(hub)
    }

    /// Checks every channel's credentials (getMe / users/@me) and records the result. A
    /// channel that could not be reached (as opposed to one that refused us) is checked again
    /// with backoff until it answers or the daemon stops, so `/readyz` does not keep reporting
    /// a network failure from start-up.
    pub async fn check(&self) {
        let telegram = async {
            if let Some(t) = &self.telegram
                && let Some(name) = self.check_until_answered("telegram", || t.check()).await
                && let Ok(mut u) = self.telegram_username.lock()
            {
                *u = Some(name);
            }
        };
        let discord = async {
            if let Some(d) = &self.discord {
                self.check_until_answered("discord", || d.check()).await;
            }
        };
        tokio::join!(telegram, discord);
    }

    /// Runs `check` until it succeeds or fails for good; returns the bot's name on success.
    async fn check_until_answered<F, Fut>(&self, name: &str, check: F) -> Option<String>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<String, ChannelError>>,
    {
        let mut shutdown = self.shutdown.clone();
        let mut wait = Duration::from_secs(1);
        loop {
            let r = tokio::time::timeout(Duration::from_secs(15), check()).await;
            match &r {
                Ok(answer) => self
                    .metrics
                    .chat_call(name, crate::metrics::ChatCall::Check, answer),
                Err(_) => self
                    .metrics
                    .chat_call_timed_out(name, crate::metrics::ChatCall::Check),
            }
            let (retry, bot) = match &r {
                Ok(Ok(bot)) => (false, Some(bot.clone())),
                Ok(Err(e)) => (e.is_retryable(), None),
                Err(_) => (true, None),
            };
            self.record(name, r);
            if !retry {
                return bot;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return None,
            }
            wait = (wait * 2).min(Duration::from_secs(300));
        }
    }

    fn record(
        &self,
        name: &str,
        r: Result<Result<String, ChannelError>, tokio::time::error::Elapsed>,
    ) {
        let state = match r {
            Ok(Ok(bot)) => {
                tracing::info!(channel = name, bot = %bot, "channel ready");
                "ok".to_string()
            }
            Ok(Err(e)) => {
                tracing::error!(channel = name, error = %e, "channel not ready");
                e.to_string()
            }
            Err(_) => "no answer within 15 s".to_string(),
        };
        self.status.set(name, state);
    }

    /// Is any channel configured?
    pub fn any(&self) -> bool {
        self.telegram.is_some() || self.discord.is_some()
    }

    /// Whether a `/cmd@name` command is for this bot: yes without a name, or when the name
    /// is ours (case-insensitive), or while our name is not known yet.
    pub fn telegram_command_is_ours(&self, mention: Option<&str>) -> bool {
        let Some(mention) = mention else {
            return true;
        };
        match self.telegram_username.lock().ok().and_then(|u| u.clone()) {
            Some(ours) => ours.eq_ignore_ascii_case(mention),
            None => true,
        }
    }
}
