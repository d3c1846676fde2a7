//! Proxy services: an outside API reached *through* Latchkey, which injects the credential so
//! the agent never sees it. Declared in `services/NAME.toml` next to the config file or through
//! the API; templates ship for github, stripe, openai, anthropic and shopify.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// How the credential is put into the upstream request. A service may place it several times
/// (a header and a query parameter, say); for an env_bundle secret each placement may take
/// one entry (`key`), else the service's `key`, else the bundle's entries as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Inject {
    /// A header whose value is a template with `{secret}`, e.g. `Bearer {secret}`.
    Header {
        /// Header name.
        name: String,
        /// Value template.
        template: String,
        /// The env_bundle entry injected here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// HTTP basic auth with this user name and the secret as password (or the secret as user
    /// name and an empty password when `username` is empty, as Stripe does).
    Basic {
        /// User name (may be empty).
        #[serde(default)]
        username: String,
        /// The env_bundle entry injected here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// A query parameter.
    Query {
        /// Parameter name.
        name: String,
        /// The env_bundle entry injected here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

impl Inject {
    /// The env_bundle entry this placement names, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Inject::Header { key, .. } | Inject::Basic { key, .. } | Inject::Query { key, .. } => {
                key.as_deref()
            }
        }
    }
}

/// `inject = {…}` or `inject = [{…}, {…}]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Inject>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Inject),
        Many(Vec<Inject>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(i) => vec![i],
        OneOrMany::Many(v) => v,
    })
}

/// One allowed endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// Path template under the base URL, e.g. `/repos/{owner}/{repo}`.
    pub path: String,
}

/// A proxy service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Name, used in `/v1/proxy/{service}/{endpoint}`.
    pub name: String,
    /// Base URL (https unless `allow_private` is set for a local service).
    pub base_url: String,
    /// How the credential is injected: one placement or a list of them.
    #[serde(deserialize_with = "one_or_many")]
    pub inject: Vec<Inject>,
    /// The secret's full path.
    pub secret: String,
    /// For an env_bundle secret: the entry injected where a placement names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Agent ids allowed to use it (`*` for any agent with a proxy lease).
    #[serde(default = "any")]
    pub allowed_agents: Vec<String>,
    /// Endpoints by name.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Allow private and loopback upstream addresses.
    #[serde(default)]
    pub allow_private: bool,
    /// Upstream timeout.
    #[serde(default = "thirty")]
    pub timeout_seconds: u64,
    /// Largest upstream answer passed back.
    #[serde(default = "mib")]
    pub max_response_bytes: usize,
}

fn any() -> Vec<String> {
    vec!["*".into()]
}
fn thirty() -> u64 {
    30
}
fn mib() -> usize {
    1024 * 1024
}

impl Service {
    /// Checks names, URL, methods and templates.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !name_ok(&self.name) {
            return Err(format!(
                "service name {:?}: letters, digits, - and _ only",
                self.name
            ));
        }
        let url = reqwest::Url::parse(&self.base_url).map_err(|e| format!("base_url: {e}"))?;
        if !matches!(url.scheme(), "https" | "http")
            || url.host_str().is_none()
            || url.query().is_some()
        {
            return Err("base_url must be an http(s) URL with a host and no query".into());
        }
        if url.scheme() == "http" && !self.allow_private {
            return Err("base_url must be https (http is allowed only with allow_private for local services)".into());
        }
        crate::paths::validate(&self.secret).map_err(|e| format!("secret: {e}"))?;
        if self.endpoints.is_empty() {
            return Err("a service needs at least one endpoint".into());
        }
        for (n, e) in &self.endpoints {
            // Endpoint names may hold dots (`repo.get`), never `..` or a dot at an end.
            let dotted_ok = name_ok(&n.replace('.', "_"))
                && !n.starts_with('.')
                && !n.ends_with('.')
                && !n.contains("..");
            if !dotted_ok {
                return Err(format!(
                    "endpoint name {n:?}: letters, digits, -, _ and . (not at an end, not ..) only"
                ));
            }
            if !matches!(
                e.method.as_str(),
                "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
            ) {
                return Err(format!("endpoint {n}: method {:?}", e.method));
            }
            if !e.path.starts_with('/')
                || e.path.contains("..")
                || e.path.contains("//")
                || e.path.contains('?')
                || e.path.contains('#')
            {
                return Err(format!(
                    "endpoint {n}: path must start with / and hold no .., //, ? or #"
                ));
            }
        }
        if self.inject.is_empty() || self.inject.len() > 8 {
            return Err("inject: give 1 to 8 placements".into());
        }
        let mut seen = std::collections::HashSet::new();
        for i in &self.inject {
            let slot = match i {
                Inject::Header { name, template, .. } => {
                    if !template.contains("{secret}")
                        || name.is_empty()
                        || reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                    {
                        return Err(
                            "inject.header needs a valid name and a template containing {secret}"
                                .into(),
                        );
                    }
                    format!("header {}", name.to_ascii_lowercase())
                }
                Inject::Basic { .. } => "basic auth".to_string(),
                Inject::Query { name, .. } if name.is_empty() => {
                    return Err("inject.query needs a name".into());
                }
                Inject::Query { name, .. } => format!("query {name}"),
            };
            if !seen.insert(slot.clone()) {
                return Err(format!("inject: {slot} is placed twice"));
            }
        }
        let key_ok = |k: &str| {
            !k.is_empty()
                && k.len() <= 128
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        };
        if let Some(k) = self
            .inject
            .iter()
            .filter_map(Inject::key)
            .chain(self.key.as_deref())
            .find(|k| !key_ok(k))
        {
            return Err(format!("key {k:?} is not an env_bundle entry name"));
        }
        if self.timeout_seconds == 0
            || self.timeout_seconds > 300
            || self.max_response_bytes == 0
            || self.max_response_bytes > 64 * 1024 * 1024
        {
            return Err("timeout_seconds must be 1–300 and max_response_bytes 1 B–64 MiB".into());
        }
        Ok(())
    }

    /// May this agent use the service?
    pub fn allows(&self, agent_id: &str) -> bool {
        self.allowed_agents
            .iter()
            .any(|a| a == "*" || a == agent_id)
    }
}

