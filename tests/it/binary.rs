//! The real binary: `serve --dev`, start-up refusals (wrong master key, bad config),
//! graceful shutdown on SIGTERM, and a scan of the daemon's logs for secret values.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// Starts `latchkey serve --dev` in `cwd`; returns the child and the (addr, token) it printed.
fn serve_dev(cwd: &std::path::Path) -> (Child, String, String) {
    serve_dev_on(cwd, "127.0.0.1:0", Stdio::piped())
}

/// `serve --dev --listen LISTEN` in `cwd`, its debug logs to `stderr`; returns the child and
/// the (addr, token) it printed.
pub(crate) fn serve_dev_on(
    cwd: &std::path::Path,
    listen: &str,
    stderr: Stdio,
) -> (Child, String, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--dev", "--listen", listen])
        .current_dir(cwd)
        .env("LATCHKEY_LOG", "debug")
        .env_remove("LATCHKEY_MASTER_KEY")
        .env_remove("LATCHKEY_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut token) = (String::new(), String::new());
    for _ in 0..10 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(a) = line.strip_prefix("export LATCHKEY_ADDR=") {
            addr = a.to_string();
        } else if let Some(t) = line.strip_prefix("export LATCHKEY_TOKEN=") {
            token = t.to_string();
        } else if line.starts_with("# try: curl") {
            break;
        }
    }
    assert!(
        addr.starts_with("http://127.0.0.1:") && token.starts_with("lk_admin_"),
        "{addr} {token}"
    );
    (child, addr, token)
}

fn sigterm_and_wait(mut child: Child) -> (bool, String) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            // Show how far the shutdown got (the daemon logs its steps at debug level).
            let _ = child.kill();
            let _ = child.wait();
            let mut logs = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut logs);
            panic!("daemon did not stop within 20 s of SIGTERM; its logs:\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    (status.success(), logs)
}

