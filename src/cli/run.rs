//! `latchkey run --secret ENV=PATH … --bundle PATH … -- CMD ARGS…`: runs a command with
//! secrets in its environment.
//!
//! Each `--secret` and `--bundle` gets its own single-use read lease (waiting for approvers
//! when the policy asks for them, bounded by `--timeout`). The values are kept in zeroizing
//! buffers and handed to the child only through its environment (`Command::env`): never
//! argv, a file, or this process's own environment. SIGINT, SIGTERM and SIGHUP received
//! while the command runs are forwarded to it; when it ends every lease is revoked (a used
//! single-use lease is already exhausted, which the daemon answers with 409: ignored) and
//! `latchkey run` exits with the command's exit code, or 128+N when a signal N killed it.
//!
//! One copy of each value is out of our hands: the standard library's `Command` keeps the
//! environment it will pass to `execve` in ordinary strings. That `Command` is dropped as
//! soon as the child is started, and so are our own buffers (zeroized).
//!
//! This module holds the command line and the sequence; obtaining the leases is in
//! `run_leases`, the child's signals and exit code in `run_child`.

use std::collections::BTreeMap;
use std::process::Stdio;

use super::GlobalOpts;
use super::client::Client;
use super::exit::{Exit, bail_as};
use super::run_child::{Signals, exit_code, finish, forward};
use super::run_leases::{Vars, Want, fetch_all, revoke_all};

/// Arguments of `run`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("inject").required(true).multiple(true).args(["secrets", "bundles"])))]
pub struct RunArgs {
    /// Put the secret at PATH in the command's environment as ENV (repeat for several).
    #[arg(long = "secret", value_name = "ENV=PATH", value_parser = parse_mapping)]
    pub secrets: Vec<Mapping>,
    /// Put every entry of the env_bundle at PATH in the command's environment (repeatable).
    #[arg(long = "bundle", value_name = "PATH")]
    pub bundles: Vec<String>,
    /// Why the command needs the secrets (shown to approvers; default `latchkey run PROGRAM`).
    #[arg(long)]
    pub reason: Option<String>,
    /// Lifetime of each lease once granted, in seconds (default: the daemon's).
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u64>,
    /// Longest wait for approvals, in seconds, for all the leases together.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// Leave LATCHKEY_TOKEN in the command's environment (it is removed by default, so the
    /// command cannot request further leases with your credential).
    #[arg(long)]
    pub keep_token: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// One `--secret ENV=PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The environment variable.
    pub env: String,
    /// The secret's path.
    pub path: String,
}

/// A portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An env_bundle key as the daemon accepts it: `[A-Za-z_][A-Za-z0-9_.]*`.
pub fn is_bundle_key(s: &str) -> bool {
    !s.starts_with('.') && is_env_name(&s.replace('.', "_"))
}