fn ep(method: &str, path: &str) -> Endpoint {
    Endpoint {
        method: method.into(),
        path: path.into(),
    }
}

/// A shipped template, completed with a name and the secret's path.
pub fn template(kind: &str, name: &str, secret: &str) -> Option<Service> {
    let bearer = |header: &str, prefix: &str| Inject::Header {
        name: header.into(),
        template: format!("{prefix}{{secret}}"),
        key: None,
    };
    let (base, inject, endpoints): (&str, Inject, Vec<(&str, Endpoint)>) = match kind {
        "github" => (
            "https://api.github.com",
            bearer("authorization", "Bearer "),
            vec![
                ("get_repo", ep("GET", "/repos/{owner}/{repo}")),
                ("list_issues", ep("GET", "/repos/{owner}/{repo}/issues")),
                ("create_issue", ep("POST", "/repos/{owner}/{repo}/issues")),
                ("get_user", ep("GET", "/user")),
            ],
        ),
        "stripe" => (
            "https://api.stripe.com",
            Inject::Basic {
                username: String::new(),
                key: None,
            },
            vec![
                ("list_customers", ep("GET", "/v1/customers")),
                ("get_customer", ep("GET", "/v1/customers/{id}")),
                ("get_balance", ep("GET", "/v1/balance")),
            ],
        ),
        "openai" => (
            "https://api.openai.com",
            bearer("authorization", "Bearer "),
            vec![
                ("chat_completions", ep("POST", "/v1/chat/completions")),
                ("embeddings", ep("POST", "/v1/embeddings")),
                ("list_models", ep("GET", "/v1/models")),
            ],
        ),
        "anthropic" => (
            "https://api.anthropic.com",
            bearer("x-api-key", ""),
            vec![
                ("messages", ep("POST", "/v1/messages")),
                ("list_models", ep("GET", "/v1/models")),
            ],
        ),
        "shopify" => (
            "https://example.myshopify.com",
            bearer("x-shopify-access-token", ""),
            vec![
                (
                    "list_products",
                    ep("GET", "/admin/api/2024-10/products.json"),
                ),
                (
                    "get_product",
                    ep("GET", "/admin/api/2024-10/products/{id}.json"),
                ),
                ("list_orders", ep("GET", "/admin/api/2024-10/orders.json")),
            ],
        ),
        _ => return None,
    };
    Some(Service {
        name: name.into(),
        base_url: base.into(),
        inject: vec![inject],
        secret: secret.into(),
        key: None,
        allowed_agents: any(),
        endpoints: endpoints
            .into_iter()
            .map(|(n, e)| (n.to_string(), e))
            .collect(),
        allow_private: false,
        timeout_seconds: 30,
        max_response_bytes: mib(),
    })
}

