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
