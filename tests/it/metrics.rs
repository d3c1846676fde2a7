//! Metrics end to end: `/metrics` after a known sequence of calls (requests by route
//! template, a decided approval, a job run, webhook deliveries, leases and approvals read
//! from the store), the whole answer checked against the Prometheus text format, the
//! separate listener, and the Bearer token.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Daemon, admin_approves, init_store};
use crate::receiver::Receiver;
use crate::webhook_delivery::{dev, subscribe};

/// One sample: its metric name, its labels, its value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape parsed strictly by the Prometheus text format (0.0.4): every line a `# HELP`,
/// a `# TYPE` (once per family, before its samples), or a sample `name{l="v",…} value` with
/// escaped label values; every sample in a declared family; histogram buckets cumulative and
/// ending in `+Inf` equal to `_count`. Panics with the offending line.
fn parse(text: &str) -> Vec<Sample> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, value) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("bad comment: {line}"));
            assert!(valid_name(name), "bad metric name: {line}");
            match kind {
                Some("HELP") => {}
                Some("TYPE") => {
                    let t = value.unwrap_or_default();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "bad type: {line}"
                    );
                    assert!(
                        types.insert(name.to_string(), t.to_string()).is_none(),
                        "TYPE twice: {line}"
                    );
                    assert!(
                        !samples
                            .iter()
                            .any(|s: &Sample| family(&s.name, &types) == Some(name)),
                        "TYPE after samples: {line}"
                    );
                }
                _ => panic!("unknown comment: {line}"),
            }
            continue;
        }
        let sample = parse_sample(line);
        assert!(
            family(&sample.name, &types).is_some(),
            "sample outside a declared family: {line}"
        );
        samples.push(sample);
    }
    // Histograms: cumulative buckets, +Inf last and equal to _count.
    for (name, t) in &types {
        if t != "histogram" {
            continue;
        }
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in samples
            .iter()
            .filter(|s| s.name == format!("{name}_bucket"))
        {
            let mut key = s.labels.clone();
            let le = key.remove("le").expect("a bucket has le");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            series
                .entry(format!("{key:?}"))
                .or_default()
                .push((le, s.value));
        }
        for (key, buckets) in series {
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{name}{key}: buckets not cumulative"
            );
            let (le, inf) = *buckets.last().unwrap();
            assert!(le.is_infinite(), "{name}{key}: no +Inf bucket");
            let count = samples
                .iter()
                .find(|s| s.name == format!("{name}_count") && format!("{:?}", s.labels) == key)
                .unwrap_or_else(|| panic!("{name}{key}: no _count"));
            assert_eq!(count.value, inf, "{name}{key}: +Inf bucket != _count");
        }
    }
    samples
}

/// The declared family a sample name belongs to.
fn family<'a>(name: &str, types: &'a BTreeMap<String, String>) -> Option<&'a str> {
    if let Some((k, _)) = types.get_key_value(name) {
        return Some(k);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some((k, t)) = types.get_key_value(base)
            && (t == "histogram" || t == "summary")
        {
            return Some(k);
        }
    }
    None
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn bad(line: &str) -> ! {
    panic!("bad sample line: {line}")
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| bad(line));
    let name = &line[..name_end];
    assert!(valid_name(name), "bad metric name: {line}");
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        loop {
            // A label name, `=`, a quoted value; then `,` or `}`.
            let mut lname = String::new();
            let mut closed_at = None;
            for (i, c) in chars.by_ref() {
                match c {
                    '=' => break,
                    '}' if lname.is_empty() => {
                        closed_at = Some(i);
                        break;
                    }
                    c => lname.push(c),
                }
            }
            if let Some(i) = closed_at {
                rest = &inner[i + 1..];
                break;
            }
            assert!(
                valid_name(&lname) && !lname.contains(':'),
                "bad label name {lname:?}: {line}"
            );
            if chars.next().map(|(_, c)| c) != Some('"') {
                bad(line);
            }
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        _ => bad(line),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => bad(line),
                }
            }
            assert!(labels.insert(lname, value).is_none(), "label twice: {line}");
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    rest = &inner[i + 1..];
                    break;
                }
                _ => bad(line),
            }
        }
    }
    let mut fields = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| bad(line))
        .split(' ');
    let value = match fields.next().unwrap_or_else(|| bad(line)) {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().unwrap_or_else(|_| bad(line)),
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().unwrap_or_else(|_| bad(line));
    }
    assert!(fields.next().is_none(), "trailing fields: {line}");
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().map(|s| s.value)
}

