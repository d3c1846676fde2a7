//! Sending one signed webhook: a reqwest client that follows no redirect, reads at most a
//! small part of the answer, times out, and refuses private, loopback and link-local
//! destinations (checked when DNS answers, at connect time, not only at creation) unless the
//! policy allows them. Plus the retry schedule: exponential backoff with jitter.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sign::{Secret, signature_header};

/// Which destinations may be called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Destinations {
    /// Allow 127.0.0.0/8 and ::1 (development).
    pub allow_loopback: bool,
    /// Allow private, link-local, CGNAT and other non-public ranges.
    pub allow_private: bool,
}

/// Why an address is refused, if it is.
pub fn refused(ip: IpAddr, policy: Destinations) -> Option<&'static str> {
    if ip.is_loopback() {
        return (!policy.allow_loopback && !policy.allow_private).then_some("a loopback address");
    }
    let private = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused(IpAddr::V4(v4), policy);
            }
            v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    };
    (private && !policy.allow_private).then_some("a private or link-local address")
}

/// Checks a URL's scheme and, when its host is an IP literal, the address.
pub fn check_url(url: &str, policy: Destinations) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("the URL must be http or https".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL may not carry credentials".into());
    }
    match parsed.host() {
        None => return Err("the URL has no host".into()),
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), policy)?,
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), policy)?,
        Some(url::Host::Domain(d))
            if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
        {
            check_ip(IpAddr::from([127, 0, 0, 1]), policy)?;
        }
        Some(url::Host::Domain(_)) => {}
    }
    Ok(parsed)
}

fn check_ip(ip: IpAddr, policy: Destinations) -> Result<(), String> {
    match refused(ip, policy) {
        Some(why) => Err(format!(
            "the destination {ip} is {why}; not allowed by the configuration"
        )),
        None => Ok(()),
    }
}

/// Resolves names and drops refused addresses, so a name that points (or later re-points)
/// at a private address cannot be reached. Usable by any reqwest client (`dns_resolver`).
pub struct GuardedResolver {
    policy: Destinations,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Destinations) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| refused(a.ip(), policy).is_none())
                .collect();
            if allowed.is_empty() {
                let why = addrs.first().map_or("no address", |a| {
                    refused(a.ip(), policy).unwrap_or("no address")
                });
                return Err(
                    format!("{host} resolves to {why}; not allowed by the configuration").into(),
                );
            }
            let iter: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(iter)
        })
    }
}

/// One outgoing message.
pub struct Message<'a> {
    /// `webhook-id`: the same on every retry.
    pub id: &'a str,
    /// The JSON body.
    pub body: &'a [u8],
}

/// What one attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// HTTP status, when one came back.
    pub status: Option<u16>,
    /// How long the attempt took.
    pub latency: Duration,
    /// What went wrong, for failures.
    pub error: Option<String>,
}

impl Attempt {
    /// 2xx.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// 410 Gone: the consumer asks to be unsubscribed.
    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

/// Sends signed webhooks.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: Destinations,
    user_agent: String,
}

/// Largest part of an answer that is read.
pub const MAX_RESPONSE_BYTES: usize = 4096;

impl Sender {
    /// A sender with a per-attempt timeout.
    pub fn new(
        timeout: Duration,
        policy: Destinations,
        user_agent: &str,
    ) -> Result<Sender, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(4)
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Sender {
            client,
            policy,
            user_agent: user_agent.to_string(),
        })
    }

    /// Signs and posts one message to `url`.
    pub async fn send(
        &self,
        url: &str,
        secrets: &[Secret],
        msg: Message<'_>,
        timestamp: i64,
    ) -> Attempt {
        let start = Instant::now();
        let fail = |error: String| Attempt {
            status: None,
            latency: start.elapsed(),
            error: Some(error),
        };
        let url = match check_url(url, self.policy) {
            Ok(u) => u,
            Err(e) => return fail(e),
        };
        let signature = signature_header(secrets, msg.id, timestamp, msg.body);
        let req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", &self.user_agent)
            .header(crate::HEADER_ID, msg.id)
            .header(crate::HEADER_TIMESTAMP, timestamp.to_string())
            .header(crate::HEADER_SIGNATURE, signature)
            .body(msg.body.to_vec());
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return fail(describe(&e)),
        };
        let status = resp.status().as_u16();
        // Read (and drop) at most a little of the answer, so a huge body cannot hold us.
        let mut read = 0usize;
        while read < MAX_RESPONSE_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        let error = match status {
            200..=299 => None,
            300..=399 => Some(format!("HTTP {status}: redirects are not followed")),
            _ => Some(format!("HTTP {status}")),
        };
        Attempt {
            status: Some(status),
            latency: start.elapsed(),
            error,
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// The wait before retry number `attempt` (1-based): `first` doubling to at most `cap`, with
/// ±20 % jitter from `jitter` (a number in 0..1).
pub fn backoff(attempt: u32, first: Duration, cap: Duration, jitter: f64) -> Duration {
    let base = first.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let base = base.min(cap);
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    base.mul_f64(factor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn address_policy() {
        let strict = Destinations::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(refused(ip.parse().unwrap(), strict).is_some(), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(refused(ip.parse().unwrap(), strict).is_none(), "{ip}");
        }
        let dev = Destinations {
            allow_loopback: true,
            allow_private: false,
        };
        assert!(refused("127.0.0.1".parse().unwrap(), dev).is_none());
        assert!(refused("10.0.0.1".parse().unwrap(), dev).is_some());
    }

    #[test]
    fn urls() {
        let strict = Destinations::default();
        assert!(check_url("ftp://example.com/x", strict).is_err());
        assert!(check_url("http://user:pw@example.com/", strict).is_err());
        assert!(check_url("http://127.0.0.1:8080/hook", strict).is_err());
        assert!(check_url("http://localhost/hook", strict).is_err());
        assert!(check_url("http://[::1]/hook", strict).is_err());
        assert!(check_url("https://example.com/hook", strict).is_ok());
        assert!(
            check_url(
                "http://127.0.0.1:8080/hook",
                Destinations {
                    allow_loopback: true,
                    allow_private: false
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        let cap = Duration::from_secs(3600);
        let first = Duration::from_secs(1);
        assert_eq!(backoff(1, first, cap, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(4, first, cap, 0.5), Duration::from_secs(8));
        assert_eq!(backoff(30, first, cap, 0.5), cap);
        assert!(backoff(3, first, cap, 0.0) < backoff(3, first, cap, 1.0));
    }
}
