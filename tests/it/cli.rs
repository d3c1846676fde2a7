//! The CLI against a running daemon: secrets from stdin, `.env` import edge cases, one-line
//! errors when the daemon is unreachable or the token is wrong.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::common::Daemon;

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn cli_stdin(base: &str, token: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("LATCHKEY_ADDR", base)
        .env("LATCHKEY_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn secret_commands_from_stdin() {
    let d = Daemon::start().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    let (put, get, history, wrong) = tokio::task::spawn_blocking(move || {
        (
            cli_stdin(
                &base,
                &admin,
                &["secret", "put", "prod/api", "--sensitivity", "critical"],
                "CLI-CANARY-value\n",
            ),
            cli_at(&base, &admin, &["secret", "get", "prod/api", "--json"]),
            cli_at(&base, &admin, &["secret", "history", "prod/api"]),
            cli_at(&base, "lk_admin_wrong", &["secret", "ls"]),
        )
    })
    .await
    .unwrap();
    assert!(put.status.success(), "{}", text(&put));
    assert!(get.status.success(), "{}", text(&get));
    let meta: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(meta["sensitivity"], "critical");
    assert!(!text(&get).contains("CLI-CANARY") && !text(&put).contains("CLI-CANARY"));
    assert!(history.status.success());
    assert!(!wrong.status.success());
    let wrong_text = text(&wrong);
    assert_eq!(
        wrong_text.trim().lines().count(),
        1,
        "one clear line: {wrong_text}"
    );
    assert!(wrong_text.contains("refused the token"), "{wrong_text}");
    let (dir, _) = d.stop().await;
    let (store, writer, _) = latchkey::open_store(&crate::common::config(dir.path())).unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(
        store.read_value("prod/api", None).unwrap().expose_secret(),
        b"CLI-CANARY-value",
        "one trailing newline stripped"
    );
    drop(store);
    writer.join();
}

fn cli_at(base: &str, token: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("LATCHKEY_ADDR", base)
        .env("LATCHKEY_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn env_import_edge_cases() {
    let d = Daemon::start().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.env");
    std::fs::write(
        &good,
        "# comment\nexport OPENAI_API_KEY=sk-abc # inline comment\nDB_URL='postgres://u:p@h/db?x=1#frag'\nMULTI=\"line one\nline two\"\nESCAPED=\"tab\\there\"\n\n  SPACED = value with spaces  \n",
    )
    .unwrap();
    // An empty variable: kept in a bundle, refused as a secret of its own (a secret's value is
    // never empty, whichever way it comes in).
    let with_empty = dir.path().join("with-empty.env");
    std::fs::write(
        &with_empty,
        format!("{}EMPTY=\n", std::fs::read_to_string(&good).unwrap()),
    )
    .unwrap();
    let bad = dir.path().join("bad.env");
    std::fs::write(&bad, "A=1\nB=2\nthis line is wrong\nC=3\n").unwrap();
    let (base, admin) = (d.base.clone(), d.admin.clone());
    let (ok, bundle, broken) = tokio::task::spawn_blocking(move || {
        (
            cli_at(
                &base,
                &admin,
                &[
                    "import",
                    ".env",
                    good.to_str().unwrap(),
                    "--namespace",
                    "apps/web",
                ],
            ),
            cli_at(
                &base,
                &admin,
                &[
                    "import",
                    ".env",
                    with_empty.to_str().unwrap(),
                    "--namespace",
                    "apps",
                    "--bundle",
                    "web-env",
                ],
            ),
            cli_at(
                &base,
                &admin,
                &[
                    "import",
                    ".env",
                    bad.to_str().unwrap(),
                    "--namespace",
                    "apps/bad",
                ],
            ),
        )
    })
    .await
    .unwrap();
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("imported 5"), "{}", text(&ok));
    assert!(!text(&ok).contains("sk-abc"));
    let (_, list) = d.get("/v1/secrets?prefix=apps/web/").await;
    let names: Vec<&str> = list["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "apps/web/DB_URL",
            "apps/web/ESCAPED",
            "apps/web/MULTI",
            "apps/web/OPENAI_API_KEY",
            "apps/web/SPACED"
        ]
    );
    assert!(bundle.status.success(), "{}", text(&bundle));
    let (s, b) = d.get("/v1/secrets/apps/web-env").await;
    assert_eq!((s.as_u16(), b["type"].as_str()), (200, Some("env_bundle")));
    assert!(!broken.status.success());
    assert!(text(&broken).contains("line 3"), "{}", text(&broken));
    let (base, admin, f) = (
        d.base.clone(),
        d.admin.clone(),
        dir.path().join("with-empty.env"),
    );
    let empty = tokio::task::spawn_blocking(move || {
        cli_at(
            &base,
            &admin,
            &[
                "import",
                ".env",
                f.to_str().unwrap(),
                "--namespace",
                "apps/e",
            ],
        )
    })
    .await
    .unwrap();
    assert!(!empty.status.success());
    assert!(
        text(&empty).contains("EMPTY") && text(&empty).contains("empty"),
        "{}",
        text(&empty)
    );
    let (_, list) = d.get("/v1/secrets?prefix=apps/bad/").await;
    assert_eq!(
        list["secrets"].as_array().unwrap().len(),
        0,
        "a malformed file imports nothing"
    );

    // The values themselves (read through the internal path) are exact.
    let (dir, _) = d.stop().await;
    let (store, writer, _) = latchkey::open_store(&crate::common::config(dir.path())).unwrap();
    use secrecy::ExposeSecret;
    let val = |p: &str| {
        String::from_utf8(store.read_value(p, None).unwrap().expose_secret().to_vec()).unwrap()
    };
    assert_eq!(val("apps/web/OPENAI_API_KEY"), "sk-abc");
    assert_eq!(val("apps/web/DB_URL"), "postgres://u:p@h/db?x=1#frag");
    assert_eq!(val("apps/web/MULTI"), "line one\nline two");
    assert_eq!(val("apps/web/ESCAPED"), "tab\there");
    assert_eq!(val("apps/web/SPACED"), "value with spaces");
    let bundle: serde_json::Value = serde_json::from_str(&val("apps/web-env")).unwrap();
    assert_eq!(bundle["MULTI"], "line one\nline two");
    assert_eq!(bundle["EMPTY"], "");
    drop(store);
    writer.join();
}

#[test]
fn unreachable_daemon_is_one_clear_line() {
    let out = cli_at("http://127.0.0.1:9", "lk_admin_x", &["secret", "ls"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("cannot reach the Latchkey daemon"), "{t}");
    assert_eq!(t.trim().lines().count(), 1, "{t}");
}
