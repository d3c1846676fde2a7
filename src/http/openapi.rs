//! The OpenAPI document as served at `/openapi.json`: utoipa's document generated from the
//! handlers' annotations, then completed here, in one place, with what the server enforces
//! and the annotations do not say:
//!
//! - unique operation ids (several handlers share a function name);
//! - the constraints the handlers check (patterns, enums, ranges, lengths, formats), so that a
//!   client or a fuzzer can build requests the server accepts;
//! - `additionalProperties: false` on every request body object (they all deny unknown
//!   fields), and a flattened record (`allOf`) that stays valid with its extra fields;
//! - every error response, with the `{"error":{"code","message"}}` body: the ones any `/v1`
//!   route can give (401, 403, 408, 500, 503), those of a route with input (400, 404, 413,
//!   415), of a write (409) and those of particular routes (410, 429, 502);
//! - links: a created resource's id feeding the routes that take it.
//!
//! `scripts/schemathesis.sh` (run by `.ci/run`) holds the server to this document.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::ApiDoc;

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    unique_operation_ids(&mut doc);
    inline_flattened(&mut doc);
    for (pointer, extra) in schema_constraints() {
        if let Some(target) = doc.pointer_mut(pointer) {
            merge(target, extra);
        }
    }
    for (method, path, name, extra) in parameter_constraints() {
        for (m, p) in operations_matching(&doc, method, path) {
            let pointer = format!("/paths/{}/{m}/parameters", escape(&p));
            let params = doc.pointer_mut(&pointer).and_then(Value::as_array_mut);
            for param in params.into_iter().flatten() {
                if param["name"] == name
                    && let Some(schema) = param.get_mut("schema")
                {
                    merge(schema, extra.clone());
                }
            }
        }
    }
    close_request_bodies(&mut doc);
    error_responses(&mut doc);
    links(&mut doc);
    doc
}

/// JSON pointer escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

/// `(method, path)` of every operation whose method is `method` (or any for `*`) and whose
/// path is `path` (or starts with it when it ends in `*`).
fn operations_matching(doc: &Value, method: &str, path: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (p, item) in doc["paths"].as_object().into_iter().flatten() {
        let path_ok = match path.strip_suffix('*') {
            Some(prefix) => p.starts_with(prefix),
            None => p == path,
        };
        for m in METHODS {
            if path_ok && (method == "*" || method == m) && item.get(m).is_some() {
                found.push((m.to_string(), p.clone()));
            }
        }
    }
    found
}

/// Adds `extra`'s keys to `target` (an object); a `null` in `extra` removes the key.
fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        for (k, v) in e {
            if v.is_null() {
                t.remove(&k);
            } else {
                t.insert(k, v);
            }
        }
    }
}

