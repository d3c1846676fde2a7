//! The leases of `latchkey run`: one single-use read lease per `--secret` and `--bundle`,
//! requested, waited for (the approval wait is shared) and read into the child's variables,
//! and revoked when the command is over.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::exit::{Exit, bail_as};
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::client::{Client, http_error, item_url};
use super::leases::{announce_pending, ended, state};
use super::run::{Mapping, RunArgs, is_bundle_key};
use super::value::Revealed;
use super::{GlobalOpts, text};

/// What one lease is for.
pub(super) enum Want<'a> {
    Secret(&'a Mapping),
    Bundle(&'a str),
}

impl Want<'_> {
    fn path(&self) -> &str {
        match self {
            Want::Secret(m) => &m.path,
            Want::Bundle(p) => p,
        }
    }
}

/// The child's variables: name → (where it came from, value).
pub(super) type Vars = BTreeMap<String, (String, Zeroizing<String>)>;

/// Requests, waits for and reads every lease in turn, filling `leases` (for revocation, as
/// soon as each exists) and `vars`. The approval wait is shared by all of them.
pub(super) async fn fetch_all(
    opts: &GlobalOpts,
    a: &RunArgs,
    client: &Client,
    reason: &str,
    wants: &[Want<'_>],
    leases: &mut Vec<String>,
    vars: &mut Vars,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    for want in wants {
        let path = want.path();
        let mut body = json!({"path": path, "action": "read", "uses": 1, "reason": reason});
        if let (Some(ttl), Some(obj)) = (a.ttl, body.as_object_mut()) {
            obj.insert("ttl_seconds".into(), Value::from(ttl));
        }
        let mut lease = client
            .post("/v1/leases", &body)
            .await
            .with_context(|| format!("lease on {path}"))?;
        let id = text(&lease, "id");
        leases.push(id.clone());
        if state(&lease) == "pending" {
            eprintln!("lease {id} on {path}: pending approval");
            announce_pending(&lease, true);
            lease = super::lease_wait::wait(opts, lease, deadline).await?;
        }
        match state(&lease).as_str() {
            "active" => {}
            "pending" => bail_as!(
                Exit::Pending,
                "lease {id} on {path} is still pending after {} s (--timeout); nothing was run",
                a.timeout
            ),
            _ => bail_as!(Exit::LeaseEnded, "{}; nothing was run", ended(&lease)),
        }
        let url = format!("{}/secret", item_url("leases", &id)?);
        let revealed = Revealed::parse(&client.request_secret(Method::POST, &url).await?)?;
        match (want, revealed) {
            (Want::Secret(m), Revealed::Value(v)) => {
                add(vars, &m.env, format!("--secret {}={path}", m.env), v)?;
            }
            (Want::Secret(m), Revealed::Entries(_)) => bail!(
                "{path} is an env_bundle: use --bundle {path} instead of --secret {}=…",
                m.env
            ),
            (Want::Bundle(_), Revealed::Entries(entries)) => {
                for (k, v) in entries {
                    if !is_bundle_key(&k) {
                        bail!("{path}: entry {k:?} is not a valid environment variable name");
                    }
                    add(vars, &k, format!("--bundle {path}"), v)?;
                }
            }
            (Want::Bundle(_), Revealed::Value(_)) => {
                bail!("{path} is not an env_bundle: use --secret ENV={path} instead of --bundle")
            }
        }
    }
    Ok(())
}

/// Adds one variable, refusing a name set twice and a value `execve` cannot carry.
fn add(vars: &mut Vars, name: &str, from: String, value: Zeroizing<String>) -> anyhow::Result<()> {
    if value.contains('\0') {
        bail!("the value for {name} ({from}) contains a NUL byte and cannot go in an environment");
    }
    if let Some((other, _)) = vars.get(name) {
        bail!("{name} is set by both {other} and {from}");
    }
    vars.insert(name.to_string(), (from, value));
    Ok(())
}

/// Revokes every lease; one that is already over (exhausted, denied, …) answers 409.
pub(super) async fn revoke_all(opts: &GlobalOpts, leases: &[String]) {
    if leases.is_empty() {
        return;
    }
    let client = match Client::with_timeout(opts, Duration::from_secs(10)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("latchkey: cannot revoke the leases: {e}");
            return;
        }
    };
    for id in leases {
        let Ok(url) = item_url("leases", id) else {
            continue;
        };
        match client.delete(&url).await {
            Ok(_) => {}
            Err(e) if http_error(&e).is_some_and(|h| h.status == 409) => {}
            Err(e) => eprintln!("latchkey: could not revoke lease {id}: {e}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_refused_twice() {
        let mut vars = Vars::new();
        add(
            &mut vars,
            "A",
            "--secret A=/x".into(),
            Zeroizing::new("1".into()),
        )
        .unwrap();
        let e = add(
            &mut vars,
            "A",
            "--bundle /b".into(),
            Zeroizing::new("2".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--secret A=/x") && e.contains("--bundle /b"),
            "{e}"
        );
        assert!(add(&mut vars, "B", "x".into(), Zeroizing::new("a\0b".into())).is_err());
    }
}
