//! The PostgreSQL backend's LISTEN connection (see `pg.rs`, item 9): one dedicated connection
//! per backend, LISTENing on every channel asked for, each notification fanned out to a
//! broadcast channel; when the connection is lost it reconnects (backing off up to 2 s) and
//! LISTENs again. A notification sent while it is disconnected is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::{AsyncMessage, NoTls};

use super::pg::{PgOptions, session_setup};

/// Capacity of each channel's broadcast (a slow receiver sees `Lagged`).
const FANOUT: usize = 1024;

type Channels = Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>;

/// A request to LISTEN on a channel, answered once it is in place.
type ListenRequest = (String, std::sync::mpsc::SyncSender<()>);

/// The handle to the LISTEN task (which ends when this is dropped).
pub(super) struct Listener {
    channels: Channels,
    requests: mpsc::UnboundedSender<ListenRequest>,
}

/// `LISTEN "name"` with the name quoted as an identifier.
fn listen_sql(channel: &str) -> String {
    format!("LISTEN \"{}\"", channel.replace('"', "\"\""))
}

impl Listener {
    pub(super) fn start(
        handle: &Handle,
        config: tokio_postgres::Config,
        opts: PgOptions,
    ) -> Listener {
        let channels = Channels::default();
        let (requests, rx) = mpsc::unbounded_channel();
        handle.spawn(run(config, opts, channels.clone(), rx));
        Listener { channels, requests }
    }

    /// A receiver of `channel`'s notifications; waits up to `bound` for the LISTEN.
    pub(super) fn listen(&self, channel: &str, bound: Duration) -> broadcast::Receiver<String> {
        let rx = self
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(channel.to_string())
            .or_insert_with(|| broadcast::channel(FANOUT).0)
            .subscribe();
        let (ack, acked) = std::sync::mpsc::sync_channel(1);
        if self.requests.send((channel.to_string(), ack)).is_ok() {
            // Disconnected now: the reconnection will LISTEN; don't wait forever for it.
            let _ = acked.recv_timeout(bound);
        }
        rx
    }
}

/// Connects, LISTENs and forwards, over and over, until the [`Listener`] is dropped.
async fn run(
    config: tokio_postgres::Config,
    opts: PgOptions,
    channels: Channels,
    mut requests: mpsc::UnboundedReceiver<ListenRequest>,
) {
    let mut backoff = Duration::from_millis(50);
    // Requests that arrived while disconnected, acknowledged once LISTENing again.
    let mut waiting: Vec<std::sync::mpsc::SyncSender<()>> = Vec::new();
    loop {
        let connected = tokio::time::timeout(opts.connect_timeout, config.connect(NoTls)).await;
        let Ok(Ok((client, mut connection))) = connected else {
            tracing::warn!(
                "PostgreSQL LISTEN connection to {} failed; retrying in {} ms",
                opts.url.redacted(),
                backoff.as_millis()
            );
            // Keep taking requests (their channels are registered already).
            let sleep = tokio::time::sleep(backoff);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    r = requests.recv() => match r {
                        Some((_, ack)) => waiting.push(ack),
                        None => return,
                    },
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        let (notes_tx, mut notes) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            while let Some(Ok(msg)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                if let AsyncMessage::Notification(n) = msg
                    && notes_tx.send(n).is_err()
                {
                    break;
                }
            }
        });
        let names: Vec<String> = channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        let mut setup = session_setup(&opts);
        for name in &names {
            setup.push_str("; ");
            setup.push_str(&listen_sql(name));
        }
        if client.batch_execute(&setup).await.is_err() {
            driver.abort();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        }
        backoff = Duration::from_millis(50);
        for ack in waiting.drain(..) {
            let _ = ack.try_send(());
        }
        loop {
            tokio::select! {
                n = notes.recv() => match n {
                    Some(n) => {
                        let tx = channels
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get(n.channel())
                            .cloned();
                        if let Some(tx) = tx {
                            let _ = tx.send(n.payload().to_string());
                        }
                    }
                    // The connection ended: reconnect.
                    None => break,
                },
                r = requests.recv() => match r {
                    Some((name, ack)) => {
                        if client.batch_execute(&listen_sql(&name)).await.is_ok() {
                            let _ = ack.try_send(());
                        } else {
                            waiting.push(ack);
                        }
                    }
                    None => {
                        driver.abort();
                        return;
                    }
                },
            }
        }
        driver.abort();
        tracing::warn!(
            "PostgreSQL LISTEN connection to {} lost; reconnecting",
            opts.url.redacted()
        );
    }
}
