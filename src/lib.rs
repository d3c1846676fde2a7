//! Latchkey keeps secrets for AI agents and puts a human in the loop.
//!
//! The architecture in ten lines:
//! - `config`: typed, layered configuration; `init`: data directory, keyring, first admin token.
//! - `crypto`: envelope encryption (AES-256-GCM data keys wrapped by keyring KEKs).
//! - `store`: the storage seam (redb), with a group-commit writer; every change and its
//!   audit event are written in one transaction.
//! - `audit`: hash-chained audit events; `paths` and `scope`: path rules and token scopes.
//! - `auth`: credentials → [`auth::Caller`]; `http`: the axum API and its OpenAPI document.
//! - `policy` (grants, approval matrix) and `lease` (state machines) are pure; `store` applies
//!   them; `notice` is the event stream approvals and leases publish after each commit;
//!   `deadlines` applies expiries from a queue kept in redb.
//! - `channels` (Telegram, Discord cards and taps), `subscriptions` (audit webhooks), `jobs`
//!   (cron), `announce` (notices to the chats) and `proxy` (credential injection) run beside
//!   the API; `metrics` is the daemon's Prometheus registry (`GET /metrics`).
//! - `cli`: the command-line client over HTTP (on the `latchkey-client` crate); `mcp`: the
//!   MCP server (stdio and `/mcp`), whose tools call the API with the caller's credential;
//!   `dotenv`: `.env` parsing for imports.
//! - `bots` and `webhooks` (workspace crates) hold the platform clients and webhook
//!   signing/delivery; they know nothing of the daemon.
//!
//! [`run`] is what the binary and the integration tests call.

#![forbid(unsafe_code)]

pub mod access;
pub mod announce;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod cli;
pub mod config;
pub mod console;
pub mod crypto;
pub mod deadlines;
pub mod dotenv;
pub mod error;
pub mod http;
pub mod init;
pub mod jobs;
pub mod lease;
pub mod mcp;
pub mod metrics;
pub mod notice;
pub mod paths;
pub mod policy;
pub mod proxy;
pub mod scope;
pub mod state;
pub mod store;
pub mod subscriptions;
pub mod util;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;
use crate::store::Store;

/// Opens the store `config` names: unseals the keyring with the master key (refusing a wrong
/// key before anything is opened for writing) and opens the database — the redb file of the
/// data directory, or the PostgreSQL database of `store.url`.
pub fn open_store(
    config: &Config,
) -> anyhow::Result<(
    Store,
    store::writer::WriterThread,
    zeroize::Zeroizing<[u8; 32]>,
)> {
    if config.store.backend == config::StoreBackend::Postgres {
        return open_postgres(config);
    }
    let dir = &config.data_dir;
    if !dir.join(crypto::keyring::KEYRING_FILE).exists() {
        anyhow::bail!(
            "{} is not initialised: run `latchkey init --data-dir {}` first",
            dir.display(),
            dir.display()
        );
    }
    let master = crypto::keyring::resolve_master_key(dir)?;
    let keyring = crypto::Keyring::load(dir, &master)?;
    let (store, writer) = Store::open(dir, keyring, config.store.max_batch)
        .with_context(|| format!("cannot open the database in {}", dir.display()))?;
    Ok((store, writer, master))
}

/// The PostgreSQL options of `config`.
pub fn pg_options(config: &Config) -> store::pg::PgOptions {
    let mut opts = store::pg::PgOptions::new(config.store.url.0.clone());
    opts.pool_size = config.store.pool_size;
    opts.statement_timeout = std::time::Duration::from_secs(config.store.statement_timeout_seconds);
    opts
}

/// [`open_store`] on PostgreSQL: the keyring is read from the database and unsealed before
/// the schema is touched, so a wrong master key changes nothing.
fn open_postgres(
    config: &Config,
) -> anyhow::Result<(
    Store,
    store::writer::WriterThread,
    zeroize::Zeroizing<[u8; 32]>,
)> {
    let opts = pg_options(config);
    let shown = opts.url.redacted();
    let master = crypto::keyring::resolve_master_key(&config.data_dir)?;
    let pg = store::pg::PgBackend::connect(opts)
        .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
    let keyring = match store::pg_open::load_keyring(&pg, &master) {
        Ok(Some(ring)) => ring,
        Err(e @ crypto::KeyringError::WrongMasterKey(_)) => return Err(e.into()),
        Err(e) if !e.to_string().contains("does not exist") => {
            anyhow::bail!("cannot read the keyring from the PostgreSQL database at {shown}: {e}")
        }
        Ok(None) | Err(_) => anyhow::bail!(
            "the PostgreSQL database at {shown} is not initialised: run `latchkey init --store-url …` first"
        ),
    };
    pg.migrate(crate::audit::GENESIS)
        .with_context(|| format!("cannot bring the schema at {shown} up to date"))?;
    let (store, writer) = Store::open_pg(pg, keyring, &master, config.store.max_batch)?;
    Ok((store, writer, master))
}

