//! Exit codes: a script tells failures apart by the code alone (README, "Exit codes").
//!
//! A failure's class is decided once: from the daemon's answer (HTTP status and error `code`,
//! see [`Exit::of_http`]), from the transport (daemon unreachable), or where the client knows
//! it better than any status (a lease that ended, a wait that ran out, a command line refused
//! before any request), through [`Failure`].

use latchkey_client::Error as ClientError;

/// What a failed command's exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Any other failure (the daemon's internal error, a local file that cannot be read, …).
    Failure,
    /// The command line is wrong, or the daemon refused a value in it as invalid (HTTP 400).
    Usage,
    /// The daemon cannot be reached (connection refused, no answer in time, shutting down).
    Unreachable,
    /// No token, or the daemon refused it (401), or it does not allow this (403).
    Refused,
    /// Nothing at that address: no such secret, agent, lease, token, … (404).
    NotFound,
    /// The record is in a conflicting state: version conflict, exists already, already
    /// decided, deleted (409).
    Conflict,
    /// The lease was denied, expired, revoked or used up, or the secret expired (409
    /// `lease_not_active`, 410).
    LeaseEnded,
    /// The lease is still pending: the wait ran out before an approver decided.
    Pending,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Unreachable => 3,
            Exit::Refused => 4,
            Exit::NotFound => 5,
            Exit::Conflict => 6,
            Exit::LeaseEnded => 7,
            Exit::Pending => 8,
        }
    }

    /// The class of a failed response.
    pub fn of_http(status: u16, code: Option<&str>) -> Exit {
        match (status, code) {
            (409, Some("lease_not_active")) | (410, _) => Exit::LeaseEnded,
            (400 | 413 | 415 | 422, _) => Exit::Usage,
            (401 | 403, _) => Exit::Refused,
            (404, _) => Exit::NotFound,
            (409, _) => Exit::Conflict,
            (503, _) => Exit::Unreachable,
            _ => Exit::Failure,
        }
    }
}

/// A failure whose class the client knows where it happens; shown as its one line.
#[derive(Debug)]
pub struct Failure {
    /// Its class.
    pub exit: Exit,
    line: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

impl std::error::Error for Failure {}

/// An error of class `exit` shown as `line`.
pub fn fail(exit: Exit, line: impl Into<String>) -> anyhow::Error {
    Failure {
        exit,
        line: line.into(),
    }
    .into()
}

/// Returns early with an error of the given class: `bail_as!(Exit::Usage, "give a path")`.
macro_rules! bail_as {
    ($exit:expr, $($arg:tt)*) => {
        return Err($crate::cli::exit::fail($exit, format!($($arg)*)))
    };
}
pub(crate) use bail_as;

/// The class of an error from a client command: the first cause that knows it.
pub fn classify(e: &anyhow::Error) -> Exit {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.exit;
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return match e {
                ClientError::Api(h) => Exit::of_http(h.status, h.code.as_deref()),
                ClientError::Invalid(_) => Exit::Usage,
                ClientError::Unexpected { .. } => Exit::Failure,
                ClientError::Unreachable { .. }
                | ClientError::Timeout { .. }
                | ClientError::Transport { .. } => Exit::Unreachable,
            };
        }
    }
    Exit::Failure
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn http_answers_map_to_classes() {
        let cases = [
            (400, Some("invalid_path"), Exit::Usage),
            (401, Some("unauthorized"), Exit::Refused),
            (403, Some("access_denied"), Exit::Refused),
            (404, Some("not_found"), Exit::NotFound),
            (409, Some("version_conflict"), Exit::Conflict),
            (409, Some("already_decided"), Exit::Conflict),
            (409, Some("lease_not_active"), Exit::LeaseEnded),
            (410, Some("expired"), Exit::LeaseEnded),
            (429, Some("rate_limited"), Exit::Failure),
            (500, Some("internal"), Exit::Failure),
            (503, Some("unavailable"), Exit::Unreachable),
        ];
        for (status, code, want) in cases {
            assert_eq!(Exit::of_http(status, code), want, "{status} {code:?}");
        }
        let codes: std::collections::BTreeSet<u8> = [
            Exit::Failure,
            Exit::Usage,
            Exit::Unreachable,
            Exit::Refused,
            Exit::NotFound,
            Exit::Conflict,
            Exit::LeaseEnded,
            Exit::Pending,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes.len(), 8, "every class has its own code");
        assert!(!codes.contains(&0));
    }

    #[test]
    fn the_class_survives_context() {
        let e: anyhow::Error = ClientError::from(latchkey_client::ApiError::new(
            404,
            br#"{"error":{"code":"not_found"}}"#,
        ))
        .into();
        let e = Err::<(), _>(e).context("lease on x").unwrap_err();
        assert_eq!(classify(&e), Exit::NotFound);
        let e = Err::<(), _>(fail(Exit::Pending, "still pending"))
            .context("outer")
            .unwrap_err();
        assert_eq!(classify(&e), Exit::Pending);
        assert_eq!(classify(&anyhow::anyhow!("plain")), Exit::Failure);
    }
}
