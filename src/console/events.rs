//! `GET /ui/events`: server-sent events from the notice stream that wakes long-polls. Each
//! approval or lease change (this daemon's, or another's on PostgreSQL) becomes one `change`
//! event, coalesced over 100 ms; the page's script turns it into htmx refreshes. The stream
//! ends when the daemon starts to stop.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::Viewer;
use crate::notice::Notice;
use crate::state::AppState;

struct Feed {
    rx: tokio::sync::broadcast::Receiver<Notice>,
    stopping: tokio::sync::watch::Receiver<bool>,
    /// On PostgreSQL a wake-up sent while the listener reconnects is lost: refresh anyway.
    recheck: Option<tokio::time::Interval>,
}

impl Feed {
    /// Waits for the next change; None when the daemon stops or the stream closes.
    async fn next(&mut self) -> Option<()> {
        loop {
            let recheck = async {
                match self.recheck.as_mut() {
                    Some(i) => {
                        i.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let got = tokio::select! {
                n = self.rx.recv() => n,
                _ = self.stopping.wait_for(|s| *s) => return None,
                _ = recheck => return Some(()),
            };
            match got {
                Ok(Notice::Approval { .. } | Notice::Lease { .. }) | Err(RecvError::Lagged(_)) => {
                    break;
                }
                Ok(Notice::Announcement { .. }) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
        // Coalesce a burst (a vote closes an approval and changes its lease) into one event.
        let until = tokio::time::Instant::now() + Duration::from_millis(100);
        while let Ok(Ok(_)) = tokio::time::timeout_at(until, self.rx.recv()).await {}
        Some(())
    }
}

/// `GET /ui/events`.
pub async fn stream(
    State(state): State<AppState>,
    _v: Viewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let recheck = state.store.postgres().is_some().then(|| {
        let mut i = tokio::time::interval(Duration::from_secs(10));
        i.reset();
        i
    });
    let feed = Feed {
        rx: state.store.notices().subscribe(),
        stopping: state.stopping.clone(),
        recheck,
    };
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        feed.next().await?;
        Some((Ok(Event::default().event("change").data("1")), feed))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
