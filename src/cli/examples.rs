//! An example under every command's `--help` (and in its man page), kept in one table so a
//! test can check that no command is left without one and no example names a command that
//! does not exist.

use clap::Command;

/// Command path (space-separated, without `latchkey`) → example lines.
pub const EXAMPLES: &[(&str, &[&str])] = &[
    ("init", &["latchkey init --data-dir /var/lib/latchkey"]),
    (
        "serve",
        &[
            "latchkey serve --dev   # development: prints export lines for another shell",
            "latchkey serve --config /etc/latchkey/config.toml",
        ],
    ),
    (
        "completions",
        &[
            "latchkey completions bash > /etc/bash_completion.d/latchkey",
            "latchkey completions zsh > \"${fpath[1]}/_latchkey\"",
            "latchkey completions fish > ~/.config/fish/completions/latchkey.fish",
        ],
    ),
    (
        "man",
        &[
            "latchkey man | man -l -",
            "latchkey man --dir /usr/local/share/man/man1",
        ],
    ),
    ("whoami", &["latchkey whoami", "latchkey whoami --json"]),
    (
        "mcp",
        &["LATCHKEY_ADDR=http://127.0.0.1:8200 LATCHKEY_TOKEN=$AGENT_KEY latchkey mcp"],
    ),
    ("status", &["latchkey status", "latchkey status --json"]),
    (
        "secret",
        &[
            "latchkey secret put production/openai/api-key < key.txt",
            "latchkey secret ls production/",
        ],
    ),
    (
        "secret put",
        &[
            "printf %s \"$DB_PASSWORD\" | latchkey secret put production/db/password --type password",
            "latchkey secret put production/tls/cert --file cert.pem --type certificate --sensitivity critical",
        ],
    ),
    (
        "secret get",
        &["latchkey secret get production/db/password"],
    ),
    ("secret ls", &["latchkey secret ls production/ --deleted"]),
    ("secret rm", &["latchkey secret rm staging/old-key"]),
    (
        "secret restore",
        &["latchkey secret restore staging/old-key"],
    ),
    (
        "secret history",
        &["latchkey secret history production/db/password"],
    ),
    (
        "secret rollback",
        &["latchkey secret rollback production/db/password 2"],
    ),
    (
        "agent",
        &[
            "latchkey agent create research-bot --tier 2",
            "latchkey agent show research-bot",
        ],
    ),
    (
        "agent create",
        &[
            "latchkey agent create research-bot --tier 2 --description \"nightly research\"",
            "AGENT_KEY=$(latchkey agent create research-bot --tier 2 --quiet)",
        ],
    ),
    ("agent ls", &["latchkey agent ls"]),
    (
        "agent show",
        &[
            "latchkey agent show research-bot",
            "latchkey agent show id:01j9zq…",
        ],
    ),
    ("agent disable", &["latchkey agent disable research-bot"]),
    ("agent enable", &["latchkey agent enable research-bot"]),
    (
        "agent set-tier",
        &["latchkey agent set-tier research-bot 3"],
    ),
    (
        "agent rotate-key",
        &["latchkey agent rotate-key research-bot"],
    ),
    (
        "token",
        &["TOKEN=$(latchkey token mint --scope 'secrets:read:production/openai/*' --ttl 300)"],
    ),
    (
        "token mint",
        &[
            "TOKEN=$(latchkey token mint --scope 'secrets:read:production/openai/*' --ttl 300)",
            "latchkey token mint --scope 'secrets:read:**' --session run-42",
        ],
    ),
    (
        "token revoke",
        &[
            "latchkey token revoke 01j9zq…",
            "latchkey token revoke --session run-42",
        ],
    ),
    (
        "admin-token",
        &[
            "latchkey admin-token mint --description \"ci deploy\"",
            "latchkey admin-token ls",
        ],
    ),
    ("admin-token ls", &["latchkey admin-token ls --all"]),
    (
        "admin-token mint",
        &["NEW=$(latchkey admin-token mint --description \"alice laptop\")"],
    ),
    (
        "admin-token revoke",
        &["latchkey admin-token revoke 01j9zq…"],
    ),
    (
        "console",
        &[
            "latchkey console link",
            "latchkey console link --approver alice",
        ],
    ),
    (
        "console link",
        &["latchkey console link --approver alice   # send it to alice; it works once"],
    ),
    ("console sessions", &["latchkey console sessions"]),
    ("console revoke", &["latchkey console revoke 01j9zq…"]),
    (
        "import",
        &["latchkey import .env .env.production --namespace production/web"],
    ),
    (
        "import .env",
        &[
            "latchkey import .env .env.production --namespace production/web",
            "latchkey import .env .env --namespace apps --bundle web-env --dry-run",
        ],
    ),
    ("audit", &["latchkey audit tail -n 50 --follow"]),
    ("audit tail", &["latchkey audit tail -n 50 --follow"]),
    (
        "audit query",
        &["latchkey audit query --event 'secret.*' --path-prefix production/ --limit 100"],
    ),
    ("audit verify", &["latchkey audit verify"]),
    (
        "webhook",
        &["latchkey webhook create https://siem.example.com/hook --event 'audit.*'"],
    ),
    (
        "webhook create",
        &["latchkey webhook create https://siem.example.com/hook --event 'audit.secret.*'"],
    ),
    ("webhook ls", &["latchkey webhook ls"]),
    ("webhook show", &["latchkey webhook show 01j9zq…"]),
    ("webhook pause", &["latchkey webhook pause 01j9zq…"]),
    ("webhook resume", &["latchkey webhook resume 01j9zq…"]),
    (
        "webhook update",
        &["latchkey webhook update 01j9zq… --event 'audit.approval.*'"],
    ),
    ("webhook rm", &["latchkey webhook rm 01j9zq…"]),
    (
        "webhook rotate-secret",
        &["latchkey webhook rotate-secret 01j9zq… --grace 3600"],
    ),
    (
        "webhook replay",
        &["latchkey webhook replay 01j9zq… --from-seq 1200"],
    ),
    (
        "webhook deliveries",
        &["latchkey webhook deliveries 01j9zq…"],
    ),
    (
        "service",
        &["latchkey service add --template github --name gh --secret production/github/token"],
    ),
    (
        "service add",
        &[
            "latchkey service add --template github --name gh --secret production/github/token",
            "latchkey service add --file services/internal-api.toml",
        ],
    ),
    ("service ls", &["latchkey service ls"]),
    ("service rm", &["latchkey service rm gh"]),
    ("keys", &["latchkey keys rotate && latchkey keys rewrap"]),
    ("keys rotate", &["latchkey keys rotate"]),
    ("keys rewrap", &["latchkey keys rewrap"]),
    ("keys ls", &["latchkey keys ls"]),
    (
        "lease",
        &["latchkey lease request /production/db/password --wait --reveal --reason \"migrate\""],
    ),
    (
        "lease request",
        &[
            "latchkey lease request /production/db/password --wait --reveal --reason \"migrate\"",
            "latchkey lease request openai/api-key --action proxy --ttl 600 --uses 50",
        ],
    ),
    (
        "lease wait",
        &["latchkey lease wait 01j9zq… --timeout 300 --reveal"],
    ),
    ("lease show", &["latchkey lease show 01j9zq… --wait 30"]),
    ("lease ls", &["latchkey lease ls --state pending"]),
    ("lease revoke", &["latchkey lease revoke 01j9zq…"]),
    ("lease read", &["latchkey lease read 01j9zq… > value.txt"]),
    ("approvals", &["latchkey approvals ls"]),
    ("approvals ls", &["latchkey approvals ls --all"]),
    ("approvals show", &["latchkey approvals show 01j9zq…"]),
    (
        "approve",
        &["latchkey approve 01j9zq… --reason \"planned migration\""],
    ),
    (
        "deny",
        &["latchkey deny 01j9zq… --reason \"not during the freeze\""],
    ),
    ("approver", &["latchkey approver token alice"]),
    (
        "approver token",
        &["ALICE_TOKEN=$(latchkey approver token alice)"],
    ),
    (
        "grant",
        &["latchkey grant create --namespace entities --pattern 'shared/**' --action read"],
    ),
    (
        "grant create",
        &[
            "latchkey grant create --namespace entities --pattern 'shared/**' --action read",
            "latchkey grant create --agent research-bot-id --pattern 'production/openai/*' --action proxy --max-per-hour 100",
        ],
    ),
    ("grant ls", &["latchkey grant ls"]),
    ("grant rm", &["latchkey grant rm 01j9zq…"]),
    (
        "policy",
        &["latchkey policy set 'production/**' --require approval --quorum 2"],
    ),
    (
        "policy set",
        &[
            "latchkey policy set 'production/**' --require approval --quorum 2 --deadline 900",
            "latchkey policy set 'staging/**' --require instant --tier 3 --tier 4 --tier 5",
        ],
    ),
    ("policy ls", &["latchkey policy ls"]),
    ("policy rm", &["latchkey policy rm 'production/**'"]),
    (
        "run",
        &[
            "latchkey run --secret OPENAI_API_KEY=/production/openai/api-key -- python agent.py",
            "latchkey run --bundle /production/web-env --timeout 120 -- ./deploy.sh",
        ],
    ),
    (
        "export",
        &[
            "latchkey export production/ --output prod.env",
            "latchkey export production/db/password --format json",
        ],
    ),
    ("jobs", &["latchkey jobs ls"]),
    ("jobs ls", &["latchkey jobs ls"]),
    ("jobs run", &["latchkey jobs run audit_retention"]),
];

/// Puts each command's example under its help (`after_help`), recursively. Called on the
/// command the parser, the completions and the man page are all built from.
pub fn add_examples(cmd: Command) -> Command {
    add(cmd, "")
}

fn add(mut cmd: Command, path: &str) -> Command {
    if !path.is_empty()
        && let Some((_, lines)) = EXAMPLES.iter().find(|(p, _)| *p == path)
    {
        let header = clap::builder::Styles::default().get_header().to_owned();
        let title = if lines.len() > 1 {
            "Examples:"
        } else {
            "Example:"
        };
        let mut text = format!("{header}{title}{header:#}\n");
        for line in *lines {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        cmd = cmd.after_help(text.trim_end().to_string());
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        let sub_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |s| add(s, &sub_path));
    }
    cmd
}