/// Operation ids are unique: a function name shared by several handlers (`create`, `list`,
/// …) is prefixed with its tag (`agents_create`).
fn unique_operation_ids(doc: &mut Value) {
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for item in doc["paths"].as_object().into_iter().flatten() {
        for m in METHODS {
            if let Some(id) = item.1[m]["operationId"].as_str() {
                *counts.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    for item in doc["paths"].as_object_mut().into_iter().flatten() {
        for m in METHODS {
            let Some(op) = item.1.get_mut(m).and_then(Value::as_object_mut) else {
                continue;
            };
            let id = op.get("operationId").and_then(Value::as_str);
            let tag = op
                .get("tags")
                .and_then(|t| t.get(0))
                .and_then(Value::as_str);
            let (Some(id), Some(tag)) = (id, tag) else {
                continue;
            };
            if counts.get(id).copied().unwrap_or(0) > 1 {
                let unique = format!("{tag}_{id}");
                op.insert("operationId".into(), json!(unique));
            }
        }
    }
}

/// A record flattened into another (`#[serde(flatten)]` → `allOf`) is inlined without its
/// `additionalProperties: false`, which would refuse the outer record's own fields.
fn inline_flattened(doc: &mut Value) {
    let schemas = doc["components"]["schemas"].clone();
    let all = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut);
    for schema in all.into_iter().flatten() {
        let parts = schema.1.get_mut("allOf").and_then(Value::as_array_mut);
        for part in parts.into_iter().flatten() {
            let Some(name) = part["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            else {
                continue;
            };
            let target = &schemas[name];
            if target["additionalProperties"] == json!(false) {
                let mut inline = target.clone();
                merge(&mut inline, json!({"additionalProperties": null}));
                *part = inline;
            }
        }
    }
}

/// Every object a request body takes refuses unknown fields (`#[serde(deny_unknown_fields)]`
/// on each body type): `additionalProperties: false`, on the body's schema and the objects
/// it holds (tagged variants included), unless it says otherwise (maps, free-form metadata).
fn close_request_bodies(doc: &mut Value) {
    let mut names = Vec::new();
    for (_, item) in doc["paths"].as_object().into_iter().flatten() {
        for m in METHODS {
            let schema = &item[m]["requestBody"]["content"]["application/json"]["schema"];
            collect_refs(schema, &mut names);
        }
    }
    let mut i = 0;
    while i < names.len() {
        let schema = doc["components"]["schemas"][&names[i]].clone();
        collect_refs(&schema, &mut names);
        i += 1;
    }
    for name in names {
        let pointer = format!("/components/schemas/{}", escape(&name));
        let Some(schema) = doc.pointer_mut(&pointer) else {
            continue;
        };
        close(schema);
        let variants = schema.get_mut("oneOf").and_then(Value::as_array_mut);
        for variant in variants.into_iter().flatten() {
            close(variant);
        }
    }
}

fn close(schema: &mut Value) {
    if let Some(obj) = schema.as_object_mut()
        && obj.contains_key("properties")
        && !obj.contains_key("additionalProperties")
    {
        obj.insert("additionalProperties".into(), json!(false));
    }
}

fn collect_refs(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(obj) => {
            if let Some(name) = obj
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_string());
            }
            for v in obj.values() {
                collect_refs(v, names);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, names)),
        _ => {}
    }
}

/// A secret path segment: letters, digits and `. _ - @ + = :`, not `.` or `..`.
const SEGMENT: &str = r"(?:[A-Za-z0-9._@+=:-]*[A-Za-z0-9_@+=:-][A-Za-z0-9._@+=:-]*|\.{3,})";

/// A secret path, relative (to the caller's namespace) or absolute with a leading `/`.
fn path_pattern() -> String {
    format!("^/?{SEGMENT}(?:/{SEGMENT}){{0,31}}$")
}

/// A path glob (`*` within a segment, `**` any number of segments).
const GLOB: &str = r"^/?[A-Za-z0-9._@+=:*-]+(?:/[A-Za-z0-9._@+=:*-]+){0,31}$";

/// Session and task bindings: 1–128 printable characters.
const BINDING: &str = r"^[\x20-\x7e]{1,128}$";
/// A token's bindings also leave out `:`.
const TOKEN_BINDING: &str = r"^[\x20-\x39\x3b-\x7e]{1,128}$";

const SECRET_TYPES: [&str; 8] = [
    "api_key",
    "password",
    "token",
    "certificate",
    "ssh_key",
    "env_bundle",
    "note",
    "generic",
];

