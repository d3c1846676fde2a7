//! `latchkey webhook …` and `latchkey service …` against a running daemon.

use std::process::Output;

use crate::common::{Daemon, cli};
use crate::receiver::Receiver;

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[tokio::test]
async fn webhook_and_service_commands() {
    let d = Daemon::start_with(|c| c.webhooks.allow_loopback = true).await;
    let r = Receiver::start().await;
    let (base, admin, url) = (d.base.clone(), d.admin.clone(), r.url.clone());
    let outputs = tokio::task::spawn_blocking(move || {
        let created: serde_json::Value = serde_json::from_str(&stdout(&cli(
            &base,
            &admin,
            &[
                "webhook",
                "create",
                &url,
                "--event",
                "audit.secret.*",
                "--json",
            ],
        )))
        .unwrap();
        let id = created["id"].as_str().unwrap().to_string();
        let secret = created["secret"].as_str().unwrap().to_string();
        let ls = stdout(&cli(&base, &admin, &["webhook", "ls"]));
        let paused = stdout(&cli(&base, &admin, &["webhook", "pause", &id]));
        let resumed = stdout(&cli(&base, &admin, &["webhook", "resume", &id]));
        let rotated = stdout(&cli(
            &base,
            &admin,
            &["webhook", "rotate-secret", &id, "--grace", "60"],
        ));
        let svc = stdout(&cli(
            &base,
            &admin,
            &[
                "service",
                "add",
                "--template",
                "github",
                "--name",
                "gh",
                "--secret",
                "prod/github",
            ],
        ));
        let svcs = stdout(&cli(&base, &admin, &["service", "ls"]));
        let rm = stdout(&cli(&base, &admin, &["service", "rm", "gh"]));
        (id, secret, ls, paused, resumed, rotated, svc, svcs, rm)
    })
    .await
    .unwrap();
    let (id, secret, ls, paused, resumed, rotated, svc, svcs, rm) = outputs;
    assert!(secret.starts_with("whsec_"));
    assert!(ls.contains(&id));
    assert!(
        paused.contains("paused") && resumed.contains("active"),
        "{paused} {resumed}"
    );
    assert!(rotated.contains("whsec_") && !rotated.contains(&secret));
    assert!(
        svc.contains("added service gh")
            && svcs.contains("api.github.com")
            && rm.contains("removed")
    );
    r.set_secrets(&[&secret]);
    let admin = d.admin.clone();
    d.put(&admin, "cli/k", serde_json::json!({"value": "v"}))
        .await;
    let got = r
        .wait_for(std::time::Duration::from_secs(10), |g| !g.is_empty())
        .await;
    assert_eq!(got[0].body["type"], "audit.secret.created");
    let (base, admin2) = (d.base.clone(), d.admin.clone());
    let deliveries = tokio::task::spawn_blocking(move || {
        for _ in 0..50 {
            let out = stdout(&cli(&base, &admin2, &["webhook", "deliveries", &id]));
            if out.contains("200") {
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        String::new()
    })
    .await
    .unwrap();
    assert!(deliveries.contains("200"), "{deliveries}");
    d.stop().await;
}
