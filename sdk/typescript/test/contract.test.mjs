// The SDK's contract table (src/contract.ts) against the daemon's own OpenAPI document:
// every route the SDK calls exists with that method, every body field it may send is a
// property of the route's request schema, every query parameter is a parameter of the
// operation, and the path parameters agree.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ENDPOINTS } from "../dist/index.js";
import { startDaemon } from "./helpers.mjs";

let d;
let doc;

before(async () => {
  d = await startDaemon();
  const res = await fetch(`${d.addr}/openapi.json`, { signal: AbortSignal.timeout(15_000) });
  assert.equal(res.status, 200);
  doc = await res.json();
});

after(async () => {
  await d?.stop();
});

function deref(node, seen = new Set()) {
  if (node && typeof node === "object" && typeof node.$ref === "string") {
    if (seen.has(node.$ref)) return {};
    seen.add(node.$ref);
    const target = node.$ref.replace(/^#\//, "").split("/").reduce((o, k) => o?.[k], doc);
    assert.ok(target, `unresolved ${node.$ref}`);
    return deref(target, seen);
  }
  return node;
}

/** Property names a schema accepts, through $ref, allOf, oneOf and anyOf. */
function properties(schema, seen = new Set()) {
  const s = deref(schema, seen);
  const out = new Set(Object.keys(s?.properties ?? {}));
  for (const k of ["allOf", "oneOf", "anyOf"]) {
    for (const sub of s?.[k] ?? []) for (const p of properties(sub, seen)) out.add(p);
  }
  return out;
}

test("the contract table is not empty and names each route once", () => {
  const entries = Object.entries(ENDPOINTS);
  assert.ok(entries.length >= 20, String(entries.length));
  const keys = entries.map(([, e]) => `${e.method} ${e.path}`);
  assert.equal(new Set(keys).size, keys.length, "a route listed twice");
});

function check(name, spec) {
  const item = doc.paths[spec.path];
  assert.ok(item, `${spec.path} is not in /openapi.json`);
  const op = item[spec.method.toLowerCase()];
  assert.ok(op, `${spec.method} ${spec.path} is not in /openapi.json`);

  const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p) => deref(p));
  const pathParams = params.filter((p) => p.in === "path").map((p) => p.name).sort();
  const templated = [...spec.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  assert.deepEqual(pathParams, templated, "path parameters");

  const queryParams = new Set(params.filter((p) => p.in === "query").map((p) => p.name));
  for (const q of spec.query ?? []) assert.ok(queryParams.has(q), `query parameter ${q} is not a parameter of ${name}`);

  const rb = op.requestBody ? deref(op.requestBody) : null;
  if (spec.body) {
    assert.ok(rb, `${name} sends a JSON body but the route takes none`);
    const schema = rb.content?.["application/json"]?.schema;
    assert.ok(schema, `${name}: no application/json request schema`);
    const props = properties(schema);
    for (const f of spec.body) assert.ok(props.has(f), `body field ${f} is not a property of ${name}'s request schema (${[...props].join(", ")})`);
    const required = deref(schema).required ?? [];
    for (const r of required) assert.ok(spec.body.includes(r), `${name}: required field ${r} is never sent`);
  } else {
    assert.ok(!rb?.required, `${name}: the route requires a body the SDK does not send`);
  }
}

for (const [name, spec] of Object.entries(ENDPOINTS)) {
  test(`contract: ${name} — ${spec.method} ${spec.path}`, () => check(name, spec));
}

test("the check itself catches a wrong route, method, body field or query parameter", () => {
  const bad = {
    "no such route": { method: "GET", path: "/v1/nope" },
    "wrong method": { method: "PATCH", path: "/v1/leases" },
    "unknown body field": { method: "POST", path: "/v1/leases", body: ["path", "bogus"] },
    "required field not sent": { method: "POST", path: "/v1/leases", body: ["reason"] },
    "unknown query parameter": { method: "GET", path: "/v1/leases/{id}", query: ["wait", "bogus"] },
    "body not sent": { method: "POST", path: "/v1/tokens" },
  };
  for (const [what, spec] of Object.entries(bad)) assert.throws(() => check(what, spec), assert.AssertionError, what);
});