/// Constraints on component schemas' properties, by JSON pointer.
fn schema_constraints() -> Vec<(&'static str, Value)> {
    let path = json!({"pattern": path_pattern(), "minLength": 1, "maxLength": 513});
    let glob = json!({"pattern": GLOB, "minLength": 1, "maxLength": 513});
    let tier = json!({"minimum": 1, "maximum": 5});
    let positive = json!({"minimum": 1});
    let time = json!({"format": "date-time"});
    let mut sensitivities: Vec<Value> = crate::policy::SENSITIVITIES
        .iter()
        .map(|s| json!(s))
        .collect();
    let sensitivity_items = json!({"type": "string", "enum": sensitivities.clone()});
    sensitivities.push(Value::Null);
    let mut types: Vec<Value> = SECRET_TYPES.iter().map(|s| json!(s)).collect();
    types.push(Value::Null);
    vec![
        // Agents.
        (
            "/components/schemas/CreateAgent/properties/name",
            json!({"pattern": "^[A-Za-z0-9._-]{1,64}$", "minLength": 1, "maxLength": 64}),
        ),
        (
            "/components/schemas/CreateAgent/properties/trust_tier",
            tier.clone(),
        ),
        (
            "/components/schemas/CreateAgent/properties/description",
            json!({"maxLength": 1024}),
        ),
        (
            "/components/schemas/UpdateAgent/properties/trust_tier",
            tier.clone(),
        ),
        (
            "/components/schemas/AgentRecord/properties/tokens_not_before",
            json!({"type": "integer", "minimum": 0, "format": null}),
        ),
        // Admin tokens.
        (
            "/components/schemas/MintAdminToken/properties/description",
            json!({"maxLength": 200, "pattern": r"^[^\r\n]*$"}),
        ),
        // Secrets.
        (
            "/components/schemas/PutSecretBody/properties/value",
            json!({"minLength": 1}),
        ),
        (
            "/components/schemas/PutSecretBody/properties/sensitivity",
            json!({"enum": sensitivities}),
        ),
        (
            "/components/schemas/PutSecretBody/properties/type",
            json!({"enum": types}),
        ),
        (
            "/components/schemas/PutSecretBody/properties/expires_at",
            time.clone(),
        ),
        (
            "/components/schemas/PutSecretBody/properties/max_access_count",
            positive.clone(),
        ),
        (
            "/components/schemas/RollbackBody/properties/version",
            positive.clone(),
        ),
        (
            "/components/schemas/ReadNow/properties/reason",
            json!({"maxLength": 1000}),
        ),
        (
            "/components/schemas/ExportBody/properties/paths",
            json!({"minItems": 1, "maxItems": 1000, "items": path.clone()}),
        ),
        // Tokens.
        (
            "/components/schemas/MintToken/properties/scopes",
            json!({"minItems": 1, "maxItems": 64, "items": {"type": "string",
                "pattern": r"^secrets:(?:read|proxy|list|write|\*):/?[A-Za-z0-9._@+=:*-]+(?:/[A-Za-z0-9._@+=:*-]+){0,31}$"}}),
        ),
        (
            "/components/schemas/MintToken/properties/ttl_seconds",
            positive.clone(),
        ),
        (
            "/components/schemas/MintToken/properties/session_id",
            json!({"pattern": TOKEN_BINDING}),
        ),
        (
            "/components/schemas/MintToken/properties/task_id",
            json!({"pattern": TOKEN_BINDING}),
        ),
        (
            "/components/schemas/Revoke/properties/reason",
            json!({"maxLength": 500}),
        ),
        // Leases.
        (
            "/components/schemas/LeaseRequest/properties/path",
            path.clone(),
        ),
        (
            "/components/schemas/LeaseRequest/properties/ttl_seconds",
            positive.clone(),
        ),
        (
            "/components/schemas/LeaseRequest/properties/uses",
            positive.clone(),
        ),
        (
            "/components/schemas/LeaseRequest/properties/reason",
            json!({"maxLength": 1000}),
        ),
        (
            "/components/schemas/LeaseRequest/properties/session_id",
            json!({"pattern": BINDING}),
        ),
        (
            "/components/schemas/LeaseRequest/properties/task_id",
            json!({"pattern": BINDING}),
        ),
        (
            "/components/schemas/VoteBody/properties/reason",
            json!({"maxLength": 400}),
        ),
        (
            "/components/schemas/VoteBody/properties/via",
            json!({"enum": ["api", "cli", "console", null]}),
        ),
        // Grants and approval policies.
        (
            "/components/schemas/GrantBody/properties/pattern",
            glob.clone(),
        ),
        (
            "/components/schemas/GrantBody/properties/actions",
            json!({"minItems": 1}),
        ),
        (
            "/components/schemas/GrantBody/properties/expires_at",
            time.clone(),
        ),
        (
            "/components/schemas/Override/properties/pattern",
            glob.clone(),
        ),
        (
            "/components/schemas/Override/properties/quorum",
            json!({"minimum": 1, "maximum": 10}),
        ),
        (
            "/components/schemas/Override/properties/deadline_seconds",
            positive.clone(),
        ),
        (
            "/components/schemas/Override/properties/tiers",
            json!({"items": {"type": "integer", "minimum": 1, "maximum": 5}}),
        ),
        (
            "/components/schemas/Override/properties/sensitivities",
            json!({"items": sensitivity_items}),
        ),
        // Webhooks.
        (
            "/components/schemas/CreateWebhook/properties/url",
            json!({"format": "uri"}),
        ),
        (
            "/components/schemas/CreateWebhook/properties/events",
            json!({"minItems": 1, "maxItems": 64, "items": {"type": "string",
                "pattern": r"^audit\.[a-z._]*\*?$", "maxLength": 128}}),
        ),
        (
            "/components/schemas/UpdateWebhook/properties/events",
            json!({"minItems": 1, "maxItems": 64, "items": {"type": "string",
                "pattern": r"^audit\.[a-z._]*\*?$", "maxLength": 128}}),
        ),
    ]
}

