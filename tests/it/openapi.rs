//! The OpenAPI document matches the server: every documented operation is routed, and
//! every route group is documented.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::Daemon;

#[tokio::test]
async fn every_documented_operation_is_served() {
    let d = Daemon::start().await;
    let (s, doc) = d.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "put", "post", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let url = path
                .replace("{path}", "probe/x")
                .replace("{id}", "01aaaaaaaaaaaaaaaaaaaaaaaa");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method, "put" | "post" | "patch").then(|| json!({}));
            let (status, b) = d.call(m, &url, Some(&d.admin.clone()), body).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(
                b["error"]["message"], "no such endpoint",
                "{method} {path} is documented but not routed"
            );
            assert!(!status.is_server_error(), "{method} {path}: {status} {b}");
        }
    }
    assert!(operations >= 23, "{operations} operations documented");
    for expected in [
        "/v1/secrets/{path}",
        "/v1/secrets/{path}/versions",
        "/v1/secrets/{path}/rollback",
        "/v1/secrets/{path}/restore",
        "/v1/agents",
        "/v1/tokens",
        "/v1/tokens/revoke",
        "/v1/audit",
        "/v1/audit/verify",
        "/v1/keys/rotate",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not documented");
    }
    // Schemas of request bodies reject unknown fields, as the server does.
    let put = &doc["paths"]["/v1/secrets/{path}"]["put"];
    assert!(put["requestBody"].is_object());
    d.stop().await;
}

/// The document states what the server enforces (issue 12 item 15; `scripts/schemathesis.sh`
/// holds the server to it): unique operation ids, closed request bodies, every error
/// response with the error body, constraints on inputs, and links from created resources.
#[tokio::test]
async fn the_document_states_the_contract() {
    let d = Daemon::start().await;
    let (_, doc) = d.call(Method::GET, "/openapi.json", None, None).await;
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "operationId {id} is not unique");
            if !path.starts_with("/v1/") {
                continue;
            }
            let responses = op["responses"].as_object().unwrap();
            for code in ["401", "403", "408", "500", "503"] {
                assert!(responses.contains_key(code), "{method} {path} lacks {code}");
            }
            if op.get("requestBody").is_some() {
                for code in ["400", "413", "415"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                }
            }
        }
    }
    // Error responses carry the error body.
    let unauthorized = &doc["components"]["responses"]["Unauthorized"];
    assert_eq!(
        unauthorized["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    // Request bodies are closed, tagged variants included; no key left null by the patching.
    let schemas = &doc["components"]["schemas"];
    for name in [
        "CreateAgent",
        "PutSecretBody",
        "GrantBody",
        "LeaseRequest",
        "MintToken",
    ] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    for variant in schemas["Subject"]["oneOf"].as_array().unwrap() {
        assert_eq!(variant["additionalProperties"], false, "{variant}");
    }
    assert!(
        !doc.to_string().contains(":null"),
        "a null slipped into the document"
    );
    // Constraints.
    let name = &schemas["CreateAgent"]["properties"]["name"];
    assert_eq!(name["maxLength"], 64);
    assert_eq!(
        schemas["CreateAgent"]["properties"]["trust_tier"]["maximum"],
        5
    );
    let sensitivity = schemas["PutSecretBody"]["properties"]["sensitivity"]["enum"].to_string();
    assert!(sensitivity.contains("critical"), "{sensitivity}");
    let path_param = doc["paths"]["/v1/secrets/{path}"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "path")
        .unwrap();
    assert!(path_param["schema"]["pattern"].is_string());
    // Links: the agent created feeds the routes that take its id.
    let link = &doc["paths"]["/v1/agents"]["post"]["responses"]["201"]["links"]["GetAgent"];
    assert_eq!(link["parameters"]["id"], "$response.body#/agent/id");
    let target = link["operationId"].as_str().unwrap();
    assert_eq!(
        doc["paths"]["/v1/agents/{id}"]["get"]["operationId"],
        target
    );
    // The server refuses what the document says it refuses: an unknown field in a subject.
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/grants",
            Some(&d.admin.clone()),
            Some(
                json!({"subject": {"kind": "namespace", "value": "entities", "extra": 1},
                "pattern": "production/**", "actions": ["read"]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    d.stop().await;
}
