//! `latchkey run` against a running daemon: it hands secrets and bundle entries to the
//! child's environment only (never the parent's argv, environment or a file), passes the
//! child's exit code through, forwards SIGTERM, and leaves no lease open; a lease that needs
//! approval is waited for (or times out and runs nothing). Every wait is bounded.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Daemon, cli, cli_command as command, finish, output_text as text};

pub(crate) const OPENAI: &str = "sk-run-CANARY";
pub(crate) const STRIPE: &str = "sk_stripe_CANARY";
const GATED: &str = "sk-gated-CANARY";

/// Polls `cond` every 50 ms for at most `limit`.
fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pids whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let want = format!("PPid:\t{pid}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .is_ok_and(|s| s.lines().any(|l| l == want))
        })
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file below `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| contains(&b, needle)) {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

/// A daemon with `apps/openai`, the bundle `apps/stripe` and `apps/gated` (which a policy
/// puts behind an approval), and an agent of tier 5 granted `read` on `apps/**`; returns
/// the agent's key.
pub(crate) async fn world() -> (Daemon, String) {
    let d = Daemon::start_with(crate::common::admin_approves).await;
    let admin = d.admin.clone();
    for (path, body) in [
        ("apps/openai", json!({"value": OPENAI})),
        (
            "apps/stripe",
            json!({"type": "env_bundle", "entries": {"STRIPE_KEY": STRIPE}}),
        ),
        ("apps/gated", json!({"value": GATED})),
    ] {
        let (s, b) = d.put(&admin, path, body).await;
        assert!(s.is_success(), "{b}");
    }
    let (_, key) = d.agent("runner", 5).await;
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/grants",
            Some(&admin),
            Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "apps/**", "actions": ["read"]})),
        )
        .await;
    assert!(s.is_success(), "{b}");
    (d, key)
}

/// Polls `approvals ls --json` as `admin` until a pending approval for `apps/gated` shows
/// up (at most 15 s), failing at once if `waiting` ended first; returns its id.
fn pending_approval(base: &str, admin: &str, waiting: &mut Child) -> String {
    let mut id = String::new();
    eventually("a pending approval", Duration::from_secs(15), || {
        assert!(
            waiting.try_wait().unwrap().is_none(),
            "latchkey run ended early"
        );
        let out = cli(base, admin, &["approvals", "ls", "--json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        let found = list
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["path"] == "apps/gated" && a["tally"]["state"] == "pending");
        if let Some(a) = found {
            id = a["id"].as_str().unwrap().to_string();
        }
        found.is_some()
    });
    id
}

/// The agent's leases, as the admin sees them.
async fn leases(d: &Daemon) -> Vec<Value> {
    let (s, b) = d.get("/v1/leases?limit=1000").await;
    assert!(s.is_success(), "{b}");
    b.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["agent_name"] == "runner")
        .cloned()
        .collect()
}

#[tokio::test]
async fn run_hands_secrets_to_the_child_only() {
    let (d, key) = world().await;
    let base = d.base.clone();
    let data_dir = d.dir.path().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        // The value and the bundle entry reach the child; its exit code comes back.
        let script = r#"printf "%s|%s" "$OPENAI_API_KEY" "$STRIPE_KEY"; exit 7"#;
        let out = finish(
            command(
                &base,
                &key,
                &[
                    "run",
                    "--secret",
                    "OPENAI_API_KEY=/apps/openai",
                    "--bundle",
                    "/apps/stripe",
                    "--",
                    "sh",
                    "-c",
                    script,
                ],
            )
            .current_dir(&cwd)
            .spawn()
            .unwrap(),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(7), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{OPENAI}|{STRIPE}")
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.is_empty(),
            "nothing to say, not even about revoking: {err}"
        );

        // While the child runs, the parent's argv and environment hold no value; the child's
        // environment does, without the agent's token.
        let mut parent = command(
            &base,
            &key,
            &[
                "run",
                "--secret",
                "OPENAI_API_KEY=/apps/openai",
                "--bundle",
                "/apps/stripe",
                "--",
                "sh",
                "-c",
                "sleep 2",
            ],
        )
        .current_dir(&cwd)
        .spawn()
        .unwrap();
        let pid = parent.id();
        let mut kids = Vec::new();
        eventually("the child to start", Duration::from_secs(15), || {
            if let Some(st) = parent.try_wait().unwrap() {
                panic!("latchkey run ended early: {st}");
            }
            kids = children(pid);
            !kids.is_empty()
        });
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            contains(&cmdline, "OPENAI_API_KEY=/apps/openai"),
            "sanity: argv is readable"
        );
        assert!(
            contains(&environ, "LATCHKEY_TOKEN="),
            "sanity: environ is readable"
        );
        for canary in [OPENAI, STRIPE] {
            assert!(!contains(&cmdline, canary), "value in the parent's argv");
            assert!(
                !contains(&environ, canary),
                "value in the parent's environment"
            );
        }
        let child_env = std::fs::read(format!("/proc/{}/environ", kids[0])).unwrap();
        assert!(contains(&child_env, &format!("OPENAI_API_KEY={OPENAI}")));
        assert!(contains(&child_env, &format!("STRIPE_KEY={STRIPE}")));
        assert!(
            !contains(&child_env, "LATCHKEY_TOKEN="),
            "the token is not passed on"
        );
        let out = finish(parent, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(out.stdout.is_empty(), "{}", text(&out));

        // No value in any file: neither the working directory nor the daemon's data.
        for dir in [&cwd, &data_dir] {
            for canary in [OPENAI, STRIPE] {
                assert_eq!(
                    files_containing(dir, canary),
                    Vec::<String>::new(),
                    "{canary}"
                );
            }
        }

        // Bad mappings are refused by the parser, before any request (the address is dead).
        for bad in [
            "NOEQUALS",
            "=/apps/openai",
            "9X=/apps/openai",
            "BAD-NAME=/apps/openai",
        ] {
            let out = cli(
                "http://127.0.0.1:1",
                &key,
                &["run", "--secret", bad, "--", "true"],
            );
            assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
            assert!(!text(&out).contains("cannot reach"), "{}", text(&out));
        }
        // A plain secret as --bundle, a bundle as --secret: refused, nothing run.
        let marker = cwd.join("ran");
        let touch = format!("touch {}", marker.display());
        let out = cli(
            &base,
            &key,
            &["run", "--bundle", "/apps/openai", "--", "sh", "-c", &touch],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("not an env_bundle"), "{}", text(&out));
        let out = cli(
            &base,
            &key,
            &[
                "run",
                "--secret",
                "X=/apps/stripe",
                "--",
                "sh",
                "-c",
                &touch,
            ],
        );
        assert!(text(&out).contains("use --bundle"), "{}", text(&out));
        // A missing program: 127, as a shell says.
        let out = cli(
            &base,
            &key,
            &[
                "run",
                "--secret",
                "X=/apps/openai",
                "--",
                "/no/such/program",
            ],
        );
        assert_eq!(out.status.code(), Some(127), "{}", text(&out));
        assert!(!marker.exists(), "nothing was run");
    })
    .await
    .unwrap();

    // Every lease is over: used up (single use) or revoked.
    let all = leases(&d).await;
    assert!(all.len() >= 7, "{all:?}");
    for l in &all {
        assert!(l["state"] == "exhausted" || l["state"] == "revoked", "{l}");
        assert_eq!(l["uses"], 1, "{l}");
    }
    d.stop().await;
}

#[tokio::test]
async fn sigterm_reaches_the_child() {
    let (d, key) = world().await;
    let base = d.base.clone();
    let work = tempfile::tempdir().unwrap();
    let ready = work.path().join("ready");
    tokio::task::spawn_blocking(move || {
        let script = format!(
            "trap 'kill $p; exit 42' TERM; sleep 30 & p=$!; touch {}; wait",
            ready.display()
        );
        let parent = command(
            &base,
            &key,
            &[
                "run",
                "--secret",
                "OPENAI_API_KEY=/apps/openai",
                "--",
                "sh",
                "-c",
                &script,
            ],
        )
        .spawn()
        .unwrap();
        eventually("the child's trap", Duration::from_secs(15), || {
            ready.exists()
        });
        let kill = Command::new("kill")
            .args(["-s", "TERM", &parent.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = finish(parent, Duration::from_secs(15));
        assert_eq!(out.status.code(), Some(42), "{}", text(&out));
    })
    .await
    .unwrap();
    d.stop().await;
}

#[tokio::test]
async fn run_waits_for_an_approval_or_runs_nothing() {
    let (d, key) = world().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("ran");
    let approved = tokio::task::spawn_blocking(move || {
        let out = cli(
            &base,
            &admin,
            &["policy", "set", "apps/gated", "--require", "approval"],
        );
        assert!(out.status.success(), "{}", text(&out));

        // Nobody decides within --timeout: 8 (still pending) after the full --timeout, and
        // the command never runs.
        let touch = format!("touch {}", marker.display());
        let start = Instant::now();
        let args = [
            "run",
            "--secret",
            "G=/apps/gated",
            "--timeout",
            "2",
            "--reason",
            "nightly",
            "--",
            "sh",
            "-c",
            &touch,
        ];
        let out = cli(&base, &key, &args);
        assert_eq!(out.status.code(), Some(8), "{}", text(&out));
        assert!(
            text(&out).contains("still pending after 2 s"),
            "{}",
            text(&out)
        );
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "--timeout 2 waits the full 2 s"
        );
        assert!(text(&out).contains("latchkey approve"), "{}", text(&out));
        assert!(!marker.exists());
        assert!(start.elapsed() < Duration::from_secs(15));

        // SIGTERM while waiting: the pending lease is revoked, nothing runs, 128+15.
        let args = [
            "run",
            "--secret",
            "G=/apps/gated",
            "--timeout",
            "20",
            "--",
            "sh",
            "-c",
            &touch,
        ];
        let mut waiting = command(&base, &key, &args).spawn().unwrap();
        pending_approval(&base, &admin, &mut waiting);
        let kill = Command::new("kill")
            .args(["-s", "TERM", &waiting.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = finish(waiting, Duration::from_secs(15));
        assert_eq!(out.status.code(), Some(143), "{}", text(&out));
        assert!(
            text(&out).contains("interrupted by SIGTERM"),
            "{}",
            text(&out)
        );
        assert!(!marker.exists());

        // An approval releases it: the child gets the value.
        let script = r#"printf "%s" "$G""#;
        let args = [
            "run",
            "--secret",
            "G=/apps/gated",
            "--timeout",
            "20",
            "--",
            "sh",
            "-c",
            script,
        ];
        let mut runner = command(&base, &key, &args).spawn().unwrap();
        let id = pending_approval(&base, &admin, &mut runner);
        let out = cli(&base, &admin, &["approve", &id]);
        assert!(out.status.success(), "{}", text(&out));
        let out = finish(runner, Duration::from_secs(25));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), GATED);
        assert!(String::from_utf8_lossy(&out.stderr).contains(&id));
        id
    })
    .await
    .unwrap();

    // The timed-out and the interrupted leases were revoked (their approvals cancelled);
    // the approved one is used up.
    let gated: Vec<Value> = leases(&d)
        .await
        .into_iter()
        .filter(|l| l["path"] == "apps/gated")
        .collect();
    let mut states: Vec<&str> = gated.iter().map(|l| l["state"].as_str().unwrap()).collect();
    states.sort_unstable();
    assert_eq!(states, ["exhausted", "revoked", "revoked"], "{gated:?}");
    let (_, approvals) = d.get("/v1/approvals?state=all").await;
    let all = approvals.as_array().unwrap();
    let cancelled = all.iter().filter(|a| a["tally"]["state"] == "cancelled");
    assert_eq!(cancelled.count(), 2, "{approvals}");
    assert!(gated.iter().any(|l| l["reason"] == "nightly"));
    assert!(
        gated
            .iter()
            .any(|l| l["approval"]["id"] == approved.as_str())
    );
    d.stop().await;
}
