//! The tools: their parameters (the JSON schema a model sees is derived from each struct),
//! descriptions written for a model, annotations, which scope action makes each visible,
//! and what each does on the typed client.

use std::collections::BTreeMap;

use latchkey_client::{Client, Error, LeaseRequest, LeaseState, MintToken, PutSecret, ReadOutcome};
use rmcp::ErrorData;
use rmcp::handler::server::common::schema_for_input;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use rmcp::schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::wait;

/// Parameters of `list_secrets`.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ListSecrets {
    /// Only paths starting with this prefix (relative to your namespace, or absolute with a leading /).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Continue after this path (the `next` of the previous page).
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Parameters of the tools that name one secret.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct SecretPath {
    /// Secret path, e.g. `openai/api-key` (in your namespace) or `/production/openai/api-key`.
    pub path: String,
}

/// Parameters of `get_secret` and `get_env_bundle`.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct GetSecret {
    /// Secret path, e.g. `/production/openai/api-key`.
    pub path: String,
    /// Why you need it: shown to the human approver when an approval is needed.
    #[serde(default)]
    pub reason: String,
    /// For an env_bundle: only these keys.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    /// Longest wait for an approver, in seconds (default 40, at most 45).
    #[serde(default)]
    pub wait_seconds: Option<u64>,
}

/// Parameters of `put_secret`.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct PutSecretParams {
    /// Secret path, e.g. `staging/db/password` (in your namespace).
    pub path: String,
    /// The value (never empty). Do not echo it back to the user.
    #[schemars(with = "String")]
    pub value: SecretString,
    /// `api_key` (default), `password`, `token`, `certificate`, `ssh_key`, `note`, `generic`.
    #[serde(default, rename = "type")]
    pub secret_type: Option<String>,
    /// `standard` (default), `sensitive` or `critical`: how much approval reading it needs.
    #[serde(default)]
    pub sensitivity: Option<String>,
    /// Free-form JSON object (e.g. `{"rotate_every": "90d"}`).
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Only if this is the current version (0: the secret must not exist yet).
    #[serde(default)]
    pub if_version: Option<u64>,
}

/// Parameters of `rotate_and_store`.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct RotateParams {
    /// Path of an existing secret.
    pub path: String,
    /// The new value. Leave it out to have Latchkey generate a random one (43 URL-safe
    /// characters) that is stored without being shown to you.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub value: Option<SecretString>,
}

/// Parameters of `request_token`.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct RequestToken {
    /// Scopes `secrets:<read|proxy|list|write|*>:<glob>`, e.g. `secrets:read:staging/**`; each
    /// must be covered by your own credential.
    pub scopes: Vec<String>,
    /// Lifetime in seconds (default 600; never longer than your own credential's).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// What the token is for (recorded in the audit log).
    #[serde(default)]
    pub description: String,
    /// Bind the token to a session id (revocable together).
    #[serde(default)]
    pub session_id: Option<String>,
    /// Bind the token to a task id (revocable together).
    #[serde(default)]
    pub task_id: Option<String>,
}

/// Parameters of `call_service`.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct CallService {
    /// Service name, from `list_services`.
    pub service: String,
    /// Endpoint name of that service, from `list_services`.
    pub endpoint: String,
    /// Path parameters of the endpoint, plus query (GET, DELETE) or JSON body fields.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// A proxy lease you already hold (from a pending answer of this tool); without one a
    /// single-use proxy lease is requested.
    #[serde(default)]
    pub lease_id: Option<String>,
    /// The secret to use; default: the service's own secret.
    #[serde(default)]
    pub path: Option<String>,
    /// Why you call it: shown to the human approver when an approval is needed.
    #[serde(default)]
    pub reason: String,
    /// Longest wait for an approver, in seconds (default 40, at most 45).
    #[serde(default)]
    pub wait_seconds: Option<u64>,
}

/// Parameters of `wait_for_lease`.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct WaitForLease {
    /// The `lease_id` of a pending answer.
    pub lease_id: String,
    /// Longest wait, in seconds (default 40, at most 45).
    #[serde(default)]
    pub wait_seconds: Option<u64>,
}

/// Parameters of `revoke_lease`.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct RevokeLease {
    /// The lease to end (a pending one's approval is cancelled).
    pub lease_id: String,
    /// Why (recorded in the audit log).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Parameters of `list_services`.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Which scope action makes a tool visible.