/// Initialises a PostgreSQL database for Latchkey: the schema (under an advisory lock), the
/// keyring sealed under the master key (kept when one is there and the key opens it), and an
/// admin token. Without a master key (`LATCHKEY_MASTER_KEY`, `LATCHKEY_MASTER_KEY_FILE` or
/// the data directory's `master.key`) one is generated into the data directory. Returns the
/// token and whether a master key was generated.
pub async fn init_postgres(config: &Config, description: &str) -> anyhow::Result<(String, bool)> {
    let opts = pg_options(config);
    let shown = opts.url.redacted();
    let (master, generated) = match crypto::keyring::resolve_master_key(&config.data_dir) {
        Ok(k) => (k, false),
        Err(crypto::KeyringError::NoMasterKey) => {
            (init::create_master_key(&config.data_dir)?, true)
        }
        Err(e) => return Err(e.into()),
    };
    let cfg = config.clone();
    let (store, writer) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let pg = store::pg::PgBackend::connect(opts)
            .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
        pg.migrate(crate::audit::GENESIS)?;
        let fresh = crypto::Keyring::generate();
        store::pg_open::save_keyring(&pg, &fresh, &master, true)?;
        let ring = store::pg_open::load_keyring(&pg, &master)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .ok_or_else(|| anyhow::anyhow!("the keyring was not stored"))?;
        Ok(Store::open_pg(pg, ring, &master, cfg.store.max_batch)?)
    })
    .await??;
    let (token, _) = store
        .create_admin_token(description.to_string(), store::Origin::system())
        .await?;
    drop(store);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .ok();
    Ok((token, generated))
}

/// How long a stopping daemon gives the requests in flight (long-polls answer at once) and
/// its background tasks; committed writes are durable whatever is cut off after it.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A data directory opened for serving: the keyring unsealed, the database opened (and locked
/// against a second daemon), nothing bound yet. `serve` opens before it binds, so a wrong
/// master key or a busy data directory is refused before the port is taken.
pub struct Opened {
    config: Config,
    store: Store,
    writer: store::writer::WriterThread,
    master: zeroize::Zeroizing<[u8; 32]>,
    metrics_listener: Option<TcpListener>,
}

/// Opens the data directory of `config` (see [`Opened`]).
pub fn open(config: Config) -> anyhow::Result<Opened> {
    let (store, writer, master) = open_store(&config)?;
    Ok(Opened {
        config,
        store,
        writer,
        master,
        metrics_listener: None,
    })
}

/// Runs the daemon on `listener` until `shutdown` completes: waiting long-polls answer at
/// once, requests in flight get [`STOP_GRACE`], and what the writer was given is committed
/// before it returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    open(config)?.serve(listener, shutdown).await
}

impl Opened {
    /// Serves `/metrics` on `listener` (when metrics are enabled) instead of binding
    /// `metrics.listen`: for tests, which bind 127.0.0.1:0.
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> Opened {
        self.metrics_listener = Some(listener);
        self
    }

