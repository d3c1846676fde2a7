//! The command line as a shell user meets it, from the real binary: global options before or
//! after the subcommand, `--json` refused where it does nothing, completions and man pages,
//! help text (examples, environment variables, NO_COLOR), and one exit code per class of
//! failure.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Daemon, admin_approves, cli, finish, output_text as text};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// The binary with only the given environment (no LATCHKEY_* or colour settings
/// inherited). Output goes through files: a completion script is larger than a pipe holds.
fn bare(args: &[&str], env: &[(&str, &str)]) -> Output {
    let files = tempfile::tempdir().unwrap();
    let (out, err) = (files.path().join("out"), files.path().join("err"));
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("LATCHKEY_ADDR")
        .env_remove("LATCHKEY_TOKEN")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    for (k, v) in env {
        c.env(k, v);
    }
    let status = finish(c.spawn().unwrap(), Duration::from_secs(30)).status;
    Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[tokio::test]
async fn global_options_before_or_after_the_subcommand() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    d.put(&admin, "g/one", json!({"value": "v"})).await;
    let base = d.base.clone();
    tokio::task::spawn_blocking(move || {
        // LATCHKEY_ADDR points nowhere: only a given --addr reaches the daemon.
        let env = [
            ("LATCHKEY_ADDR", "http://127.0.0.1:9"),
            ("LATCHKEY_TOKEN", admin.as_str()),
        ];
        for args in [
            vec!["secret", "ls", "g/", "--json", "--addr", &base],
            vec!["--json", "--addr", &base, "secret", "ls", "g/"],
            vec!["secret", "--addr", &base, "ls", "--json", "g/"],
            vec!["--addr", &base, "secret", "ls", "g/", "--json"],
        ] {
            let out = bare(&args, &env);
            assert!(out.status.success(), "{args:?}: {}", text(&out));
            let v: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("{args:?}: {}", text(&out)));
            assert_eq!(v["secrets"][0]["path"], "g/one", "{args:?}");
        }
        // --token after the subcommand, with no LATCHKEY_TOKEN at all.
        let out = bare(
            &["whoami", "--addr", &base, "--token", &admin, "--json"],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            serde_json::from_slice::<Value>(&out.stdout).unwrap()["kind"],
            "admin"
        );

        // --json where it does nothing is a usage error (2), before anything runs.
        for args in [
            &["run", "--secret", "A=/x", "--json", "--", "true"][..],
            &["--json", "completions", "bash"],
            &["serve", "--json", "--listen", "127.0.0.1:0"],
            &["init", "--json", "--data-dir", "/nonexistent/latchkey-test"],
            &["man", "--json"],
        ] {
            let out = bare(args, &env);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
            assert!(
                text(&out).contains("--json does nothing"),
                "{args:?}: {}",
                text(&out)
            );
            assert!(out.stdout.is_empty());
        }
        let out = bare(&["serve", "--addr", "http://127.0.0.1:1"], &[]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("--listen"), "{}", text(&out));
        assert!(!std::path::Path::new("/nonexistent/latchkey-test").exists());
    })
    .await
    .unwrap();
    d.stop().await;
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bare(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = stdout(&out);
        assert!(script.len() > 1000, "{shell}: {script}");
        for word in ["admin-token", "whoami", "lease", "json", "completions"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = bare(&["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = bare(&["man"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH latchkey 1"),
        "{page}"
    );
    assert!(
        page.contains("admin\\-token") && page.contains("whoami"),
        "{page}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = bare(&["man", "--dir", out_dir.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let put = std::fs::read_to_string(out_dir.join("latchkey-secret-put.1")).unwrap();
    assert!(put.contains(".TH latchkey-secret-put 1"), "{put}");
    assert!(put.contains(env!("CARGO_PKG_VERSION")), "{put}");
    assert!(
        put.contains("Examples:"),
        "the example is in the page: {put}"
    );
    assert!(out_dir.join("latchkey.1").exists());
    assert!(out_dir.join("latchkey-admin-token-revoke.1").exists());
    assert!(text(&out).contains("man pages"), "{}", text(&out));
}

#[test]
fn help_shows_examples_and_environment_variables_and_honours_no_color() {
    // With the variables set and unset: never a dangling `=` nor a value.
    for env in [
        &[][..],
        &[
            ("LATCHKEY_ADDR", "http://10.9.8.7:1"),
            ("LATCHKEY_TOKEN", "lk_admin_SECRET"),
        ],
    ] {
        for args in [
            &["--help"][..],
            &["secret", "ls", "--help"],
            &["agent", "show", "--help"],
            &["init", "--help"],
            &["serve", "--help"],
            &["run", "--help"],
        ] {
            let out = bare(args, env);
            assert!(out.status.success(), "{args:?}: {}", text(&out));
            let help = stdout(&out);
            assert!(!help.contains("=]"), "{args:?}: {help}");
            assert!(
                !help.contains("SECRET") && !help.contains("10.9.8.7"),
                "{help}"
            );
            if args.len() > 1 {
                assert!(help.contains("Example"), "{args:?}: {help}");
            }
        }
    }
    let help = stdout(&bare(&["secret", "ls", "--help"], &[]));
    assert!(
        help.contains("[env: LATCHKEY_ADDR]") && help.contains("[env: LATCHKEY_TOKEN]"),
        "{help}"
    );
    assert!(help.contains("latchkey secret ls production/"), "{help}");
    let serve = stdout(&bare(&["serve", "--help"], &[]));
    assert!(
        !serve.contains("--addr") && !serve.contains("--json"),
        "{serve}"
    );

    // Colour when forced, none when NO_COLOR says so (it wins over CLICOLOR_FORCE).
    let forced = bare(&["agent", "--help"], &[("CLICOLOR_FORCE", "1")]);
    assert!(
        stdout(&forced).contains("\x1b["),
        "forced colour: {}",
        stdout(&forced)
    );
    let plain = bare(
        &["agent", "--help"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert!(!stdout(&plain).contains('\x1b'), "{}", stdout(&plain));
    let error = bare(
        &["agent", "nope"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert_eq!(error.status.code(), Some(2));
    assert!(!text(&error).contains('\x1b'), "{}", text(&error));
}

/// A daemon where the agent's lease on the critical `shared/x` waits for an approver.
async fn gated() -> (Daemon, String) {
    let d = Daemon::start_with(admin_approves).await;
    let admin = d.admin.clone();
    let (s, b) = d
        .put(
            &admin,
            "shared/x",
            json!({"value": "EXIT-CANARY", "sensitivity": "critical"}),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let (s, b) = d.call(Method::POST, "/v1/grants", Some(&admin), Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "shared/**", "actions": ["read"]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, key) = d.agent("exit-bot", 3).await;
    (d, key)
}

#[tokio::test]
async fn exit_codes_tell_failures_apart() {
    let (d, key) = gated().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    tokio::task::spawn_blocking(move || {
        let lease = |line: &str| -> Value {
            let args: Vec<&str> = line.split_whitespace().collect();
            let out = cli(&base, &key, &args);
            assert!(out.status.success(), "{}", text(&out));
            serde_json::from_slice(&out.stdout).unwrap()
        };
        // A pending lease denied by the admin, one still pending, one revoked.
        let denied = lease("lease request /shared/x --json");
        let denied_id = denied["id"].as_str().unwrap().to_string();
        let approval = denied["approval"]["id"].as_str().unwrap().to_string();
        let out = cli(&base, &admin, &["deny", &approval]);
        assert!(out.status.success(), "{}", text(&out));
        let pending = lease("lease request /shared/x --json")["id"].as_str().unwrap().to_string();
        let revoked = lease("lease request /shared/x --json")["id"].as_str().unwrap().to_string();
        assert!(cli(&base, &key, &["lease", "revoke", &revoked]).status.success());
        assert!(cli(&base, &admin, &["agent", "create", "twice"]).status.success());

        let nowhere = "http://127.0.0.1:9";
        #[rustfmt::skip]
        let table: Vec<(u8, &str, &str, Vec<&str>)> = vec![
            (2, base.as_str(), admin.as_str(), vec!["secret", "get"]),
            (2, base.as_str(), admin.as_str(), vec!["secret", "get", "a/../b"]),
            (2, base.as_str(), admin.as_str(), vec!["run", "--json", "--bundle", "/b", "--", "true"]),
            (3, nowhere, admin.as_str(), vec!["secret", "ls"]),
            (3, nowhere, admin.as_str(), vec!["run", "--secret", "A=/x", "--", "true"]),
            (4, base.as_str(), "lk_admin_wrong", vec!["secret", "ls"]),
            (4, base.as_str(), "", vec!["secret", "ls"]),
            (4, base.as_str(), key.as_str(), vec!["agent", "ls"]),
            (5, base.as_str(), admin.as_str(), vec!["secret", "get", "no/such"]),
            (5, base.as_str(), admin.as_str(), vec!["lease", "show", "01jnosuchlease000000000000"]),
            (6, base.as_str(), admin.as_str(), vec!["agent", "create", "twice"]),
            (6, base.as_str(), admin.as_str(), vec!["approve", &approval]),
            (7, base.as_str(), key.as_str(), vec!["lease", "wait", &denied_id]),
            (7, base.as_str(), key.as_str(), vec!["lease", "read", &revoked]),
            (8, base.as_str(), key.as_str(), vec!["lease", "wait", &pending, "--timeout", "1"]),
            (8, base.as_str(), key.as_str(), vec!["run", "--secret", "A=/shared/x", "--timeout", "1", "--", "true"]),
            (0, base.as_str(), key.as_str(), vec!["lease", "request", "/shared/x"]),
        ];
        let mut wrong = Vec::new();
        for (want, addr, token, args) in &table {
            let out = cli(addr, token, args);
            let got = out.status.code();
            if got != Some(i32::from(*want)) {
                wrong.push(format!("{args:?}: {got:?}, want {want}: {}", text(&out)));
            } else if *want != 0 {
                let err = String::from_utf8_lossy(&out.stderr);
                let lines = err.trim().lines().count();
                // One line for the error (clap's usage errors and lease notes add a few).
                if *want != 2 && !args.contains(&"lease") && !args.contains(&"run") && lines != 1 {
                    wrong.push(format!("{args:?}: not one line: {err}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    })
    .await
    .unwrap();
    d.stop().await;
}
