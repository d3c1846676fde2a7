//! The Python and TypeScript SDKs' own suites (`sdk/*/run-tests.sh`: pytest and `node --test`
//! against the binary under test, with the contract check against its `/openapi.json`), run
//! as part of `cargo test`. They need python3 and Node with npm and reach PyPI and the npm
//! registry on their first run; without those tools the test says so loudly and passes,
//! unless `LATCHKEY_REQUIRE_SDKS=1` (set by `.ci/run`) makes that a failure.

use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs one SDK's suite, or explains why it cannot.
fn run_suite(sdk: &str, tools: &[&str]) {
    if crate::common::redb_only() {
        return;
    }
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if !missing.is_empty() {
        let required = std::env::var("LATCHKEY_REQUIRE_SDKS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the {sdk} SDK's tests need {missing:?} (LATCHKEY_REQUIRE_SDKS=1)"
        );
        eprintln!(
            "\n*** SKIPPED: the {sdk} SDK's tests need {missing:?}, which this machine lacks ***\n"
        );
        return;
    }
    // The Python venv lives under target/ (rebuilt by `cargo clean`, never committed).
    crate::common::run_suite_script(
        &format!("sdk/{sdk}/run-tests.sh"),
        &[("PY_VENV", "target/sdk-python-venv".into())],
    );
}

#[test]
fn python_sdk_suite_passes() {
    run_suite("python", &["python3"]);
}

#[test]
fn typescript_sdk_suite_passes() {
    run_suite("typescript", &["node", "npm"]);
}
