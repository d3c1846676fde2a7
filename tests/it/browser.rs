//! The console's browser tests (`tests/browser/run-tests.sh`: pytest and Playwright for
//! Python driving Debian's headless Chromium against the binary under test), run as part of
//! `cargo test`. Without python3 or /usr/bin/chromium the test says so loudly and passes,
//! unless `LATCHKEY_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs them) makes that a
//! failure. Screenshots land in target/browser-artifacts.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

#[test]
fn console_browser_suite_passes() {
    if crate::common::redb_only() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (!python).then_some("python3"),
        (!std::path::Path::new(&chromium).exists()).then_some("chromium"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let required = std::env::var("LATCHKEY_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the console's browser tests need {missing:?} (LATCHKEY_REQUIRE_BROWSER=1)"
        );
        eprintln!(
            "\n*** SKIPPED: the console's browser tests need {missing:?}, which this machine lacks (apt-get install chromium) ***\n"
        );
        return;
    }
    let script = root.join("tests/browser/run-tests.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(BIN)
        .env("CHROMIUM", &chromium)
        .env("BROWSER_VENV", root.join("target/browser-venv"))
        .env("ARTIFACTS", root.join("target/browser-artifacts"))
        .env_remove("LATCHKEY_ADDR")
        .env_remove("LATCHKEY_TOKEN")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{} failed:\n--- stdout\n{}\n--- stderr\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
