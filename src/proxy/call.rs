//! One proxied call: the upstream URL is built from the endpoint's path template with every
//! parameter percent-encoded as a single segment (a parameter can never change the path's
//! structure or the host), the credential is injected, no redirect out of the service's origin is
//! followed, the answer is size-limited, hop-by-hop and auth headers are dropped, and any echo
//! of the credential is replaced by `[redacted]`.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::redact::Redactor;
use super::service::{Endpoint, Inject, Service};

/// A request ready to send (without the credential).
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// HTTP method.
    pub method: reqwest::Method,
    /// Full upstream URL.
    pub url: reqwest::Url,
    /// JSON body for POST/PUT/PATCH.
    pub body: Option<Value>,
}

fn encode_segment(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn param_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Builds the upstream request on the service's parsed `base` URL from the endpoint's template and the
/// caller's parameters.
pub fn build(
    base: &reqwest::Url,
    ep: &Endpoint,
    params: &Map<String, Value>,
) -> Result<Prepared, String> {
    let mut rest = params.clone();
    let mut path = String::new();
    let mut tpl = ep.path.as_str();
    while let Some(open) = tpl.find('{') {
        let close = tpl[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or("unclosed { in the endpoint path")?;
        path.push_str(&tpl[..open]);
        let name = &tpl[open + 1..close];
        let value = rest
            .remove(name)
            .ok_or_else(|| format!("missing path parameter {name:?}"))?;
        let text = param_text(&value).ok_or_else(|| {
            format!("path parameter {name:?} must be a string, number or boolean")
        })?;
        if text.is_empty() || text == "." || text == ".." || text.len() > 1024 {
            return Err(format!(
                "path parameter {name:?} may not be empty, `.` or `..`"
            ));
        }
        path.push_str(&encode_segment(&text));
        tpl = &tpl[close + 1..];
    }
    path.push_str(tpl);
    // Only the path is set on the (already parsed) base: scheme, host and port stay.
    let base_path = base.path().trim_end_matches('/');
    let mut url = base.clone();
    url.set_path(&format!("{base_path}{path}"));
    // Belt and braces: the result must stay on the service's host, scheme, port and base path.
    if url.host_str() != base.host_str()
        || url.scheme() != base.scheme()
        || url.port_or_known_default() != base.port_or_known_default()
        || !url.path().starts_with(base_path)
    {
        return Err("a parameter tried to leave the service's URL".into());
    }
    let method = reqwest::Method::from_bytes(ep.method.as_bytes()).map_err(|e| e.to_string())?;
    let body = if matches!(ep.method.as_str(), "GET" | "DELETE") {
        if !rest.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &rest {
                let text = param_text(v).ok_or_else(|| {
                    format!("query parameter {k:?} must be a string, number or boolean")
                })?;
                q.append_pair(k, &text);
            }
        }
        None
    } else {
        Some(Value::Object(rest))
    };
    Ok(Prepared { method, url, body })
}

/// Headers never passed back: hop-by-hop ones and anything about authentication.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "authorization",
    "www-authenticate",
    "set-cookie",
    "content-length",
];

/// The upstream's answer, as given to the agent.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Answer {
    /// Upstream status.
    pub status: u16,
    /// Upstream headers (without hop-by-hop and auth headers).
    #[schema(value_type = Object)]
    pub headers: Map<String, Value>,
    /// The body: JSON when it is JSON, text when UTF-8, else `{"base64": …}`.
    #[schema(value_type = Object)]
    pub body: Value,
    /// The answer was longer than the service's limit and was cut.
    pub truncated: bool,
    /// Milliseconds the upstream took.
    pub latency_ms: u64,
}

