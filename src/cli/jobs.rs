//! `latchkey jobs …` (admin): list the scheduled jobs with their next and last runs, and run
//! one now.

use serde_json::{Value, json};

use super::client::{Client, LONG_POLL_TIMEOUT, item_url};
use super::{GlobalOpts, output, print_table, text};

/// Job commands (admin).
#[derive(clap::Subcommand)]
pub enum JobsCommand {
    /// List the jobs: schedule, whether enabled, next run, last result.
    Ls,
    /// Run a job now and print what it did (refused while it is running).
    Run {
        /// Job name (see `latchkey jobs ls`).
        name: String,
    },
}

/// Runs a jobs command.
pub async fn run(opts: &GlobalOpts, cmd: JobsCommand) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::Ls => {
            let resp = Client::new(opts)?.get("/v1/jobs", &[]).await?;
            output(opts, &resp, print_jobs);
        }
        JobsCommand::Run { name } => {
            // A run is answered when it is over: allow it the long timeout.
            let client = Client::with_timeout(opts, LONG_POLL_TIMEOUT)?;
            let url = format!("{}/run", item_url("jobs", &name)?);
            let resp = client.post(&url, &json!({})).await?;
            output(opts, &resp, |r| {
                outln!("job {}: {}", text(r, "name"), text(r, "message"));
            });
        }
    }
    Ok(())
}

fn print_jobs(resp: &Value) {
    let rows: Vec<Vec<String>> = resp
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|j| {
            vec![
                text(j, "name"),
                text(j, "schedule"),
                if j["enabled"] == true { "yes" } else { "no" }.into(),
                if j["running"] == true {
                    "running now".into()
                } else {
                    text(j, "next_run")
                },
                last(&j["last_run"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        eprintln!("no jobs");
    } else {
        print_table(
            &["NAME", "SCHEDULE", "ENABLED", "NEXT RUN", "LAST RUN"],
            &rows,
        );
    }
}

/// `ok at 2025-…: message`, or `never`.
fn last(run: &Value) -> String {
    if run.get("last_result").is_none_or(Value::is_null) {
        return "never".into();
    }
    let at = super::when(&run["last_finished"]);
    let msg: String = text(run, "last_message")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{} at {at}: {msg}", text(run, "last_result"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_runs() {
        assert_eq!(
            last(&json!({"known_since": 1, "last_result": null})),
            "never"
        );
        assert_eq!(last(&Value::Null), "never");
        assert_eq!(
            last(&json!({"last_finished": 0, "last_result": "ok", "last_message": "a\nb"})),
            "ok at 1970-01-01T00:00:00Z: a b"
        );
    }
}
