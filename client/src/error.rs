//! The one error type of the client: the daemon's refusal (status, stable code, message), a
//! transport failure, or input refused before any request was sent.

use serde_json::Value;

/// What went wrong with a call. Each variant displays as one line, fit for a terminal or a
/// model's tool result; none ever holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon answered with an error status.
    #[error("{0}")]
    Api(ApiError),
    /// Nothing answered at the address (connection refused, no route).
    #[error("cannot reach the Latchkey daemon at {base}: is it running? (set LATCHKEY_ADDR)")]
    Unreachable {
        /// The daemon's address.
        base: String,
    },
    /// The daemon did not answer in time.
    #[error("the Latchkey daemon at {base} did not answer within {seconds} s")]
    Timeout {
        /// The daemon's address.
        base: String,
        /// The client's timeout.
        seconds: u64,
    },
    /// Any other transport failure (TLS, a connection cut mid-answer, …).
    #[error("request to {base} failed: {cause}")]
    Transport {
        /// The daemon's address.
        base: String,
        /// The innermost cause.
        cause: String,
    },
    /// A successful status whose body is not what the API answers.
    #[error(
        "unexpected answer from {base}: HTTP {status} without a JSON body (is this a Latchkey daemon?)"
    )]
    Unexpected {
        /// The daemon's address.
        base: String,
        /// HTTP status.
        status: u16,
    },
    /// The caller's input was refused before any request (a bad address, path or id).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The daemon's refusal behind this error, if that is what it is.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(a) => Some(a),
            _ => None,
        }
    }

    /// HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|a| a.status)
    }

    /// The API's stable error code (`not_found`, `access_denied`, …) of a refusal.
    pub fn code(&self) -> Option<&str> {
        self.api().and_then(|a| a.code.as_deref())
    }

    /// Is the daemon out of reach (unreachable, silent, cut off, or stopping with 503)?
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Api(a) => a.status == 503,
            _ => false,
        }
    }
}

/// A failed response: its HTTP status, the API's error code and message, and the one line
/// shown for it.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The API's stable error code (`already_decided`, `access_denied`, …), when given.
    pub code: Option<String>,
    /// The API's message on one line, when given.
    pub message: Option<String>,
    line: String,
}

impl ApiError {
    /// Reads a failed response's body (`{"error":{"code","message"}}`, or anything else).
    pub fn new(status: u16, body: &[u8]) -> ApiError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let err = parsed.as_ref().and_then(|v| v.get("error"));
        let field = |k: &str| err.and_then(|e| e.get(k)).and_then(Value::as_str);
        let code = field("code").map(str::to_string);
        let message = field("message").map(one_line);
        let line = if status == 401 {
            "the daemon refused the token (set LATCHKEY_TOKEN to an admin token, agent key or scoped token)".into()
        } else {
            match (&code, &message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                _ => {
                    let snippet = one_line(&String::from_utf8_lossy(body));
                    if snippet.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!(
                            "HTTP {status}: {}",
                            snippet.chars().take(200).collect::<String>()
                        )
                    }
                }
            }
        };
        ApiError {
            status,
            code,
            message,
            line,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Error {
        Error::Api(e)
    }
}

/// Collapses whitespace and control characters so an error stays on one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(status: u16, body: &[u8]) -> String {
        ApiError::new(status, body).to_string()
    }

    #[test]
    fn error_lines() {
        let body = br#"{"error":{"code":"version_conflict","message":"version conflict: expected version 1, current is 2"}}"#;
        assert_eq!(
            line(409, body),
            "version_conflict: version conflict: expected version 1, current is 2"
        );
        assert!(line(401, body).starts_with("the daemon refused the token"));
        assert_eq!(
            line(
                400,
                br#"{"error":{"code":"bad_request","message":"two\nlines"}}"#
            ),
            "bad_request: two lines"
        );
        assert_eq!(line(502, b"Bad gateway\n"), "HTTP 502: Bad gateway");
        assert_eq!(line(500, b""), "HTTP 500");
        let e: Error = ApiError::new(
            409,
            br#"{"error":{"code":"already_decided","message":"already decided"}}"#,
        )
        .into();
        assert_eq!(
            (e.status(), e.code(), e.api().unwrap().message.as_deref()),
            (Some(409), Some("already_decided"), Some("already decided"))
        );
        assert_eq!(e.to_string(), "already_decided: already decided");
        assert!(!e.is_unreachable());
    }
}
