//! The child of `latchkey run`: SIGINT, SIGTERM and SIGHUP are ours from before the first
//! request, forwarded to the command while it runs; its exit status becomes our exit code.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Ends the process with the command's code. `main` maps `Ok` to 0 and `Err` to the class of
/// the failure (`cli::exit`), so the child's own code cannot travel back through a `Result`:
/// we exit here instead, after every lease is revoked and every value buffer dropped (nothing
/// else is left to clean up).
pub(super) fn finish(code: i32) -> ! {
    std::process::exit(code)
}

/// A child's exit code as a shell reports it: its code, or 128+N when signal N killed it.
pub(super) fn exit_code(st: std::process::ExitStatus) -> i32 {
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    }
}

/// A signal we forward.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sig {
    pub(super) number: i32,
    pub(super) name: &'static str,
}

/// SIGINT, SIGTERM and SIGHUP, handled by us from creation on.
pub(super) struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    pub(super) fn new() -> anyhow::Result<Signals> {
        let on = |k: SignalKind| signal(k).context("cannot install the signal handlers");
        Ok(Signals {
            int: on(SignalKind::interrupt())?,
            term: on(SignalKind::terminate())?,
            hup: on(SignalKind::hangup())?,
        })
    }

    /// The next signal received.
    pub(super) async fn recv(&mut self) -> Sig {
        tokio::select! {
            _ = self.int.recv() => Sig { number: 2, name: "INT" },
            _ = self.term.recv() => Sig { number: 15, name: "TERM" },
            _ = self.hup.recv() => Sig { number: 1, name: "HUP" },
        }
    }
}

/// Sends `sig` to `pid` with the system's `kill` program (no libc: unsafe code is forbidden).
/// The child has not been reaped yet, so its pid cannot have been reused.
pub(super) async fn forward(pid: u32, sig: Sig) {
    for kill in ["/bin/kill", "/usr/bin/kill", "kill"] {
        let sent = tokio::process::Command::new(kill)
            .args(["-s", sig.name, &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        match sent {
            // A failure means the child is already gone: nothing to forward to.
            Ok(_) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                eprintln!(
                    "latchkey: cannot forward SIG{} to the command: {e}",
                    sig.name
                );
                return;
            }
        }
    }
    eprintln!(
        "latchkey: cannot forward SIG{} to the command: no `kill` program found",
        sig.name
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_as_shells_report_them() {
        use std::process::ExitStatus;
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
