// Every daemon route the SDK calls, with the body fields and query parameters it may send.
// The client sends requests only through this table (and refuses a field not listed here),
// and test/contract.test.mjs checks the table against the daemon's GET /openapi.json: each
// (method, path) exists, each body field is a property of its request schema, each query
// parameter is a parameter of the operation.

export interface EndpointSpec {
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** The OpenAPI path template, e.g. `/v1/leases/{id}`. */
  readonly path: string;
  /** JSON body fields; present when the route takes a JSON body (sent even when empty). */
  readonly body?: readonly string[];
  /** Query parameters. */
  readonly query?: readonly string[];
}

export const ENDPOINTS = {
  "secrets.put": {
    method: "PUT",
    path: "/v1/secrets/{path}",
    body: [
      "value",
      "entries",
      "type",
      "sensitivity",
      "metadata",
      "expires_at",
      "max_access_count",
      "if_version",
    ],
  },
  "secrets.describe": { method: "GET", path: "/v1/secrets/{path}", query: ["include_deleted"] },
  "secrets.list": {
    method: "GET",
    path: "/v1/secrets",
    query: ["prefix", "after", "limit", "include_deleted"],
  },
  "secrets.versions": { method: "GET", path: "/v1/secrets/{path}/versions" },
  "secrets.delete": { method: "DELETE", path: "/v1/secrets/{path}" },
  "secrets.restore": { method: "POST", path: "/v1/secrets/{path}/restore" },
  "secrets.rollback": {
    method: "POST",
    path: "/v1/secrets/{path}/rollback",
    body: ["version", "if_version"],
  },
  "secrets.read": { method: "POST", path: "/v1/secrets/{path}/read", body: ["reason", "keys"] },
  "leases.create": {
    method: "POST",
    path: "/v1/leases",
    body: ["path", "action", "ttl_seconds", "uses", "keys", "reason", "session_id", "task_id"],
  },
  "leases.show": { method: "GET", path: "/v1/leases/{id}", query: ["wait", "seen"] },
  "leases.list": { method: "GET", path: "/v1/leases", query: ["state", "limit", "before"] },
  "leases.secret": { method: "POST", path: "/v1/leases/{id}/secret" },
  "leases.revoke": { method: "DELETE", path: "/v1/leases/{id}", query: ["reason"] },
  "tokens.mint": {
    method: "POST",
    path: "/v1/tokens",
    body: ["scopes", "ttl_seconds", "description", "session_id", "task_id", "agent_id"],
  },
  "tokens.revoke": { method: "DELETE", path: "/v1/tokens/{id}" },
  "proxy.call": {
    method: "POST",
    path: "/v1/proxy/{service}/{endpoint}",
    body: ["lease_id", "params"],
  },
  "services.list": { method: "GET", path: "/v1/services" },
  "approvals.list": { method: "GET", path: "/v1/approvals", query: ["state", "limit", "before"] },
  "approvals.get": { method: "GET", path: "/v1/approvals/{id}" },
  "approvals.vote": {
    method: "POST",
    path: "/v1/approvals/{id}/votes",
    body: ["decision", "reason"],
  },
  whoami: { method: "GET", path: "/v1/whoami" },
  status: { method: "GET", path: "/v1/status" },
  // Admin set-up (client.admin).
  "agents.create": { method: "POST", path: "/v1/agents", body: ["name", "trust_tier", "description"] },
  "grants.create": {
    method: "POST",
    path: "/v1/grants",
    body: ["subject", "pattern", "actions", "limits", "expires_at"],
  },
  "approvers.token": { method: "POST", path: "/v1/approvers/{name}/tokens" },
  "services.create": {
    method: "POST",
    path: "/v1/services",
    body: ["service", "template", "name", "secret", "base_url", "allow_private", "allowed_agents"],
  },
  "services.delete": { method: "DELETE", path: "/v1/services/{name}" },
} as const satisfies Record<string, EndpointSpec>;

export type EndpointName = keyof typeof ENDPOINTS;