#[derive(Clone, Copy)]
enum Needs {
    /// `secrets:list:…`
    List,
    /// `secrets:read:…`
    Read,
    /// `secrets:write:…`
    Write,
    /// `secrets:proxy:…`
    Proxy,
    /// `read` or `proxy` (lease tools).
    Lease,
    /// Any agent credential.
    Agent,
}

/// One tool of the catalogue.
struct Spec {
    name: &'static str,
    description: &'static str,
    schema: fn() -> std::sync::Arc<JsonObject>,
    read_only: bool,
    destructive: bool,
    open_world: bool,
    needs: Needs,
}

fn schema<T: JsonSchema + 'static>() -> std::sync::Arc<JsonObject> {
    // The parameter structs are objects, which is all schema_for_input refuses otherwise.
    schema_for_input::<T>().unwrap_or_default()
}

const CATALOGUE: &[Spec] = &[
    Spec {
        name: "list_secrets",
        description: "List the secrets you can see (paths, types, sensitivity, versions; never values). Paginated: pass `next` as `after` for the next page.",
        schema: schema::<ListSecrets>,
        read_only: true,
        destructive: false,
        open_world: false,
        needs: Needs::List,
    },
    Spec {
        name: "describe_secret",
        description: "Describe one secret: type, sensitivity, current version, metadata, expiry. Never the value.",
        schema: schema::<SecretPath>,
        read_only: true,
        destructive: false,
        open_world: false,
        needs: Needs::List,
    },
    Spec {
        name: "get_secret",
        description: "Read a secret's value (a single-use, audited lease). If the secret needs a human's approval, this waits up to wait_seconds; if nobody has decided by then it answers state \"pending\" with a lease_id: call wait_for_lease with it. A denial answers state \"denied\" with the approver's reason. Prefer call_service when the secret is an API credential: then the value never enters your context.",
        schema: schema::<GetSecret>,
        read_only: true,
        destructive: false,
        open_world: false,
        needs: Needs::Read,
    },
    Spec {
        name: "get_env_bundle",
        description: "Read an env_bundle secret's entries (KEY → VALUE), optionally only some keys. Waits for an approval like get_secret.",
        schema: schema::<GetSecret>,
        read_only: true,
        destructive: false,
        open_world: false,
        needs: Needs::Read,
    },
    Spec {
        name: "put_secret",
        description: "Store a secret (a new one, or a new version of an existing one) in your namespace. The value is encrypted at rest and every write is audited.",
        schema: schema::<PutSecretParams>,
        read_only: false,
        destructive: false,
        open_world: false,
        needs: Needs::Write,
    },
    Spec {
        name: "rotate_and_store",
        description: "Rotate an existing secret: store a new value as its next version (refused if the secret does not exist or changed meanwhile). Without a value, Latchkey generates a random one and does not show it to you.",
        schema: schema::<RotateParams>,
        read_only: false,
        destructive: true,
        open_world: false,
        needs: Needs::Write,
    },
    Spec {
        name: "delete_secret",
        description: "Delete a secret (soft delete: an operator can restore it). Its leases stop working.",
        schema: schema::<SecretPath>,
        read_only: false,
        destructive: true,
        open_world: false,
        needs: Needs::Write,
    },
    Spec {
        name: "request_token",
        description: "Mint a scoped token for a sub-agent: narrower than your own credential and no longer-lived. The token is shown once; hand it to the sub-agent as LATCHKEY_TOKEN.",
        schema: schema::<RequestToken>,
        read_only: false,
        destructive: false,
        open_world: false,
        needs: Needs::Agent,
    },
    Spec {
        name: "list_services",
        description: "List the outside APIs you can call through call_service: each service's name, base URL, endpoints (method, path with {parameters}) and the secret it injects.",
        schema: schema::<NoParams>,
        read_only: true,
        destructive: false,
        open_world: false,
        needs: Needs::Proxy,
    },
    Spec {
        name: "call_service",
        description: "Call an outside API endpoint through Latchkey's proxy: Latchkey injects the credential server-side and removes any echo of it from the answer, so the credential never reaches you. Answers the upstream's status, headers and body. If the credential needs a human's approval, waits like get_secret and may answer state \"pending\" with a lease_id: call wait_for_lease, then call_service again with that lease_id.",
        schema: schema::<CallService>,
        read_only: false,
        destructive: false,
        open_world: true,
        needs: Needs::Proxy,
    },
    Spec {
        name: "wait_for_lease",
        description: "Keep waiting for a pending lease (from a pending answer of get_secret, get_env_bundle or call_service), at most wait_seconds. Once approved, a read lease answers the value; a proxy lease answers state \"active\" (then call call_service with its lease_id). A denial answers the approver's reason. Still pending: call it again.",
        schema: schema::<WaitForLease>,
        read_only: true,
        destructive: false,
        open_world: false,
        needs: Needs::Lease,
    },
    Spec {
        name: "revoke_lease",
        description: "End a lease you no longer need (a pending one's approval request is withdrawn).",
        schema: schema::<RevokeLease>,
        read_only: false,
        destructive: false,
        open_world: false,
        needs: Needs::Lease,
    },
];