/// Loads every `*.toml` in `dir` (missing directory: none). A bad file is an error naming it.
/// A service from a template, as a file or `POST /v1/services` declares it: the template's
/// endpoints and injection, with a name, a secret and optional overrides (a self-hosted or
/// test upstream takes `base_url` and `allow_private`).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FromTemplate {
    /// `github`, `stripe`, `openai`, `anthropic` or `shopify`.
    pub template: String,
    /// Service name.
    pub name: String,
    /// The secret's path.
    pub secret: String,
    /// Override the template's base URL (e.g. your Shopify store, a GitHub Enterprise host).
    pub base_url: Option<String>,
    /// Allow a private or loopback upstream (and plain http).
    pub allow_private: Option<bool>,
    /// Agents allowed (default: any agent holding a proxy lease).
    pub allowed_agents: Option<Vec<String>>,
}

impl FromTemplate {
    /// The service it declares (validated).
    pub fn build(self) -> Result<Service, String> {
        let mut svc = template(
            &self.template,
            &self.name,
            self.secret.trim_start_matches('/'),
        )
        .ok_or_else(|| {
            format!(
                "no template {:?}; try github, stripe, openai, anthropic, shopify",
                self.template
            )
        })?;
        if let Some(b) = self.base_url {
            svc.base_url = b;
        }
        if let Some(p) = self.allow_private {
            svc.allow_private = p;
        }
        if let Some(a) = self.allowed_agents {
            svc.allowed_agents = a;
        }
        svc.validate()?;
        Ok(svc)
    }
}

/// Loads `*.toml` service files: each a full service, or a template (`template = "github"`,
/// `name`, `secret`, and optional `base_url`, `allow_private`, `allowed_agents`).
pub fn load_dir(dir: &Path) -> Result<Vec<Service>, String> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let at = |e: String| format!("{}: {e}", f.display());
        let table: toml::Table = toml::from_str(&text).map_err(|e| at(e.to_string()))?;
        let svc = if table.contains_key("template") {
            toml::from_str::<FromTemplate>(&text)
                .map_err(|e| at(e.to_string()))?
                .build()
                .map_err(at)?
        } else {
            let svc: Service = toml::from_str(&text).map_err(|e| at(e.to_string()))?;
            svc.validate().map_err(at)?;
            svc
        };
        out.push(svc);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_valid() {
        for t in ["github", "stripe", "openai", "anthropic", "shopify"] {
            template(t, t, "production/x").unwrap().validate().unwrap();
        }
        assert!(template("nope", "n", "p").is_none());
    }

    #[test]
    fn dotted_endpoints_and_template_files() {
        let mut s = template("github", "gh", "production/gh").unwrap();
        let get = s.endpoints["get_repo"].clone();
        s.endpoints.insert("repo.get".into(), get.clone());
        s.validate().unwrap();
        for bad in [".x", "x.", "a..b", "a/b"] {
            let mut t = s.clone();
            t.endpoints.insert(bad.into(), get.clone());
            assert!(t.validate().is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ghe.toml"),
            "template = \"github\"\nname = \"ghe\"\nsecret = \"/production/ghe\"\nbase_url = \"http://127.0.0.1:9999\"\nallow_private = true\n",
        )
        .unwrap();
        let loaded = load_dir(dir.path()).unwrap();
        assert_eq!(loaded[0].base_url, "http://127.0.0.1:9999");
        assert!(loaded[0].allow_private);
        assert_eq!(loaded[0].secret, "production/ghe");
        std::fs::write(
            dir.path().join("ghe.toml"),
            "template = \"github\"\nname = \"ghe\"\nsecret = \"production/ghe\"\nbase_url = \"http://127.0.0.1:9999\"\n",
        )
        .unwrap();
        assert!(load_dir(dir.path()).unwrap_err().contains("allow_private"));
    }

    #[test]
    fn bad_services_are_refused() {
        let mut s = template("github", "gh", "production/gh").unwrap();
        s.base_url = "http://api.github.com".into();
        assert!(s.validate().is_err(), "http needs allow_private");
        let mut s = template("github", "gh", "production/gh").unwrap();
        s.endpoints.insert("bad".into(), ep("GET", "/a/../b"));
        assert!(s.validate().is_err());
        let mut s = template("github", "gh", "production/gh").unwrap();
        s.inject = vec![Inject::Header {
            name: "authorization".into(),
            template: "Bearer".into(),
            key: None,
        }];
        assert!(s.validate().is_err());
        let twice = Inject::Query {
            name: "k".into(),
            key: None,
        };
        s.inject = vec![twice.clone(), twice];
        assert!(s.validate().is_err(), "the same slot twice");
        s.inject = vec![Inject::Query {
            name: "k".into(),
            key: Some("BAD KEY".into()),
        }];
        assert!(s.validate().is_err(), "a key that is no entry name");
    }
}
