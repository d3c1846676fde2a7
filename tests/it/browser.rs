//! The console's browser tests (`tests/browser/run-tests.sh`: pytest and Playwright for
//! Python driving Debian's headless Chromium against the binary under test), run as part of
//! `cargo test`. Without python3 or /usr/bin/chromium the test says so loudly and passes,
//! unless `LATCHKEY_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs them) makes that a
//! failure. Screenshots land in target/browser-artifacts.

use std::process::Command;

#[test]
fn console_browser_suite_passes() {
    if crate::common::redb_only() {
        return;
    }
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
    crate::common::run_suite_script(
        "tests/browser/run-tests.sh",
        &[
            ("CHROMIUM", chromium.into()),
            ("BROWSER_VENV", "target/browser-venv".into()),
            ("ARTIFACTS", "target/browser-artifacts".into()),
        ],
    );
}