/// Every tool's definition (for documentation and tests).
pub fn all() -> Vec<Tool> {
    CATALOGUE.iter().map(definition).collect()
}

fn definition(s: &Spec) -> Tool {
    Tool::new(s.name, s.description, (s.schema)()).with_annotations(
        ToolAnnotations::new()
            .read_only(s.read_only)
            .destructive(s.destructive)
            .open_world(s.open_world),
    )
}

/// The tools a credential is shown: agent credentials only (admin and approver tokens get
/// none), each tool when some scope allows its action.
pub fn visible(me: &latchkey_client::WhoAmI) -> Vec<Tool> {
    if !me.is_agent() {
        return Vec::new();
    }
    CATALOGUE
        .iter()
        .filter(|s| match s.needs {
            Needs::List => me.may("list"),
            Needs::Read => me.may("read"),
            Needs::Write => me.may("write"),
            Needs::Proxy => me.may("proxy"),
            Needs::Lease => me.may("read") || me.may("proxy"),
            Needs::Agent => true,
        })
        .map(definition)
        .collect()
}

/// Runs one tool. Refusals by the daemon and unreachable daemons are tool results with
/// `isError` (the model reads them); only an unknown tool or malformed arguments are
/// protocol errors.
pub async fn call(
    client: &Client,
    name: &str,
    args: Option<JsonObject>,
) -> Result<CallToolResult, ErrorData> {
    let answer = match name {
        "list_secrets" => {
            let p: ListSecrets = params(args)?;
            client
                .list_secrets(p.prefix.as_deref(), p.after.as_deref(), p.limit)
                .await
        }
        "describe_secret" => {
            client
                .describe_secret(&params::<SecretPath>(args)?.path)
                .await
        }
        "get_secret" | "get_env_bundle" => get_secret(client, params(args)?).await,
        "put_secret" => put_secret(client, params(args)?).await,
        "rotate_and_store" => rotate(client, params(args)?).await,
        "delete_secret" => client
            .delete_secret(&params::<SecretPath>(args)?.path)
            .await
            .map(|_| json!({"deleted": true})),
        "request_token" => request_token(client, params(args)?).await,
        "list_services" => {
            let _: NoParams = params(args)?;
            client.list_services().await.map(|s| json!({"services": s}))
        }
        "call_service" => call_service(client, params(args)?).await,
        "wait_for_lease" => {
            let p: WaitForLease = params(args)?;
            wait_for_lease(client, &p.lease_id, wait::bound(p.wait_seconds)).await
        }
        "revoke_lease" => {
            let p: RevokeLease = params(args)?;
            client
                .revoke_lease(&p.lease_id, p.reason.as_deref())
                .await
                .map(|l| json!({"lease_id": l.id, "state": l.state.as_str()}))
        }
        other => {
            return Err(ErrorData::invalid_params(
                format!("no tool named {other:?}"),
                None,
            ));
        }
    };
    Ok(match answer {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => refusal(&e),
    })
}

fn params<T: DeserializeOwned>(args: Option<JsonObject>) -> Result<T, ErrorData> {
    serde_json::from_value(Value::Object(args.unwrap_or_default()))
        .map_err(|e| ErrorData::invalid_params(format!("invalid arguments: {e}"), None))
}

/// A failed call as a tool result the model can read: the daemon's code and message.
fn refusal(e: &Error) -> CallToolResult {
    let error = match e {
        Error::Api(a) => json!({"status": a.status, "code": a.code, "message": a.message}),
        Error::Invalid(m) => json!({"code": "invalid_argument", "message": m}),
        other => json!({"code": "unreachable", "message": other.to_string()}),
    };
    let mut r = CallToolResult::structured_error(json!({ "error": error }));
    r.content = vec![ContentBlock::text(e.to_string())];
    r
}

