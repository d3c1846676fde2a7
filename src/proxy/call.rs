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

/// The stored value a lease gave the proxy: the secret, or for an env_bundle the JSON of the
/// entries the lease allows.
pub struct Credential<'a> {
    /// The value as UTF-8.
    pub value: &'a str,
    /// The secret's type (`env_bundle` or another).
    pub kind: &'a str,
}

impl Credential<'_> {
    /// The entries of a bundle (empty for other types).
    fn entries(&self) -> Map<String, Value> {
        if self.kind != "env_bundle" {
            return Map::new();
        }
        match serde_json::from_str::<Value>(self.value) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// What a placement injects: one entry of a bundle (`key`), or the whole value.
    fn resolve(&self, key: Option<&str>) -> Result<zeroize::Zeroizing<String>, String> {
        let Some(key) = key else {
            return Ok(self.value.to_string().into());
        };
        if self.kind != "env_bundle" {
            return Err(format!(
                "the service injects the entry {key}, but its secret is not an env_bundle"
            ));
        }
        match self.entries().get(key) {
            Some(Value::String(v)) => Ok(v.clone().into()),
            _ => Err(format!("the lease does not give the entry {key}")),
        }
    }
}

/// The entries a service injects from a bundle (checked against the lease before a use).
pub fn keys_needed(svc: &Service) -> Vec<String> {
    let mut keys: Vec<String> = svc
        .inject
        .iter()
        .filter_map(|i| i.key().or(svc.key.as_deref()))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Sends the request with the credential injected at each of the service's placements;
/// `client` follows no cross-origin redirect.
pub async fn send(
    client: &reqwest::Client,
    svc: &Service,
    prepared: Prepared,
    cred: &Credential<'_>,
) -> Result<Answer, String> {
    // Every string that leaves with the call is a form the answer must not carry back: the
    // whole value, each bundle entry, each injected value and basic-auth pair.
    let mut forms: Vec<zeroize::Zeroizing<String>> = vec![cred.value.to_string().into()];
    for v in cred.entries().values() {
        if let Value::String(s) = v {
            forms.push(s.clone().into());
        }
    }
    let mut url = prepared.url;
    let mut headers = Vec::new();
    let mut basic = None;
    for place in &svc.inject {
        let value = cred.resolve(place.key().or(svc.key.as_deref()))?;
        match place {
            Inject::Query { name, .. } => {
                url.query_pairs_mut().append_pair(name, &value);
            }
            Inject::Header { name, template, .. } => {
                headers.push((
                    name.clone(),
                    zeroize::Zeroizing::new(template.replace("{secret}", &value)),
                ));
            }
            Inject::Basic { username, .. } => {
                let (user, pass) = if username.is_empty() {
                    (value.to_string(), String::new())
                } else {
                    (username.clone(), value.to_string())
                };
                forms.push(format!("{user}:{pass}").into());
                basic = Some((zeroize::Zeroizing::new(user), zeroize::Zeroizing::new(pass)));
            }
        }
        forms.push(value);
    }
    let redactor = Redactor::new(forms.iter().map(|f| f.as_str()));
    drop(forms);
    // Compressed answers could not be checked for the credential: ask for none.
    let mut req = client
        .request(prepared.method, url)
        .header(reqwest::header::ACCEPT_ENCODING, "identity")
        .timeout(Duration::from_secs(svc.timeout_seconds));
    for (name, value) in &headers {
        req = req.header(name.as_str(), value.as_str());
    }
    if let Some((user, pass)) = &basic {
        req = req.basic_auth(user.as_str(), Some(pass.as_str()));
    }
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
    fn bundle_entries_resolve_per_placement() {
        let bundle = r#"{"A":"first-value-1","B":"second-value-2"}"#;
        let c = Credential {
            value: bundle,
            kind: "env_bundle",
        };
        assert_eq!(c.resolve(Some("A")).unwrap().as_str(), "first-value-1");
        assert_eq!(c.resolve(None).unwrap().as_str(), bundle);
        assert!(
            c.resolve(Some("C"))
                .unwrap_err()
                .contains("does not give the entry C")
        );
        let t = Credential {
            value: "tok",
            kind: "token",
        };
        assert!(
            t.resolve(Some("A"))
                .unwrap_err()
                .contains("not an env_bundle")
        );
        let mut svc = template("stripe", "s", "p/x").unwrap();
        svc.key = Some("B".into());
        svc.inject.push(Inject::Query {
            name: "k".into(),
            key: Some("A".into()),
        });
        assert_eq!(keys_needed(&svc), ["A", "B"]);
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