#[tokio::test]
async fn serve_dev_round_trip_sigterm_and_no_values_in_logs() {
    if crate::common::redb_only() {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let (child, addr, token) = serve_dev(cwd.path());
    let mode = std::fs::metadata(cwd.path().join("latchkey-data")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o700);
    let http = reqwest::Client::new();
    let canaries = ["LOGSCAN-CANARY-3e1f", "LOGSCAN-CANARY-bundle-77"];
    let r = http
        .put(format!("{addr}/v1/secrets/prod/key"))
        .bearer_auth(&token)
        .json(&json!({"value": canaries[0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .put(format!("{addr}/v1/secrets/prod/env"))
        .bearer_auth(&token)
        .json(&json!({"type": "env_bundle", "entries": {"A": canaries[1]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A failing request whose body holds a value must not echo it either.
    let r = http
        .put(format!("{addr}/v1/secrets/prod/bad"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!("{{\"value\": \"{}\", \"oops\": 1}}", canaries[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(!r.text().await.unwrap().contains(canaries[0]));
    let audit = http
        .get(format!("{addr}/v1/audit?limit=1000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http.get(format!("{addr}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (ok, logs) = sigterm_and_wait(child);
    assert!(ok, "graceful exit: {logs}");
    assert!(logs.contains("latchkey stopped"), "{logs}");
    for c in canaries {
        assert!(!logs.contains(c), "the logs hold a value");
        assert!(!audit.contains(c), "the audit output holds a value");
    }

    // The development admin token is kept in the data directory, readable by its owner only.
    let saved = cwd.path().join("latchkey-data/dev-admin-token");
    assert_eq!(std::fs::read_to_string(&saved).unwrap().trim(), token);
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Second start on the same directory: the same admin token, the data still there.
    let (child, addr, token2) = serve_dev(cwd.path());
    assert_eq!(token, token2, "serve --dev reprints its token");
    let r = http
        .get(format!("{addr}/v1/secrets/prod/key"))
        .bearer_auth(&token2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: serde_json::Value = http
        .get(format!("{addr}/v1/admin-tokens"))
        .bearer_auth(&token2)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dev: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["description"] == "serve --dev")
        .collect();
    assert_eq!(dev.len(), 1, "no new token per start: {list}");
    // Revoked (with another admin token), it is replaced on the next start.
    let other: serde_json::Value = http
        .post(format!("{addr}/v1/admin-tokens"))
        .bearer_auth(&token2)
        .json(&json!({"description": "ops"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .delete(format!(
            "{addr}/v1/admin-tokens/{}",
            dev[0]["id"].as_str().unwrap()
        ))
        .bearer_auth(other["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (ok, _) = sigterm_and_wait(child);
    assert!(ok);
    let (child, addr, token3) = serve_dev(cwd.path());
    assert_ne!(token3, token, "a revoked token is not reprinted");
    assert_eq!(std::fs::read_to_string(&saved).unwrap().trim(), token3);
    let r = http
        .get(format!("{addr}/v1/whoami"))
        .bearer_auth(&token3)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (ok, _) = sigterm_and_wait(child);
    assert!(ok);
}

#[test]
fn init_with_master_key_env_and_wrong_key_refused() {
    if crate::common::redb_only() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_a = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
    let key_b = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";
    let out = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(&data)
        .env("LATCHKEY_MASTER_KEY", key_a)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("lk_admin_").count(),
        1,
        "the admin token is printed once: {stdout}"
    );
    assert!(
        !data.join("master.key").exists(),
        "a given master key is not written to disk"
    );
    let again = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(&data)
        .env("LATCHKEY_MASTER_KEY", key_a)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "init refuses an initialised directory"
    );

    let run = |key: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env_remove("LATCHKEY_MASTER_KEY");
        if let Some(k) = key {
            cmd.env("LATCHKEY_MASTER_KEY", k);
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let before = std::fs::read(data.join("latchkey.redb")).unwrap();
    for (key, expect) in [
        (Some(key_b), "master key does not match"),
        (None, "no master key"),
        (Some("short"), "32 bytes"),
    ] {
        let out = run(key).wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expect),
            "{key:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read(data.join("latchkey.redb")).unwrap(),
        before,
        "a refused start changes nothing"
    );
    // The right key starts it.
    let child = run(Some(key_a));
    std::thread::sleep(Duration::from_millis(500));
    let (ok, logs) = sigterm_and_wait(child);
    assert!(ok, "{logs}");
}

#[test]
fn sigterm_during_start_up_is_a_graceful_stop() {
    if crate::common::redb_only() {
        return;
    }
    // The export lines are printed while the daemon is still starting (before it serves):
    // a SIGTERM right then must stop it cleanly, not kill it.
    let cwd = tempfile::tempdir().unwrap();
    let (child, _, _) = serve_dev(cwd.path());
    let (ok, logs) = sigterm_and_wait(child);
    assert!(ok, "graceful exit: {logs}");
    assert!(logs.contains("latchkey stopped"), "{logs}");
}

#[test]
fn bad_config_is_refused_with_file_line_and_field() {
    if crate::common::redb_only() {
        return;
    }
    // Every refusal comes before the port is taken: the address given is already in use, so
    // a daemon that bound first would say "cannot listen" instead.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\n[tokens]\nmax_ttl = 5\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &busy, "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("config.toml") && err.contains("line 3") && err.contains("max_ttl"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["serve", "--listen", &busy, "--data-dir"])
        .arg(dir.path().join("none"))
        .env("LATCHKEY_TOKENS_MAX_TTL_SECONDS", "soon")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("LATCHKEY_TOKENS_MAX_TTL_SECONDS"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["serve", "--listen", &busy, "--data-dir"])
        .arg(dir.path().join("none"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("latchkey init") && !err.contains("cannot listen"),
        "{err}"
    );
}

#[tokio::test]
async fn a_second_daemon_on_the_same_data_dir_is_refused_before_it_binds() {
    if crate::common::redb_only() {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let (first, _, _) = serve_dev(cwd.path());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &busy, "--data-dir", "latchkey-data"])
        .current_dir(cwd.path())
        .env_remove("LATCHKEY_MASTER_KEY")
        .env_remove("LATCHKEY_DATA_DIR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("another latchkey is using") && err.contains("--data-dir"),
        "{err}"
    );
    assert!(!err.contains("cannot listen"), "{err}");
    let (clean, _) = sigterm_and_wait(first);
    assert!(clean);
}