/// Parses `ENV=PATH` (checked on the command line, before any request).
fn parse_mapping(s: &str) -> Result<Mapping, String> {
    let Some((env, path)) = s.split_once('=') else {
        return Err("expected ENV=PATH, e.g. OPENAI_API_KEY=/apps/openai".into());
    };
    if env.is_empty() {
        return Err("the variable name before `=` is empty".into());
    }
    if !is_env_name(env) {
        return Err(format!(
            "{env:?} is not a valid variable name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    if path.is_empty() || path == "/" {
        return Err(format!("give the path of the secret after `{env}=`"));
    }
    Ok(Mapping {
        env: env.into(),
        path: path.into(),
    })
}

/// Runs `latchkey run`. Returns only on an error before the command started; otherwise the
/// process exits with the command's code (see [`finish`]).
pub async fn run(opts: &GlobalOpts, a: RunArgs) -> anyhow::Result<()> {
    let mut seen = BTreeMap::new();
    for m in &a.secrets {
        if let Some(other) = seen.insert(m.env.as_str(), m.path.as_str()) {
            bail_as!(
                Exit::Usage,
                "{} is given twice (--secret {0}={other} and --secret {0}={})",
                m.env,
                m.path
            );
        }
    }
    let Some(program) = a.command.first() else {
        bail_as!(Exit::Usage, "give the command to run after `--`");
    };
    let client = Client::new(opts)?;
    let program_name = program.rsplit('/').next().unwrap_or(program);
    let reason = a
        .reason
        .clone()
        .unwrap_or_else(|| format!("latchkey run {program_name}"));
    // Registered before the first request: from here on a signal is ours to handle.
    let mut signals = Signals::new()?;

    let mut wants: Vec<Want<'_>> = a.secrets.iter().map(Want::Secret).collect();
    wants.extend(a.bundles.iter().map(|b| Want::Bundle(b)));
    let mut leases: Vec<String> = Vec::new();
    let mut vars: Vars = BTreeMap::new();
    let obtained = {
        let fetch = fetch_all(opts, &a, &client, &reason, &wants, &mut leases, &mut vars);
        tokio::select! {
            r = fetch => Ok(r),
            sig = signals.recv() => Err(sig),
        }
    };
    match obtained {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            drop(vars);
            revoke_all(opts, &leases).await;
            return Err(e);
        }
        Err(sig) => {
            drop(vars);
            eprintln!(
                "latchkey: interrupted by SIG{}; revoking the leases",
                sig.name
            );
            revoke_all(opts, &leases).await;
            std::process::exit(128 + sig.number);
        }
    }

    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&a.command[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    if !a.keep_token {
        cmd.env_remove("LATCHKEY_TOKEN");
    }
    for (k, (_, v)) in &vars {
        cmd.env(k, v.as_str());
    }
    let spawned = cmd.spawn();
    // Nothing in this process needs the values any more.
    drop(cmd);
    drop(vars);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            eprintln!("latchkey: cannot start {program}: {e}");
            revoke_all(opts, &leases).await;
            // As shells do: 127 when the command is not found, 126 when it cannot run.
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            std::process::exit(code);
        }
    };

    let status = loop {
        tokio::select! {
            st = child.wait() => break st,
            sig = signals.recv() => {
                if let Some(pid) = child.id() {
                    forward(pid, sig).await;
                }
            }
        }
    };
    revoke_all(opts, &leases).await;
    let code = match status {
        Ok(st) => exit_code(st),
        Err(e) => {
            eprintln!("latchkey: lost track of {program}: {e}");
            1
        }
    };
    finish(code)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Top {
        #[command(flatten)]
        _opts: GlobalOpts,
        #[command(subcommand)]
        cmd: super::super::ClientCommand,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, String> {
        let mut all = vec!["lk", "run"];
        all.extend_from_slice(args);
        match Top::try_parse_from(all) {
            Ok(Top {
                cmd: super::super::ClientCommand::Run(r),
                ..
            }) => Ok(r),
            Ok(_) => Err("not run".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn mappings_are_checked_before_any_request() {
        assert_eq!(
            parse_mapping("OPENAI_API_KEY=/apps/openai").unwrap(),
            Mapping {
                env: "OPENAI_API_KEY".into(),
                path: "/apps/openai".into()
            }
        );
        // Only the first `=` splits.
        assert_eq!(parse_mapping("A=p=q").unwrap().path, "p=q");
        for bad in [
            "NOEQUALS", "=/apps/x", "1X=/a", "A-B=/a", "A B=/a", "A.B=/a", "A=", "A=/", "É=/a",
        ] {
            assert!(parse_mapping(bad).is_err(), "{bad:?}");
        }
        assert!(is_env_name("_x1") && !is_env_name("") && !is_env_name("9"));
        assert!(is_bundle_key("app.key") && !is_bundle_key(".x") && !is_bundle_key("A=B"));
    }

    #[test]
    fn command_line() {
        let r = parse(&[
            "--secret",
            "A=/x",
            "--bundle",
            "/b",
            "--timeout",
            "5",
            "--ttl",
            "30",
            "--",
            "sh",
            "-c",
            "echo --secret",
        ])
        .unwrap();
        assert_eq!(r.secrets.len(), 1);
        assert_eq!(r.bundles, ["/b"]);
        assert_eq!(r.command, ["sh", "-c", "echo --secret"]);
        assert_eq!((r.timeout, r.ttl), (5, Some(30)));
        assert!(!r.keep_token);
        // Invalid ENV, no command, no `--`, nothing to inject: refused by the parser.
        assert!(parse(&["--secret", "BAD-NAME=/x", "--", "true"]).is_err());
        assert!(parse(&["--secret", "/x", "--", "true"]).is_err());
        assert!(parse(&["--secret", "A=/x"]).is_err());
        assert!(parse(&["--secret", "A=/x", "true"]).is_err());
        assert!(parse(&["--", "true"]).is_err());
        assert!(parse(&["--bundle", "/b", "--", "true"]).is_ok());
    }
}