async fn get_secret(client: &Client, p: GetSecret) -> Result<Value, Error> {
    let until = wait::bound(p.wait_seconds);
    match client
        .read_secret(&p.path, &p.reason, p.keys.as_deref())
        .await?
    {
        ReadOutcome::Value(v) => Ok(wait::revealed(&v)),
        ReadOutcome::Pending(lease) => {
            let lease = wait::until_decided(client, lease, until).await?;
            wait::outcome(client, lease).await
        }
    }
}

async fn wait_for_lease(
    client: &Client,
    id: &str,
    until: tokio::time::Instant,
) -> Result<Value, Error> {
    let lease = client.lease(id, None).await?;
    let lease = wait::until_decided(client, lease, until).await?;
    wait::outcome(client, lease).await
}

async fn put_secret(client: &Client, p: PutSecretParams) -> Result<Value, Error> {
    let put = PutSecret {
        value: Some(p.value),
        secret_type: p.secret_type,
        sensitivity: p.sensitivity,
        metadata: p.metadata,
        if_version: p.if_version,
        ..PutSecret::default()
    };
    client.put_secret(&p.path, &put).await
}

async fn rotate(client: &Client, p: RotateParams) -> Result<Value, Error> {
    let current = client.describe_secret(&p.path).await?;
    let version = current["current_version"].as_u64().unwrap_or(0);
    let (value, generated) = match p.value {
        Some(v) => (v, false),
        None => (generate(), true),
    };
    let put = PutSecret {
        value: Some(value),
        if_version: Some(version),
        ..PutSecret::default()
    };
    let mut answer = client.put_secret(&p.path, &put).await?;
    if let Some(obj) = answer.as_object_mut() {
        obj.insert("rotated_from_version".into(), json!(version));
        obj.insert("generated".into(), json!(generated));
    }
    Ok(answer)
}

/// A random value: 32 bytes, URL-safe base64 (43 characters).
fn generate() -> SecretString {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::thread_rng().fill_bytes(&mut *bytes);
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*bytes))
}

async fn request_token(client: &Client, p: RequestToken) -> Result<Value, Error> {
    let minted = client
        .mint_token(&MintToken {
            scopes: p.scopes,
            ttl_seconds: p.ttl_seconds,
            description: p.description,
            session_id: p.session_id,
            task_id: p.task_id,
        })
        .await?;
    Ok(json!({
        "token": minted.token.expose_secret(),
        "id": minted.id,
        "scopes": minted.scopes,
        "expires_at": minted.expires_at,
        "message": "Shown once: hand the token to the sub-agent as LATCHKEY_TOKEN; it reaches only these scopes.",
    }))
}

async fn call_service(client: &Client, p: CallService) -> Result<Value, Error> {
    let until = wait::bound(p.wait_seconds);
    let lease = match &p.lease_id {
        Some(id) => client.lease(id, None).await?,
        None => {
            let path = match p.path.clone() {
                Some(path) => path,
                None => service_secret(client, &p.service).await?,
            };
            client
                .request_lease(&LeaseRequest {
                    path,
                    action: "proxy".into(),
                    uses: Some(1),
                    reason: p.reason.clone(),
                    ..LeaseRequest::default()
                })
                .await?
        }
    };
    let lease = wait::until_decided(client, lease, until).await?;
    if lease.state != LeaseState::Active {
        return Ok(wait::not_active(&lease));
    }
    client
        .call_service(&p.service, &p.endpoint, &lease.id, p.params)
        .await
}

/// The secret a service injects, as an absolute path.
async fn service_secret(client: &Client, service: &str) -> Result<String, Error> {
    let services = client.list_services().await?;
    let secret = services
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == service)
        .and_then(|s| s["secret"].as_str())
        .ok_or_else(|| {
            Error::Invalid(format!("no service named {service:?} (see list_services)"))
        })?;
    Ok(format!("/{}", secret.trim_start_matches('/')))
}

/// The entries of an env_bundle as a plain map, for the model.
pub(super) fn entries(e: &BTreeMap<String, SecretString>) -> Map<String, Value> {
    e.iter()
        .map(|(k, v)| (k.clone(), Value::from(v.expose_secret())))
        .collect()
}