/// Constraints on parameters: (method or `*`, path or prefix`*`, name, schema keys).
fn parameter_constraints() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let path = json!({"pattern": path_pattern(), "minLength": 1, "maxLength": 513});
    let lease_states =
        json!({"enum": ["pending", "active", "exhausted", "expired", "revoked", "denied", null]});
    vec![
        ("*", "/v1/secrets/*", "path", path),
        (
            "get",
            "/v1/secrets",
            "prefix",
            json!({"pattern": format!("^(?:/?{SEGMENT}(?:/{SEGMENT}){{0,31}})?/*$"), "maxLength": 513}),
        ),
        (
            "get",
            "/v1/approvals",
            "state",
            json!({"enum": ["pending", "all", null]}),
        ),
        ("get", "/v1/leases", "state", lease_states),
        ("get", "/v1/leases/{id}", "wait", json!({"maximum": 60})),
        (
            "delete",
            "/v1/leases/{id}",
            "reason",
            json!({"maxLength": 400}),
        ),
        ("get", "/v1/audit", "since", json!({"format": "date-time"})),
        ("get", "/v1/audit", "until", json!({"format": "date-time"})),
        (
            "*",
            "/v1/agents/{id}*",
            "id",
            json!({"minLength": 1, "maxLength": 80}),
        ),
        (
            "put",
            "/v1/grants/{id}",
            "id",
            json!({"pattern": "^[A-Za-z0-9_-]{1,64}$"}),
        ),
        (
            "*",
            "/v1/approval-policies/{pattern}",
            "pattern",
            json!({"pattern": GLOB, "minLength": 1, "maxLength": 513}),
        ),
    ]
}

/// The shared error responses, each with the codes it carries.
fn error_components() -> Vec<(&'static str, u16, &'static str)> {
    vec![
        (
            "BadRequest",
            400,
            "The input is refused: `bad_request`, `invalid_json`, `invalid_path`, `invalid_scope` or `invalid_ttl`.",
        ),
        (
            "Unauthorized",
            401,
            "`unauthorized`: no credential, or one the daemon refuses.",
        ),
        (
            "Forbidden",
            403,
            "`access_denied` (the credential may not do this) or `scope_escalation`.",
        ),
        (
            "NotFound",
            404,
            "`not_found`: nothing by that id, name or path.",
        ),
        (
            "RequestTimeout",
            408,
            "`request_timeout`: the request took longer than `http.request_timeout_seconds`.",
        ),
        (
            "Conflict",
            409,
            "`conflict`, `version_conflict`, `secret_deleted`, `already_decided` or `lease_not_active`: the resource's state forbids this.",
        ),
        (
            "Gone",
            410,
            "`expired`: the lease or secret is past its time, uses or access count.",
        ),
        (
            "PayloadTooLarge",
            413,
            "`payload_too_large`: the body is larger than `http.max_body_bytes`.",
        ),
        (
            "UnsupportedMediaType",
            415,
            "`unsupported_media_type`: the body is not `application/json`.",
        ),
        (
            "TooManyRequests",
            429,
            "`rate_limited`: a grant's `max_leases_per_hour` is used up.",
        ),
        (
            "InternalError",
            500,
            "`internal`: the daemon failed; the body is generic and the details are in its log.",
        ),
        (
            "BadGateway",
            502,
            "`upstream_failed`: the proxied service could not be reached or answered badly.",
        ),
        (
            "Unavailable",
            503,
            "`unavailable` (the store is not ready) or `shutting_down` (with `Retry-After`).",
        ),
    ]
}

/// Codes particular routes give beyond the common ones.
fn particular_errors() -> Vec<(&'static str, &'static str, &'static [u16])> {
    vec![
        ("post", "/v1/leases", &[409, 410, 429]),
        ("post", "/v1/secrets/{path}/read", &[409, 410, 429]),
        ("post", "/v1/leases/{id}/secret", &[409, 410]),
        ("post", "/v1/proxy/{service}/{endpoint}", &[409, 410, 502]),
        ("get", "/v1/agents/{id}", &[409]),
        ("get", "/v1/secrets/{path}", &[409]),
        ("get", "/v1/secrets/{path}/versions", &[409]),
    ]
}

