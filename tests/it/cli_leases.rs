//! The lease and approval CLI against a running daemon: an agent's `lease request --wait
//! --reveal` blocks until an admin approves on the CLI and then prints exactly the value; a
//! deny ends it with a non-zero exit; without --reveal no value is ever printed; grants,
//! policies, approver tokens and lease listing work from the command line. Every wait is
//! bounded.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Daemon, cli_command as command, finish, output_text as text};

const CANARY: &str = "CLI-LEASE-CANARY-7f3a";

/// Runs the CLI with the whitespace-separated arguments of `line` (at most 30 s).
fn cli(base: &str, token: &str, line: &str) -> Output {
    let args: Vec<&str> = line.split_whitespace().collect();
    crate::common::cli(base, token, &args)
}

/// Polls `approvals ls --json` as `token` until a pending approval for `path` shows up
/// (at most 15 s); fails at once if the requesting process ended first.
fn pending_approval(base: &str, token: &str, path: &str, requester: &mut Child) -> Value {
    let start = Instant::now();
    loop {
        let out = cli(base, token, "approvals ls --json");
        assert!(out.status.success(), "{}", text(&out));
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(a) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["path"] == path && a["tally"]["state"] == "pending")
        {
            return a.clone();
        }
        if let Some(status) = requester.try_wait().unwrap() {
            panic!("the requester ended before its approval appeared: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no pending approval for {path}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A daemon with critical secrets `shared/x` and `shared/y`, a standard `shared/z`, an agent
/// of tier 3 (critical needs approval, standard is instant); returns the agent's key.
async fn world() -> (Daemon, String) {
    let d = Daemon::start_with(crate::common::admin_approves).await;
    let admin = d.admin.clone();
    for (path, sensitivity) in [
        ("shared/x", "critical"),
        ("shared/y", "critical"),
        ("shared/z", "standard"),
    ] {
        let (s, b) = d
            .put(
                &admin,
                path,
                json!({"value": format!("{CANARY}-{path}"), "sensitivity": sensitivity}),
            )
            .await;
        assert!(s.is_success(), "{b}");
    }
    let (_, key) = d.agent("cli-lease-agent", 3).await;
    (d, key)
}

fn grant(base: &str, admin: &str) {
    let out = cli(
        base,
        admin,
        "grant create --namespace entities --pattern shared/** --action read",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("namespace:entities may read on shared/**"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn approve_on_the_cli_releases_a_waiting_reveal() {
    let (d, key) = world().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    tokio::task::spawn_blocking(move || {
        grant(&base, &admin);
        let args = [
            "lease",
            "request",
            "/shared/x",
            "--wait",
            "--reveal",
            "--timeout",
            "20",
            "--reason",
            "deploy the app",
        ];
        let mut requester = command(&base, &key, &args).spawn().unwrap();
        let approval = pending_approval(&base, &admin, "shared/x", &mut requester);
        let id = approval["id"].as_str().unwrap().to_string();

        // The human table shows the request.
        let table = cli(&base, &admin, "approvals ls");
        let t = text(&table);
        assert!(t.contains(&id) && t.contains("cli-lease-agent (3)"), "{t}");
        assert!(t.contains("deploy the app") && t.contains("0/1"), "{t}");
        let show = cli(&base, &admin, &format!("approvals show {id}"));
        assert!(
            text(&show).contains("policy: default: tier 3 × critical"),
            "{}",
            text(&show)
        );

        let approve = cli(&base, &admin, &format!("approve {id} --reason looks-fine"));
        assert!(approve.status.success(), "{}", text(&approve));
        assert_eq!(
            String::from_utf8_lossy(&approve.stdout).trim(),
            "decided: lease is now active"
        );

        let out = finish(requester, Duration::from_secs(25));
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{CANARY}-shared/x\n"),
            "exactly the value on stdout"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("latchkey approve {id}")), "{err}");
        assert!(!err.contains(CANARY), "{err}");

        // A second vote is refused with the daemon's message and a non-zero exit.
        let again = cli(&base, &admin, &format!("approve {id}"));
        assert!(!again.status.success());
        let t = text(&again);
        assert!(
            t.contains("already decided") && t.contains("by admin"),
            "{t}"
        );
        assert_eq!(t.trim().lines().count(), 1, "{t}");
    })
    .await
    .unwrap();
    d.stop().await;
}

#[tokio::test]
async fn deny_on_the_cli_fails_the_requester() {
    let (d, key) = world().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    tokio::task::spawn_blocking(move || {
        grant(&base, &admin);
        let args = [
            "lease",
            "request",
            "/shared/y",
            "--wait",
            "--reveal",
            "--timeout",
            "20",
        ];
        let mut requester = command(&base, &key, &args).spawn().unwrap();
        let approval = pending_approval(&base, &admin, "shared/y", &mut requester);
        let id = approval["id"].as_str().unwrap();
        let deny = cli(&base, &admin, &format!("deny {id} --reason not-today"));
        assert!(deny.status.success(), "{}", text(&deny));
        assert!(
            text(&deny).contains("decided: lease is now denied"),
            "{}",
            text(&deny)
        );

        let out = finish(requester, Duration::from_secs(25));
        assert!(!out.status.success(), "{}", text(&out));
        assert!(out.stdout.is_empty(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("was denied by admin"), "{err}");
        assert!(!err.contains(CANARY), "{err}");

        // Voting on a decided approval: the message alone, non-zero.
        let late = cli(&base, &admin, &format!("approve {id}"));
        assert!(!late.status.success());
        assert!(
            text(&late).contains("already decided (denied)"),
            "{}",
            text(&late)
        );
    })
    .await
    .unwrap();
    d.stop().await;
}

#[tokio::test]
async fn no_value_without_reveal_and_the_other_commands() {
    let (d, key) = world().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    tokio::task::spawn_blocking(move || {
        grant(&base, &admin);
        // Instant (tier 3 × standard): active, but no value without --reveal.
        let out = cli(&base, &key, "lease request /shared/z --wait --uses 2");
        assert!(out.status.success(), "{}", text(&out));
        assert!(!text(&out).contains(CANARY), "{}", text(&out));
        assert!(text(&out).contains("use --reveal to print the value"), "{}", text(&out));
        assert!(text(&out).contains("policy: default: tier 3 × standard"), "{}", text(&out));

        // Pending without --wait: exits 0 saying "pending", how to wait, and the approval to
        // give; nothing claims to be waiting, and no value.
        let out = cli(&base, &key, "lease request /shared/x --json");
        assert!(out.status.success(), "{}", text(&out));
        assert!(!text(&out).contains(CANARY));
        let pending: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(pending["state"], "pending");
        let err = String::from_utf8_lossy(&out.stderr);
        let (lid, appr) = (pending["id"].as_str().unwrap(), pending["approval"]["id"].as_str().unwrap());
        assert!(err.contains(&format!("lease {lid} is pending")), "{err}");
        assert!(err.contains(&format!("latchkey lease wait {lid}")), "{err}");
        assert!(err.contains(&format!("latchkey approve {appr}")), "{err}");
        assert!(!err.contains("waiting"), "{err}");
        let out = cli(&base, &key, "lease request /shared/x");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains(": pending (policy:"), "{}", text(&out));
        assert!(!text(&out).contains("waiting"), "{}", text(&out));
        // --reveal on a pending lease without --wait: a clear failure (8: pending), no value.
        let out = cli(&base, &key, "lease request /shared/x --reveal");
        assert_eq!(out.status.code(), Some(8), "{}", text(&out));
        assert!(out.stdout.is_empty(), "{}", text(&out));
        assert!(text(&out).contains("add --wait"), "{}", text(&out));
        // A short --timeout ends a wait that nobody answers: 8, and it did wait that long.
        let start = Instant::now();
        let out = cli(&base, &key, "lease request /shared/x --wait --timeout 2");
        assert_eq!(out.status.code(), Some(8), "{}", text(&out));
        assert!(text(&out).contains("still pending after 2 s"), "{}", text(&out));
        assert!(text(&out).contains("waiting for approval"), "{}", text(&out));
        assert!(start.elapsed() >= Duration::from_secs(2), "--timeout 2 waits 2 s");
        // `lease wait` on the first pending lease: the same bounded wait.
        let start = Instant::now();
        let out = cli(&base, &key, &format!("lease wait {lid} --timeout 1"));
        assert_eq!(out.status.code(), Some(8), "{}", text(&out));
        assert!(start.elapsed() >= Duration::from_secs(1));

        // The agent lists its leases; `lease read` is an explicit read and prints the value.
        let ls = cli(&base, &key, "lease ls --state active --json");
        assert!(ls.status.success(), "{}", text(&ls));
        let active: Value = serde_json::from_slice(&ls.stdout).unwrap();
        let lid = active[0]["id"].as_str().unwrap().to_string();
        assert_eq!(active[0]["path"], "shared/z");
        let read = cli(&base, &key, &format!("lease read {lid}"));
        assert!(read.status.success(), "{}", text(&read));
        assert_eq!(String::from_utf8_lossy(&read.stdout), format!("{CANARY}-shared/z\n"));
        let show = cli(&base, &key, &format!("lease show {lid}"));
        assert!(text(&show).contains("uses_left: 1"), "{}", text(&show));
        let revoke = cli(&base, &key, &format!("lease revoke {lid}"));
        assert!(text(&revoke).contains("is now revoked"), "{}", text(&revoke));
        let read = cli(&base, &key, &format!("lease read {lid}"));
        assert!(!read.status.success() && read.stdout.is_empty(), "{}", text(&read));
        let table = cli(&base, &admin, "lease ls");
        assert!(text(&table).contains("cli-lease-agent"), "{}", text(&table));
        // Paging: the leases older than the newest, one page of one.
        let all: Value = serde_json::from_slice(&cli(&base, &key, "lease ls --json").stdout).unwrap();
        let all = all.as_array().unwrap();
        assert!(all.len() >= 2, "{all:?}");
        let newest = all[0]["id"].as_str().unwrap();
        let next = cli(&base, &key, &format!("lease ls --limit 1 --before {newest} --json"));
        let next: Value = serde_json::from_slice(&next.stdout).unwrap();
        assert_eq!(next.as_array().map(Vec::len), Some(1));
        assert_eq!(next[0]["id"], all[1]["id"]);

        // Grants, policies and approver tokens.
        let grants = cli(&base, &admin, "grant ls --json");
        let list: Value = serde_json::from_slice(&grants.stdout).unwrap();
        let gid = list[0]["id"].as_str().unwrap().to_string();
        let set = cli(
            &base,
            &admin,
            "policy set shared/** --require approval --quorum 2 --deadline 60 --tier 3 --sensitivity standard");
        assert!(set.status.success(), "{}", text(&set));
        let policies = cli(&base, &admin, "policy ls");
        assert!(text(&policies).contains("approval ×2, 60s then deny"), "{}", text(&policies));
        let out = cli(&base, &key, "lease request /shared/z --json");
        let l: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((l["state"].as_str(), l["policy"]["quorum"].as_u64()), (Some("pending"), Some(2)));
        let rm = cli(&base, &admin, "policy rm shared/**");
        assert!(rm.status.success(), "{}", text(&rm));
        let policies = cli(&base, &admin, "policy ls --json");
        assert_eq!(serde_json::from_slice::<Value>(&policies.stdout).unwrap(), json!([]));

        let token = cli(&base, &admin, "approver token alice");
        assert!(token.status.success(), "{}", text(&token));
        let tok = String::from_utf8_lossy(&token.stdout).trim().to_string();
        assert!(tok.starts_with("lk_appr_") && !tok.contains(char::is_whitespace), "{tok}");
        let as_alice = cli(&base, &tok, "approvals ls --json");
        assert!(as_alice.status.success(), "{}", text(&as_alice));

        let rm = cli(&base, &admin, &format!("grant rm {gid}"));
        assert!(rm.status.success(), "{}", text(&rm));
        let out = cli(&base, &key, "lease request /shared/z");
        assert!(!out.status.success(), "no grant, no lease: {}", text(&out));
    })
    .await
    .unwrap();
    d.stop().await;
}