/// GET `url` with an optional Bearer token: the status and the text.
async fn get(url: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(20));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    if status == StatusCode::OK {
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    }
    (status, resp.text().await.unwrap())
}

async fn scrape(d: &Daemon) -> Vec<Sample> {
    let (s, text) = get(&format!("{}/metrics", d.base), None).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    parse(&text)
}

#[tokio::test]
async fn counters_follow_a_known_sequence_of_calls() {
    let d = Daemon::start_with(|c| {
        admin_approves(c);
        dev(c);
        c.metrics.enabled = true;
    })
    .await;
    let admin = d.admin.clone();
    let r = Receiver::start().await;
    let sub = subscribe(&d, &r, json!({"events": ["audit.*"]})).await;
    let sub_id = sub["id"].as_str().unwrap().to_string();

    // A lease on a sensitive secret for a tier 2 agent waits for an approval.
    d.put(
        &admin,
        "prod/db",
        json!({"value": "METRICS-CANARY-4471", "sensitivity": "sensitive"}),
    )
    .await;
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/grants",
            Some(&admin),
            Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "prod/**", "actions": ["read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, key) = d.agent("metered", 2).await;
    let (s, pending) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(&key),
            Some(json!({"path": "/prod/db", "reason": "metrics"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{pending}");
    assert_eq!(pending["state"], "pending");
    let lease = pending["id"].as_str().unwrap().to_string();
    let approval = pending["approval"]["id"].as_str().unwrap().to_string();

    let m = scrape(&d).await;
    assert_eq!(
        value(&m, "latchkey_leases", &[("state", "pending")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "latchkey_leases", &[("state", "active")]),
        Some(0.0)
    );
    assert_eq!(value(&m, "latchkey_approvals_pending", &[]), Some(1.0));
    assert_eq!(value(&m, "latchkey_approvals_opened_total", &[]), Some(1.0));
    assert_eq!(
        value(
            &m,
            "latchkey_approval_decision_seconds_count",
            &[("decision", "approved")]
        ),
        None,
        "nothing decided yet"
    );

    // Decided: the lease is active, and the decision's latency is observed once.
    let (s, b) = d
        .call(
            Method::POST,
            &format!("/v1/approvals/{approval}/votes"),
            Some(&admin),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Three reads of the lease, one path that matches no route, one job run.
    for _ in 0..3 {
        let (s, b) = d
            .call(
                Method::GET,
                &format!("/v1/leases/{lease}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["state"], "active");
    }
    let (s, _) = d
        .call(Method::GET, "/v1/no-such-thing/12345", None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = d
        .call(Method::POST, "/v1/jobs/rewrap/run", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let m = scrape(&d).await;
    let requests = |route: &str, method: &str, status: &str| {
        value(
            &m,
            "latchkey_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(requests("/v1/leases/{id}", "GET", "200"), Some(3.0));
    assert_eq!(requests("/v1/leases", "POST", "201"), Some(1.0));
    assert_eq!(
        requests("/v1/approvals/{id}/votes", "POST", "200"),
        Some(1.0)
    );
    assert_eq!(requests("unmatched", "GET", "404"), Some(1.0));
    assert_eq!(
        requests("/metrics", "GET", "200"),
        Some(1.0),
        "the first scrape"
    );
    assert_eq!(
        value(
            &m,
            "latchkey_http_request_duration_seconds_count",
            &[("route", "/v1/leases/{id}"), ("method", "GET")]
        ),
        Some(3.0)
    );
    // No path, id or name is a label value anywhere.
    for s in &m {
        for v in s.labels.values() {
            assert!(
                !v.contains(&lease) && !v.contains("prod/db") && !v.contains("metered"),
                "unbounded label value in {s:?}"
            );
        }
    }
    assert_eq!(
        value(
            &m,
            "latchkey_approval_decision_seconds_count",
            &[("decision", "approved")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&m, "latchkey_approvals_pending", &[]), Some(0.0));
    assert_eq!(
        value(&m, "latchkey_leases", &[("state", "pending")]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "latchkey_leases", &[("state", "active")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "latchkey_lease_transitions_total",
            &[("state", "active")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "latchkey_job_runs_total",
            &[("job", "rewrap"), ("result", "ok")]
        ),
        Some(1.0)
    );
    assert!(value(&m, "latchkey_store_batch_size_count", &[]).unwrap() >= 1.0);
    assert!(
        value(
            &m,
            "latchkey_store_batches_total",
            &[("outcome", "committed")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        value(&m, "latchkey_store_batches_total", &[("outcome", "failed")]),
        Some(0.0)
    );
    assert_eq!(value(&m, "latchkey_store_readable", &[]), Some(1.0));
    assert_eq!(
        value(
            &m,
            "latchkey_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );

    // Webhooks: once the receiver has every event, each 2xx answer is one `delivered`
    // and the subscription's lag is 0 (bounded wait: delivery is asynchronous).
    let last = d.get("/v1/audit?limit=1").await.1["last_seq"]
        .as_u64()
        .unwrap();
    let got = r
        .wait_for(Duration::from_secs(20), |g| {
            g.iter().any(|x| x.body["data"]["seq"] == last)
        })
        .await;
    assert!(got.iter().any(|x| x.body["data"]["seq"] == last));
    let deadline = Instant::now() + Duration::from_secs(20);
    let (delivered, lag) = loop {
        let m = scrape(&d).await;
        let delivered = value(
            &m,
            "latchkey_webhook_deliveries_total",
            &[("outcome", "delivered")],
        );
        let lag = value(
            &m,
            "latchkey_webhook_lag_events",
            &[("subscription", &sub_id)],
        );
        let answered = r.received().iter().filter(|x| x.answered < 300).count() as f64;
        if (delivered == Some(answered) && lag == Some(0.0)) || Instant::now() > deadline {
            break (delivered, lag);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let answered = r.received().iter().filter(|x| x.answered < 300).count() as f64;
    assert!(answered >= 1.0);
    assert_eq!(delivered, Some(answered));
    assert_eq!(lag, Some(0.0));
    d.stop().await;
}

#[tokio::test]
async fn a_separate_listener_serves_metrics_and_the_api_listener_does_not() {
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", metrics.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let admin = init_store(dir.path()).await;
    let d = Daemon::start_serving(
        dir,
        admin,
        |c| {
            c.metrics.enabled = true;
            c.metrics.listen = "127.0.0.1:0".into();
            c.metrics.bearer_token = latchkey::config::Credential("scrape-token-1".into());
        },
        Some(metrics),
    )
    .await;
    // The API listener answers as for any unknown path.
    let (s, b) = d.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, _) = d.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    // The metrics listener wants the token, then answers; nothing else is served there.
    assert_eq!(get(&metrics_url, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&metrics_url, Some("scrape-token-2")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, text) = get(&metrics_url, Some("scrape-token-1")).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let m = parse(&text);
    // The API's requests are counted; the metrics listener's own are not API requests.
    assert_eq!(
        value(
            &m,
            "latchkey_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "latchkey_http_requests_total",
            &[("route", "/healthz"), ("status", "200")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "latchkey_http_requests_total", &[("route", "/metrics")]),
        None
    );
    let other = format!("{}/healthz", metrics_url.trim_end_matches("/metrics"));
    assert_eq!(get(&other, None).await.0, StatusCode::NOT_FOUND);
    d.stop().await;
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let d = Daemon::start().await;
    let (s, b) = d.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    d.stop().await;
}

#[tokio::test]
async fn chat_api_calls_by_platform_call_and_outcome() {
    use crate::channel_world::{DC_CHANNEL, Setup, WAIT, configure};
    use bots::fake::discord::FakeDiscord;
    use bots::fake::telegram::FakeTelegram;
    let tg = FakeTelegram::start().await;
    let dc = FakeDiscord::start(&[DC_CHANNEL]).await;
    let (tg_url, dc_url) = (tg.url.clone(), dc.url.clone());
    let d = Daemon::start_with(move |c| {
        configure(
            c,
            &Setup {
                webhook: true,
                ..Setup::default()
            },
            &tg_url,
            &dc_url,
        );
        c.metrics.enabled = true;
    })
    .await;
    let admin = d.admin.clone();
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/grants",
            Some(&admin),
            Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "**", "actions": ["read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    d.put(
        &admin,
        "production/db",
        json!({"value": "CHAT-METRICS-7", "sensitivity": "critical"}),
    )
    .await;
    let (_, key) = d.agent("chatty", 1).await;
    // The first card post to Telegram is rate limited once, then goes through.
    tg.rate_limit_next("sendMessage", 1);
    let (s, l) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(&key),
            Some(json!({"path": "/production/db", "reason": "chat"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    assert_eq!(l["state"], "pending");
    // One card in the main Telegram chat (the only route for production paths) and one in
    // the Discord channel; the counts follow once the daemon has its answers (the start-up
    // checks and setWebhook run beside them).
    let calls = |m: &[Sample], platform: &str, call: &str, outcome: &str| {
        value(
            m,
            "latchkey_chat_api_calls_total",
            &[("platform", platform), ("call", call), ("outcome", outcome)],
        )
    };
    let until = Instant::now() + WAIT;
    let m = loop {
        let m = scrape(&d).await;
        let done = [
            ("telegram", "post"),
            ("discord", "post"),
            ("telegram", "check"),
            ("discord", "check"),
            ("telegram", "webhook"),
        ]
        .iter()
        .all(|(p, c)| calls(&m, p, c, "ok") == Some(1.0));
        if done || Instant::now() > until {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(calls(&m, "telegram", "post", "ok"), Some(1.0));
    assert_eq!(calls(&m, "telegram", "post", "rate_limited"), Some(1.0));
    assert_eq!(calls(&m, "discord", "post", "ok"), Some(1.0));
    assert_eq!(calls(&m, "telegram", "check", "ok"), Some(1.0));
    assert_eq!(calls(&m, "discord", "check", "ok"), Some(1.0));
    assert_eq!(calls(&m, "telegram", "webhook", "ok"), Some(1.0));
    assert_eq!(tg.calls_to("sendMessage").len(), 2);
    d.stop().await;
}

#[test]
fn the_parser_refuses_what_the_format_refuses() {
    let ok =
        "# HELP a_total x.\n# TYPE a_total counter\na_total{r=\"/v1/x/{id}\",s=\"q\\\"b\"} 1\n";
    let got = parse(ok);
    assert_eq!(got[0].labels["r"], "/v1/x/{id}");
    assert_eq!(got[0].labels["s"], "q\"b");
    for bad in [
        "a_total 1\n",
        "# TYPE a counter\na{r=/x} 1\n",
        "# TYPE a counter\na{r=\"x\"}\n",
        "# TYPE a counter\na 1 2 3\n",
        "# TYPE a counter\n# TYPE a counter\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n",
    ] {
        assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "{bad}");
    }
}