/// Adds the error responses each operation can give, where its annotations did not.
fn error_responses(doc: &mut Value) {
    let components = error_components();
    let responses = doc["components"]
        .as_object_mut()
        .map(|c| c.entry("responses").or_insert_with(|| json!({})));
    if let Some(Value::Object(responses)) = responses {
        for (name, _, description) in &components {
            responses.insert(
                (*name).into(),
                json!({"description": description, "content": {"application/json":
                    {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}),
            );
        }
    }
    let name_of = |code: u16| components.iter().find(|c| c.1 == code).map(|c| c.0);
    let particular = particular_errors();
    for (path, item) in doc["paths"].as_object_mut().into_iter().flatten() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for m in METHODS {
            let Some(op) = item.get_mut(m).and_then(Value::as_object_mut) else {
                continue;
            };
            let params = op.get("parameters").and_then(Value::as_array);
            let has_params = params.is_some_and(|p| !p.is_empty());
            let has_path_params = params.is_some_and(|p| p.iter().any(|p| p["in"] == "path"));
            let has_body = op.contains_key("requestBody");
            let mut codes = vec![401, 403, 408, 500, 503];
            if has_params || has_body {
                codes.push(400);
            }
            // What a path or a body names (an agent, a secret, a token, …) may not exist.
            if has_path_params || has_body {
                codes.push(404);
            }
            if has_body {
                codes.extend([413, 415]);
            }
            if m != "get" {
                codes.push(409);
            }
            for (pm, pp, extra) in &particular {
                if *pm == m && pp == path {
                    codes.extend_from_slice(extra);
                }
            }
            let responses = op.entry("responses").or_insert_with(|| json!({}));
            let Some(responses) = responses.as_object_mut() else {
                continue;
            };
            for code in codes {
                let key = code.to_string();
                match responses.get_mut(&key) {
                    // An annotated error response: give it the body when it has none.
                    Some(Value::Object(existing)) => {
                        existing.entry("content").or_insert_with(|| {
                            json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}})
                        });
                    }
                    _ => {
                        if let Some(name) = name_of(code) {
                            responses.insert(
                                key,
                                json!({"$ref": format!("#/components/responses/{name}")}),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// (source method, source path, status, link name, target method, target path,
/// parameters of the target taken from the source's request or response).
type LinkSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

fn link_specs() -> Vec<LinkSpec> {
    const AGENT: &[(&str, &str)] = &[("id", "$response.body#/agent/id")];
    const ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
    const PATH: &[(&str, &str)] = &[("path", "$request.path.path")];
    const LEASE_APPROVAL: &[(&str, &str)] = &[("id", "$response.body#/approval_id")];
    vec![
        (
            "post",
            "/v1/agents",
            "201",
            "GetAgent",
            "get",
            "/v1/agents/{id}",
            AGENT,
        ),
        (
            "post",
            "/v1/agents",
            "201",
            "UpdateAgent",
            "patch",
            "/v1/agents/{id}",
            AGENT,
        ),
        (
            "post",
            "/v1/agents",
            "201",
            "RotateAgentKey",
            "post",
            "/v1/agents/{id}/rotate-key",
            AGENT,
        ),
        (
            "post",
            "/v1/admin-tokens",
            "201",
            "RevokeAdminToken",
            "delete",
            "/v1/admin-tokens/{id}",
            ID,
        ),
        (
            "put",
            "/v1/secrets/{path}",
            "201",
            "GetSecret",
            "get",
            "/v1/secrets/{path}",
            PATH,
        ),
        (
            "put",
            "/v1/secrets/{path}",
            "201",
            "SecretVersions",
            "get",
            "/v1/secrets/{path}/versions",
            PATH,
        ),
        (
            "put",
            "/v1/secrets/{path}",
            "201",
            "RollbackSecret",
            "post",
            "/v1/secrets/{path}/rollback",
            PATH,
        ),
        (
            "put",
            "/v1/secrets/{path}",
            "201",
            "DeleteSecret",
            "delete",
            "/v1/secrets/{path}",
            PATH,
        ),
        (
            "put",
            "/v1/secrets/{path}",
            "201",
            "RestoreSecret",
            "post",
            "/v1/secrets/{path}/restore",
            PATH,
        ),
        (
            "put",
            "/v1/secrets/{path}",
            "201",
            "ReadSecret",
            "post",
            "/v1/secrets/{path}/read",
            PATH,
        ),
        (
            "put",
            "/v1/secrets/{path}",
            "200",
            "GetSecret",
            "get",
            "/v1/secrets/{path}",
            PATH,
        ),
        (
            "post",
            "/v1/grants",
            "201",
            "ReplaceGrant",
            "put",
            "/v1/grants/{id}",
            ID,
        ),
        (
            "post",
            "/v1/grants",
            "201",
            "DeleteGrant",
            "delete",
            "/v1/grants/{id}",
            ID,
        ),
        (
            "put",
            "/v1/approval-policies/{pattern}",
            "200",
            "DeletePolicy",
            "delete",
            "/v1/approval-policies/{pattern}",
            &[("pattern", "$request.path.pattern")],
        ),
        (
            "post",
            "/v1/tokens",
            "201",
            "RevokeToken",
            "delete",
            "/v1/tokens/{id}",
            ID,
        ),
        (
            "post",
            "/v1/leases",
            "201",
            "GetLease",
            "get",
            "/v1/leases/{id}",
            ID,
        ),
        (
            "post",
            "/v1/leases",
            "201",
            "UseLease",
            "post",
            "/v1/leases/{id}/secret",
            ID,
        ),
        (
            "post",
            "/v1/leases",
            "201",
            "RevokeLease",
            "delete",
            "/v1/leases/{id}",
            ID,
        ),
        (
            "post",
            "/v1/leases",
            "201",
            "GetApproval",
            "get",
            "/v1/approvals/{id}",
            LEASE_APPROVAL,
        ),
        (
            "post",
            "/v1/leases",
            "201",
            "VoteOnApproval",
            "post",
            "/v1/approvals/{id}/votes",
            LEASE_APPROVAL,
        ),
        (
            "post",
            "/v1/secrets/{path}/read",
            "202",
            "GetLease",
            "get",
            "/v1/leases/{id}",
            ID,
        ),
        (
            "post",
            "/v1/secrets/{path}/read",
            "202",
            "VoteOnApproval",
            "post",
            "/v1/approvals/{id}/votes",
            LEASE_APPROVAL,
        ),
        (
            "post",
            "/v1/webhooks",
            "201",
            "GetWebhook",
            "get",
            "/v1/webhooks/{id}",
            ID,
        ),
        (
            "post",
            "/v1/webhooks",
            "201",
            "UpdateWebhook",
            "patch",
            "/v1/webhooks/{id}",
            ID,
        ),
        (
            "post",
            "/v1/webhooks",
            "201",
            "DeleteWebhook",
            "delete",
            "/v1/webhooks/{id}",
            ID,
        ),
        (
            "post",
            "/v1/webhooks",
            "201",
            "RotateWebhookSecret",
            "post",
            "/v1/webhooks/{id}/rotate-secret",
            ID,
        ),
        (
            "post",
            "/v1/webhooks",
            "201",
            "ReplayWebhook",
            "post",
            "/v1/webhooks/{id}/replay",
            ID,
        ),
        (
            "post",
            "/v1/webhooks",
            "201",
            "WebhookDeliveries",
            "get",
            "/v1/webhooks/{id}/deliveries",
            ID,
        ),
        (
            "post",
            "/v1/services",
            "201",
            "DeleteService",
            "delete",
            "/v1/services/{name}",
            &[("name", "$response.body#/name")],
        ),
    ]
}

/// OpenAPI links: a created resource's id feeding the routes that take it.
fn links(doc: &mut Value) {
    for (sm, sp, status, name, tm, tp, params) in link_specs() {
        let Some(target) = doc["paths"][tp][tm]["operationId"]
            .as_str()
            .map(String::from)
        else {
            continue;
        };
        let pointer = format!("/paths/{}/{sm}/responses/{status}", escape(sp));
        let Some(response) = doc.pointer_mut(&pointer).and_then(Value::as_object_mut) else {
            continue;
        };
        let parameters: Map<String, Value> = params
            .iter()
            .map(|(k, v)| ((*k).into(), json!(v)))
            .collect();
        let links = response.entry("links").or_insert_with(|| json!({}));
        if let Some(links) = links.as_object_mut() {
            links.insert(
                name.into(),
                json!({"operationId": target, "parameters": parameters}),
            );
        }
    }
}