/// The redactor for a call: the secret, the basic-auth pair built from it, and each entry of
/// an env_bundle (injected as the JSON of its entries, so each value can be echoed alone).
fn redactor(secret: &str, inject: &Inject, kind: &str) -> Redactor {
    let mut forms: Vec<zeroize::Zeroizing<String>> = vec![secret.to_string().into()];
    if let Inject::Basic { username } = inject {
        forms.push(if username.is_empty() {
            format!("{secret}:").into()
        } else {
            format!("{username}:{secret}").into()
        });
    }
    if kind == "env_bundle"
        && let Ok(Value::Object(entries)) = serde_json::from_str::<Value>(secret)
    {
        for v in entries.values() {
            if let Value::String(s) = v {
                forms.push(s.clone().into());
            }
        }
    }
    Redactor::new(forms.iter().map(|f| f.as_str()))
}

/// Sends the request with the credential injected; `client` follows no cross-origin redirect.
pub async fn send(
    client: &reqwest::Client,
    svc: &Service,
    prepared: Prepared,
    secret: &str,
    kind: &str,
) -> Result<Answer, String> {
    let mut url = prepared.url;
    if let Inject::Query { name } = &svc.inject {
        url.query_pairs_mut().append_pair(name, secret);
    }
    // Compressed answers could not be checked for the credential: ask for none.
    let mut req = client
        .request(prepared.method, url)
        .header(reqwest::header::ACCEPT_ENCODING, "identity")
        .timeout(Duration::from_secs(svc.timeout_seconds));
    req = match &svc.inject {
        Inject::Header { name, template } => {
            req.header(name.as_str(), template.replace("{secret}", secret))
        }
        Inject::Basic { username } if username.is_empty() => req.basic_auth(secret, Some("")),
        Inject::Basic { username } => req.basic_auth(username, Some(secret)),
        Inject::Query { .. } => req,
    };
    if let Some(body) = prepared.body {
        req = req.json(&body);
    }
    let start = Instant::now();
    let mut resp = req.send().await.map_err(|e| {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_redirect() {
            "redirect refused"
        } else {
            "failed"
        };
        format!("the upstream call {kind}")
    })?;
    let status = resp.status().as_u16();
    let redactor = redactor(secret, &svc.inject, kind);
    let mut headers = Map::new();
    for (k, v) in resp.headers() {
        if DROPPED.contains(&k.as_str()) {
            continue;
        }
        if let Ok(v) = String::from_utf8(redactor.bytes(v.as_bytes(), false)) {
            headers.insert(redactor.text(k.as_str()), Value::String(v));
        }
    }
    let encoded = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.eq_ignore_ascii_case("identity"))
        .map(str::to_string);
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| "the upstream answer broke off".to_string())?
    {
        if body.len() + chunk.len() > svc.max_response_bytes {
            body.extend_from_slice(&chunk[..svc.max_response_bytes - body.len()]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let latency_ms = start.elapsed().as_millis() as u64;
    // The raw bytes first (what a non-UTF-8 answer is base64-encoded from), then each decoded
    // JSON string.
    let body = redactor.bytes(&body, truncated);
    let body = match (encoded, String::from_utf8(body)) {
        (Some(encoding), _) => json!({"withheld": format!(
            "the upstream answered with Content-Encoding {encoding}, which the proxy cannot check for the credential"
        )}),
        (None, Ok(text)) => match serde_json::from_str(&text) {
            Ok(v) => redactor.json(v),
            Err(_) => Value::String(text),
        },
        (None, Err(e)) => json!({"base64": STANDARD.encode(e.as_bytes())}),
    };
    Ok(Answer {
        status,
        headers,
        body,
        truncated,
        latency_ms,
    })
}

/// Scheme, host and port: what a redirect must keep to be followed.
fn origin(url: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_string(),
        url.host_str().map(str::to_ascii_lowercase),
        url.port_or_known_default(),
    )
}

/// A client for one service: the destination policy is enforced at DNS time, and redirects are
/// followed only within the service's own origin, scheme + host + port (at most 5).
pub fn client(svc: &Service) -> Result<reqwest::Client, String> {
    let home = origin(&reqwest::Url::parse(&svc.base_url).map_err(|e| e.to_string())?);
    let policy = webhooks::deliver::Destinations {
        allow_loopback: svc.allow_private,
        allow_private: svc.allow_private,
    };
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() < 5 && origin(attempt.url()) == home {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .dns_resolver(std::sync::Arc::new(
            webhooks::deliver::GuardedResolver::new(policy),
        ))
        .pool_max_idle_per_host(32)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proxy::service::template;

    fn base(svc: &Service) -> reqwest::Url {
        reqwest::Url::parse(&svc.base_url).unwrap()
    }

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn hostile_parameters_stay_in_one_segment() {
        let svc = template("github", "gh", "p/x").unwrap();
        let ep = &svc.endpoints["get_repo"];
        let p = build(&base(&svc), ep, &params(json!({"owner": "a", "repo": "b"}))).unwrap();
        assert_eq!(p.url.as_str(), "https://api.github.com/repos/a/b");
        for (owner, want) in [
            (
                "../../admin",
                "https://api.github.com/repos/..%2F..%2Fadmin/b",
            ),
            ("a%2Fb", "https://api.github.com/repos/a%252Fb/b"),
            ("@evil.com", "https://api.github.com/repos/%40evil.com/b"),
            (
                "https://evil.com/x",
                "https://api.github.com/repos/https%3A%2F%2Fevil.com%2Fx/b",
            ),
            (
                "a\r\nHost: evil",
                "https://api.github.com/repos/a%0D%0AHost%3A%20evil/b",
            ),
            ("x?y=1#z", "https://api.github.com/repos/x%3Fy%3D1%23z/b"),
        ] {
            let p = build(
                &base(&svc),
                ep,
                &params(json!({"owner": owner, "repo": "b"})),
            )
            .unwrap();
            assert_eq!(p.url.as_str(), want, "{owner:?}");
            assert_eq!(p.url.host_str(), Some("api.github.com"));
        }
        for bad in ["..", ".", ""] {
            assert!(
                build(&base(&svc), ep, &params(json!({"owner": bad, "repo": "b"}))).is_err(),
                "{bad:?}"
            );
        }
        assert!(
            build(&base(&svc), ep, &params(json!({"owner": "a"}))).is_err(),
            "missing parameter"
        );
        assert!(
            build(
                &base(&svc),
                ep,
                &params(json!({"owner": {"x": 1}, "repo": "b"}))
            )
            .is_err()
        );
    }

    #[test]
    fn query_and_body_mapping() {
        let svc = template("github", "gh", "p/x").unwrap();
        let p = build(
            &base(&svc),
            &svc.endpoints["list_issues"],
            &params(json!({"owner": "o", "repo": "r", "state": "open", "per_page": 5})),
        )
        .unwrap();
        assert_eq!(p.url.query(), Some("per_page=5&state=open"));
        assert!(p.body.is_none());
        let p = build(
            &base(&svc),
            &svc.endpoints["create_issue"],
            &params(json!({"owner": "o", "repo": "r", "title": "t"})),
        )
        .unwrap();
        assert_eq!(p.body, Some(json!({"title": "t"})));
        assert_eq!(p.url.query(), None);
    }

    #[test]
    fn basic_pairs_and_bundle_entries_are_redacted() {
        let r = redactor(
            "sk_live_abc",
            &Inject::Basic {
                username: String::new(),
            },
            "token",
        );
        let text = format!(
            "key sk_live_abc and basic {}",
            STANDARD.encode("sk_live_abc:")
        );
        assert_eq!(r.text(&text), "key [redacted] and basic [redacted]");
        let bundle = r#"{"A":"first-value-1","B":"second-value-2"}"#;
        let r = redactor(bundle, &Inject::Query { name: "k".into() }, "env_bundle");
        assert_eq!(
            r.text("a=first-value-1&b=second-value-2"),
            "a=[redacted]&b=[redacted]"
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(
            origin(&u("https://API.x.com/a")),
            origin(&u("https://api.x.com:443/b"))
        );
        assert_ne!(
            origin(&u("https://api.x.com/a")),
            origin(&u("https://api.x.com:8443/a"))
        );
        assert_ne!(
            origin(&u("https://api.x.com/a")),
            origin(&u("http://api.x.com/a"))
        );
    }
}
