//! Maps teloxide's errors to [`ChannelError`], never leaking the bot token.
//!
//! teloxide does not expose the HTTP status; it parses Telegram's
//! `description` (and `parameters.retry_after`) instead, so the mapping works
//! on those: 429 arrives as `RetryAfter`, 401 as `InvalidToken`, 403 as a
//! `Forbidden: …` description, 5xx as a server-error description or a body
//! that is not JSON. Note that teloxide itself waits 10 s after any 5xx
//! response before reporting it.

use teloxide::{ApiError, RequestError};

use crate::ChannelError;

/// What a refused token is reported as, at start-up and by readiness checks.
const TOKEN_REFUSED: &str = "the Telegram bot token was refused";
/// Longest piece of a Telegram description kept in an error.
const MAX_DETAIL: usize = 300;

/// Converts a failed request; `token` is scrubbed from any text kept.
pub(super) fn map_error(err: &RequestError, token: &str) -> ChannelError {
    let clean = |s: &str| scrub(s, token);
    match err {
        RequestError::RetryAfter(secs) => ChannelError::RateLimited {
            retry_after_secs: u64::from(secs.seconds()).max(1),
        },
        RequestError::MigrateToChatId(to) => ChannelError::Misconfigured(format!(
            "the Telegram group became a supergroup; configure chat id {} instead",
            to.0
        )),
        RequestError::Network(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            ChannelError::Unavailable(format!("Telegram API: {what}"))
        }
        RequestError::InvalidJson { .. } => {
            ChannelError::Unavailable("Telegram API: unexpected response".into())
        }
        RequestError::Io(e) => ChannelError::Unavailable(clean(&format!("Telegram API: {e}"))),
        RequestError::Api(api) => map_api(api, &clean),
    }
}

/// True for "message is not modified": the edit asked for what is already shown.
pub(super) fn is_not_modified(err: &RequestError) -> bool {
    match err {
        RequestError::Api(ApiError::MessageNotModified) => true,
        RequestError::Api(ApiError::Unknown(d)) => {
            d.starts_with("Bad Request: message is not modified")
        }
        _ => false,
    }
}

fn map_api(api: &ApiError, clean: &dyn Fn(&str) -> String) -> ChannelError {
    use ApiError as A;
    let detail = clean(&api.to_string());
    match api {
        A::InvalidToken => ChannelError::Misconfigured(TOKEN_REFUSED.into()),
        A::ChatNotFound
        | A::BotBlocked
        | A::BotKicked
        | A::BotKickedFromSupergroup
        | A::BotKickedFromChannel
        | A::UserDeactivated
        | A::CantInitiateConversation
        | A::CantTalkWithBots
        | A::NotEnoughRightsToPostMessages
        | A::WebhookRequireHttps
        | A::BadWebhookPort
        | A::UnknownHost => ChannelError::Misconfigured(format!("Telegram: {detail}")),
        A::TerminatedByOtherGetUpdates | A::CantGetUpdates => ChannelError::Misconfigured(
            "Telegram: another poller or a webhook is using this bot token".into(),
        ),
        A::Unknown(description) => map_description(&clean(description)),
        _ => ChannelError::Rejected(format!("Telegram: {detail}")),
    }
}

/// Descriptions teloxide does not know, classified by their standard prefixes.
fn map_description(description: &str) -> ChannelError {
    let d: String = description.chars().take(MAX_DETAIL).collect();
    let lower = d.to_ascii_lowercase();
    let starts = |p: &str| lower.starts_with(p);
    if starts("unauthorized") && !lower.contains("bot") {
        ChannelError::Misconfigured(TOKEN_REFUSED.into())
    } else if [
        "forbidden",
        "unauthorized",
        "conflict",
        "bad request: chat not found",
    ]
    .into_iter()
    .any(starts)
    {
        ChannelError::Misconfigured(format!("Telegram: {d}"))
    } else if starts("too many requests") {
        // A 429 without `parameters`: take the number from the text if any.
        let secs = lower
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1u64);
        ChannelError::RateLimited {
            retry_after_secs: secs.max(1),
        }
    } else if starts("internal server error")
        || starts("bad gateway")
        || starts("service unavailable")
        || starts("gateway timeout")
    {
        ChannelError::Unavailable(format!("Telegram: {d}"))
    } else {
        ChannelError::Rejected(format!("Telegram: {d}"))
    }
}

fn scrub(s: &str, token: &str) -> String {
    if token.is_empty() {
        s.to_owned()
    } else {
        s.replace(token, "<token>")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use teloxide::types::{ChatId, Seconds};

    const TOKEN: &str = "123:secret";

    fn api(description: &str) -> RequestError {
        let body = format!(r#"{{"d":{}}}"#, serde_json::json!(description));
        #[derive(serde::Deserialize)]
        struct W {
            d: ApiError,
        }
        let w: Result<W, _> = serde_json::from_str(&body);
        match w {
            Ok(w) => RequestError::Api(w.d),
            Err(e) => panic!("{e}"),
        }
    }

    fn map(err: &RequestError) -> ChannelError {
        map_error(err, TOKEN)
    }

    #[test]
    fn rate_limits_carry_the_delay() {
        let err = RequestError::RetryAfter(Seconds::from_seconds(7));
        assert_eq!(
            map(&err),
            ChannelError::RateLimited {
                retry_after_secs: 7
            }
        );
        let err = RequestError::RetryAfter(Seconds::from_seconds(0));
        assert_eq!(
            map(&err),
            ChannelError::RateLimited {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            map(&api("Too Many Requests: retry after 5")),
            ChannelError::RateLimited {
                retry_after_secs: 5
            }
        );
    }

    #[test]
    fn configuration_problems_are_misconfigured() {
        let refused = ChannelError::Misconfigured(TOKEN_REFUSED.into());
        assert_eq!(map(&api("Unauthorized")), refused);
        assert_eq!(map(&api("Not Found")), refused);
        for d in [
            "Bad Request: chat not found",
            "Forbidden: bot was blocked by the user",
            "Forbidden: bot is not a member of the channel chat",
            "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
        ] {
            assert!(
                matches!(map(&api(d)), ChannelError::Misconfigured(_)),
                "{d}"
            );
        }
        let err = RequestError::MigrateToChatId(ChatId(-10_042));
        assert!(matches!(map(&err), ChannelError::Misconfigured(m) if m.contains("-10042")));
    }

    #[test]
    fn server_errors_are_unavailable_and_others_rejected() {
        for d in ["Internal Server Error", "Bad Gateway", "Gateway Timeout"] {
            assert!(matches!(map(&api(d)), ChannelError::Unavailable(_)), "{d}");
        }
        let err = RequestError::InvalidJson {
            source: Arc::new(serde_json::from_str::<u8>("<html>").unwrap_err()),
            raw: "<html>502</html>".into(),
        };
        assert!(matches!(map(&err), ChannelError::Unavailable(_)));
        let long = api("Bad Request: message is too long");
        assert!(matches!(map(&long), ChannelError::Rejected(_)));
        assert!(!is_not_modified(&long));
    }

    #[test]
    fn not_modified_is_recognised() {
        let d = "Bad Request: message is not modified: specified new message content and \
                 reply markup are exactly the same as a current content and reply markup of the message";
        assert!(is_not_modified(&api(d)));
        assert!(is_not_modified(&api(
            "Bad Request: message is not modified"
        )));
    }

    #[test]
    fn token_is_scrubbed() {
        let err = api("Bad Request: weird 123:secret echo");
        let ChannelError::Rejected(text) = map(&err) else {
            panic!("expected Rejected");
        };
        assert!(!text.contains("secret"), "{text}");
    }
}
