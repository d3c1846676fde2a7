//! `latchkey export` and `latchkey jobs` against a running daemon: `export` writes a 0600
//! dotenv file (or JSON on stdout), refuses to overwrite without `--force`, is admin-only and
//! audited per secret; `jobs ls` lists the five jobs and `jobs run` runs one now.

use serde_json::Value;

use crate::cli_run::{OPENAI, STRIPE, world};
use crate::common::{Daemon, cli, output_text as text};

#[tokio::test]
async fn export_writes_a_private_dotenv_file_and_is_audited() {
    use std::os::unix::fs::PermissionsExt;
    let (d, key) = world().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("out.env");
    let f = file.clone();
    tokio::task::spawn_blocking(move || {
        let path = f.to_str().unwrap();
        let args = [
            "export",
            "--format",
            "dotenv",
            "/apps/openai",
            "/apps/stripe",
            "--output",
            path,
        ];
        let out = cli(&base, &admin, &args);
        assert!(out.status.success(), "{}", text(&out));
        assert!(out.stdout.is_empty(), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!("exported 2 secret(s) to {path}; the export is audited")
        );
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            format!("OPENAI={OPENAI}\nSTRIPE_KEY={STRIPE}\n")
        );
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // An existing file is kept unless --force.
        let again = cli(&base, &admin, &args);
        assert!(
            !again.status.success() && text(&again).contains("--force"),
            "{}",
            text(&again)
        );
        let mut forced = args.to_vec();
        forced.push("--force");
        assert!(cli(&base, &admin, &forced).status.success());

        // JSON on stdout; a prefix exports everything below it.
        let out = cli(&base, &admin, &["export", "--format", "json", "apps/"]);
        assert!(out.status.success(), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["secrets"]["apps/openai"], OPENAI);
        assert_eq!(v["secrets"]["apps/stripe"]["STRIPE_KEY"], STRIPE);
        assert_eq!(v["secrets"].as_object().unwrap().len(), 3);
        // Admin only.
        let out = cli(&base, &key, &["export", "/apps/openai"]);
        assert!(
            !out.status.success() && out.stdout.is_empty(),
            "{}",
            text(&out)
        );
    })
    .await
    .unwrap();
    let events = d.events("secret.exported").await;
    // 2 (file) + 2 (--force) + 3 (prefix); the refused overwrite exported nothing.
    assert_eq!(events.len(), 7, "{events:?}");
    assert!(events.iter().any(|e| e["resource_path"] == "apps/openai"));
    d.stop().await;
}

#[tokio::test]
async fn jobs_are_listed_and_run() {
    let d = Daemon::start().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    tokio::task::spawn_blocking(move || {
        let out = cli(&base, &admin, &["jobs", "ls", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let jobs: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(jobs.as_array().unwrap().len(), 5, "{jobs}");
        let out = cli(&base, &admin, &["jobs", "ls"]);
        let t = text(&out);
        assert!(t.starts_with("NAME") && t.contains("NEXT RUN"), "{t}");
        for name in [
            "expire_secrets",
            "audit_retention",
            "rotation_reminders",
            "digest",
            "rewrap",
        ] {
            assert!(t.contains(name), "{name}: {t}");
        }
        let out = cli(&base, &admin, &["jobs", "run", "digest"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("job digest: "),
            "{}",
            text(&out)
        );
        let out = cli(&base, &admin, &["jobs", "ls"]);
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("digest"))
            .unwrap()
            .to_string();
        assert!(line.contains("ok at "), "{line}");
        let out = cli(&base, &admin, &["jobs", "run", "no-such-job"]);
        assert!(!out.status.success(), "{}", text(&out));
    })
    .await
    .unwrap();
    d.stop().await;
}