    /// Serves on `listener` until `shutdown` completes (see [`run`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Opened {
            config,
            store,
            writer,
            master,
            metrics_listener,
        } = self;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
        let channels = channels::Hub::start(&config, &store, stop_rx.clone())?;
        let webhooks = subscriptions::Manager::new(store.clone(), &config.webhooks)?;
        webhooks.start_all()?;
        let files = if config.services_dir.is_empty() {
            Vec::new()
        } else {
            proxy::service::load_dir(std::path::Path::new(&config.services_dir))
                .map_err(anyhow::Error::msg)?
        };
        let proxy = proxy::Registry::new(files, store.list_services()?);
        let config = Arc::new(config);
        let jobs = jobs::Jobs::new(store.clone(), config.clone());
        let store_metrics = store.metrics().clone();
        let state = AppState::new(state::Shared {
            jobs: jobs.clone(),
            proxy,
            channels,
            webhooks: webhooks.clone(),
            store,
            config,
            master_key: Arc::new(master),
            keys_lock: Arc::new(tokio::sync::Mutex::new(())),
            stopping: stopping.clone(),
            self_url: mcp::http::self_url(listener.local_addr()?),
            metrics: store_metrics,
        });
        let metrics_server =
            http::metrics::start_separately(&state, metrics_listener, &stop_rx).await?;
        let worker = tokio::spawn(deadlines::run(state.store.clone(), stop_rx.clone()));
        tokio::spawn(jobs.run(stop_rx.clone()));
        tokio::spawn(announce::run(state.clone(), stop_rx.clone()));
        if state.channels.any() {
            let hub = state.channels.clone();
            tokio::spawn(async move { hub.check().await });
        }
        if state.channels.telegram.is_some() {
            let tg = &state.config.channels.telegram;
            if tg.mode == "polling" {
                tokio::spawn(channels::telegram::poll(state.clone(), stop_rx.clone()));
            } else if let Some(bot) = state.channels.telegram.clone() {
                let (url, secret) = (tg.webhook_url.clone(), tg.webhook_secret.0.clone());
                let status = state.channels.status.clone();
                let chat_metrics = state.metrics.clone();
                tokio::spawn(async move {
                    // Retried with backoff while Telegram is unreachable; the outcome shows in /readyz.
                    for attempt in 0u32..12 {
                        let set = bot.set_webhook(&url, &secret).await;
                        chat_metrics.chat_call("telegram", metrics::ChatCall::Webhook, &set);
                        match set {
                            Ok(()) => {
                                status.set("telegram-webhook", "ok".into());
                                return;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "setWebhook failed");
                                status.set("telegram-webhook", e.to_string());
                                if !e.is_retryable() {
                                    return;
                                }
                            }
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(1 << attempt.min(6)))
                            .await;
                    }
                });
            }
        }
        // Kept to hand this daemon's duties back at a graceful stop (dropped before the
        // writer drains).
        let duty_store = state.store.clone();
        let app = http::router(state);
        tracing::info!(addr = %listener.local_addr()?, "latchkey is listening");
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Long-polls answer at once; requests in flight get until the deadline.
            let _ = stopping_tx.send(true);
        })
        .into_future();
        tokio::pin!(server);
        let served = tokio::select! {
            served = &mut server => Some(served),
            _ = stopping.wait_for(|s| *s) => None,
        };
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        let served = match served {
            Some(served) => served,
            None => match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(served) => served,
                Err(_) => {
                    tracing::warn!(
                        "requests still running {} s after the stop was asked were cut off",
                        STOP_GRACE.as_secs()
                    );
                    Ok(())
                }
            },
        };
        served.context("the HTTP server failed")?;
        tracing::debug!("HTTP server stopped; stopping the background tasks");
        let _ = stop_tx.send(true);
        let background = async {
            let _ = worker.await;
            webhooks.shutdown().await;
            if let Some(m) = metrics_server {
                let _ = m.await;
            }
        };
        if tokio::time::timeout_at(deadline, background).await.is_err() {
            tracing::warn!("background tasks still busy at the stop deadline were cut off");
        }
        drop(webhooks);
        // Another daemon on the same PostgreSQL database takes this one's duties over at once
        // rather than after their claims run out.
        let _ = tokio::task::spawn_blocking(move || duty_store.release_duties()).await;
        // The router and the worker (and with them every store handle) are gone: the writer
        // drains what it was given and stops. A request cut off above may still hold a handle:
        // its writes are committed or not, never half, and it was never answered.
        tracing::debug!("background tasks stopped; waiting for the writer to drain");
        let drained = tokio::task::spawn_blocking(move || writer.join());
        if tokio::time::timeout_at(deadline + STOP_GRACE, drained)
            .await
            .is_err()
        {
            tracing::warn!("the writer was still busy at the stop deadline");
        }
        tracing::info!("latchkey stopped");
        Ok(())
    }
}

/// A future that completes on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives while the daemon is
/// still starting stops it gracefully instead of killing it. Needs a running tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn one(s: &mut Option<Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    let mut term = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            _ = one(&mut term) => {},
            _ = one(&mut interrupt) => {},
        }
        tracing::info!("shutdown requested (a second signal exits at once)");
        tokio::spawn(async move {
            tokio::select! {
                _ = one(&mut term) => {},
                _ = one(&mut interrupt) => {},
            }
            // Committed writes are durable (redb commits are atomic): only unanswered requests
            // are lost.
            eprintln!("latchkey: second signal: exiting now");
            std::process::exit(130);
        });
    }
}
