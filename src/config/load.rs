//! Layered loading: built-in defaults, then `config.toml`, then `LATCHKEY_*` environment
//! variables (or `LATCHKEY_*_FILE` for a value kept in a file), then validation. The binary
//! applies command-line flags on top and validates again.

use std::path::Path;

use super::{Config, ConfigError};

impl Config {
    /// Loads defaults, the file (if any) and the environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, |k| std::env::var(k).ok())
    }

    /// As [`Config::load`], reading variables through `env` (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let base = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                // Parsing the text directly keeps toml's line/column spans in the errors.
                toml::from_str::<Config>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string().trim_end().to_string(),
                })?
            }
            None => Config::default(),
        };
        let mut table =
            toml::Table::try_from(&base).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut applied = Vec::new();
        apply_env(&mut table, "LATCHKEY", "", &env, &mut applied)?;
        let cfg: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        cfg.validate()
            .map_err(|e| name_the_variables(e, &applied))?;
        Ok(cfg)
    }
}

/// A refused value that came from the environment names its variable: `listen = "x" is not
/// an address (set by LATCHKEY_LISTEN)`.
fn name_the_variables(e: ConfigError, applied: &[(String, String)]) -> ConfigError {
    let ConfigError::Invalid(message) = e else {
        return e;
    };
    let vars: Vec<&str> = applied
        .iter()
        .filter(|(key, _)| {
            let leaf = key.rsplit('.').next().unwrap_or(key);
            message.contains(key.as_str()) || message.contains(leaf)
        })
        .map(|(_, var)| var.as_str())
        .collect();
    if vars.is_empty() {
        ConfigError::Invalid(message)
    } else {
        ConfigError::Invalid(format!("{message} (set by {})", vars.join(", ")))
    }
}

/// Overrides each leaf of `table` from `PREFIX_KEY` variables, parsed as the leaf's type;
/// records each (dotted key, variable) it applied.
fn apply_env(
    table: &mut toml::Table,
    prefix: &str,
    path: &str,
    env: &impl Fn(&str) -> Option<String>,
    applied: &mut Vec<(String, String)>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let var = format!("{prefix}_{}", key.to_uppercase());
        let dotted = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if let toml::Value::Table(inner) = value {
            apply_env(inner, &var, &dotted, env, applied)?;
            continue;
        }
        let from_file = match (&value, env(&format!("{var}_FILE"))) {
            (toml::Value::String(_), Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .map(|t| t.trim_end().to_string())
                    .map_err(|e| ConfigError::Env {
                        var: format!("{var}_FILE"),
                        message: format!("cannot read {path}: {e}"),
                    })?,
            ),
            _ => None,
        };
        let Some(raw) = env(&var).or(from_file) else {
            continue;
        };
        applied.push((dotted, var.clone()));
        let err = |message: String| ConfigError::Env {
            var: var.clone(),
            message,
        };
        *value = match value {
            toml::Value::String(_) => toml::Value::String(raw),
            toml::Value::Integer(_) => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .map_err(|_| err(format!("{raw:?} is not an integer")))?,
            ),
            toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(err(format!("{raw:?} is not true or false"))),
            }),
            _ => {
                let parsed: toml::Table =
                    toml::from_str(&format!("v = {raw}")).map_err(|e| err(e.to_string()))?;
                parsed
                    .get("v")
                    .cloned()
                    .ok_or_else(|| err("no value".into()))?
            }
        };
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_file_env_layering() {
        let f = file("listen = \"127.0.0.1:9000\"\n[tokens]\nmax_ttl_seconds = 1200\n");
        let env = |k: &str| match k {
            "LATCHKEY_TOKENS_DEFAULT_TTL_SECONDS" => Some("300".to_string()),
            "LATCHKEY_HTTP_TRUST_FORWARDED_FOR" => Some("true".to_string()),
            _ => None,
        };
        let cfg = Config::load_with_env(Some(f.path()), env).unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9000");
        assert_eq!(cfg.tokens.max_ttl_seconds, 1200);
        assert_eq!(cfg.tokens.default_ttl_seconds, 300);
        assert!(cfg.http.trust_forwarded_for);
        assert_eq!(cfg.store.max_batch, 256);
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let f = file("listen = \"127.0.0.1:9000\"\n\n[http]\nmax_body = 5\n");
        let msg = Config::load_with_env(Some(f.path()), |_| None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        assert!(msg.contains("line 4"), "{msg}");
        assert!(msg.contains("max_body"), "{msg}");
    }

    #[test]
    fn bad_values_are_refused() {
        let f = file("listen = 5\n");
        assert!(Config::load_with_env(Some(f.path()), |_| None).is_err());
        let env = |k: &str| (k == "LATCHKEY_HTTP_MAX_BODY_BYTES").then(|| "lots".to_string());
        let msg = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(msg.contains("LATCHKEY_HTTP_MAX_BODY_BYTES"), "{msg}");
        let env = |k: &str| (k == "LATCHKEY_LISTEN").then(|| "nowhere".to_string());
        let msg = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(msg.contains("set by LATCHKEY_LISTEN"), "{msg}");
        let env = |k: &str| (k == "LATCHKEY_STORE_MAX_BATCH").then(|| "0".to_string());
        let msg = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(msg.contains("set by LATCHKEY_STORE_MAX_BATCH"), "{msg}");
        let missing = std::path::Path::new("/nonexistent/latchkey.toml");
        let msg = format!(
            "{:#}",
            anyhow::Error::from(Config::load_with_env(Some(missing), |_| None).unwrap_err())
        );
        assert_eq!(
            msg.matches("No such file").count(),
            1,
            "the cause is said once: {msg}"
        );
    }
}
