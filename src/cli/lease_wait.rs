//! Waiting for a pending lease: long polls of `GET /v1/leases/{id}?wait=…`, bounded by the
//! caller's timeout, with an elapsed-seconds line on stderr when it is a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Client, LONG_POLL_TIMEOUT, http_error, item_url};
use super::leases::state;
use super::{GlobalOpts, text};

/// Long-polls the lease until it is no longer pending or `deadline` has passed (never
/// returning a pending lease before it: a wait of N seconds is N seconds, not N-1).
pub async fn wait(opts: &GlobalOpts, mut lease: Value, deadline: Instant) -> anyhow::Result<Value> {
    let client = Client::with_timeout(opts, LONG_POLL_TIMEOUT)?;
    let url = item_url("leases", &text(&lease, "id"))?;
    let start = Instant::now();
    let approval = text(&lease["approval"], "id");
    let mut spinner = Spinner::new(start, &approval);
    let mut told = false;
    while state(&lease) == "pending" {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Whole seconds, rounded up: the last poll ends at or after the deadline.
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        let wait = secs.clamp(1, 55).to_string();
        let asked = Instant::now();
        match spinner
            .around(client.get(&url, &[("wait", wait), ("seen", "pending".into())]))
            .await
        {
            Ok(l) => lease = l,
            // The daemon's request timeout may cut a long poll short: ask again.
            Err(e) if http_error(&e).is_some_and(|h| h.status == 408) => {}
            // The daemon is stopping (503) or gone (no HTTP answer): the lease lives in its
            // store, so wait for it (or another daemon at the address) to answer again.
            Err(e) if http_error(&e).is_none_or(|h| h.status == 503) => {
                if !told {
                    spinner.clear();
                    let id = text(&lease, "id");
                    eprintln!(
                        "latchkey: the daemon stopped answering; lease {id} is still pending. \
                         Waiting for it to come back (or resume later with `latchkey lease show {id} --wait 60`)"
                    );
                    told = true;
                }
            }
            Err(e) => {
                spinner.clear();
                return Err(e);
            }
        }
        // Never spin: an answer that came back at once is followed by a short pause.
        if state(&lease) == "pending" && asked.elapsed() < Duration::from_secs(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(Duration::from_secs(1).min(left)).await;
        }
    }
    spinner.clear();
    Ok(lease)
}

/// An elapsed-seconds line on stderr while waiting, only when stderr is a terminal.
struct Spinner<'a> {
    on: bool,
    start: Instant,
    frame: usize,
    what: &'a str,
}

impl<'a> Spinner<'a> {
    fn new(start: Instant, what: &'a str) -> Self {
        let on = std::io::stderr().is_terminal();
        Spinner {
            on,
            start,
            frame: 0,
            what,
        }
    }

    /// Runs `fut`, redrawing the line every quarter second.
    async fn around<T>(&mut self, fut: impl Future<Output = T>) -> T {
        if !self.on {
            return fut.await;
        }
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => self.draw(),
            }
        }
    }

    fn draw(&mut self) {
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        self.frame = (self.frame + 1) % FRAMES.len();
        let secs = self.start.elapsed().as_secs();
        eprint!(
            "\r{} waiting for approval {} … {secs}s ",
            FRAMES[self.frame], self.what
        );
    }

    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}
