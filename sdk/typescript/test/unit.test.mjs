// Behaviour that a healthy daemon does not show on demand, with an injected fetch: the wait
// loop riding out 408/503 (and honouring Retry-After), its bounds, defaults from the
// environment, error parsing and the contract guard.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ApiError,
  Latchkey,
  LatchkeyError,
  Lease,
  LeaseDenied,
  LeaseError,
  LeaseExpired,
  LeaseRevoked,
  ConnectionFailed,
  WaitTimeout,
} from "../dist/index.js";

function lease(state, extra = {}) {
  return {
    id: "01lease00000000000000000000",
    state,
    path: "entities/a/x",
    action: "read",
    approval_id: "01appr000000000000000000000",
    approval: { id: "01appr000000000000000000000", state: state === "pending" ? "pending" : state, votes: 0, votes_needed: 1, deadline: "2030-01-01T00:00:00Z", decided_by: state === "denied" ? "alice" : null },
    ...extra,
  };
}

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

/** A fetch that answers from a script and records each call. */
function scripted(answers) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, init });
    const next = answers.shift();
    if (!next) throw new Error(`unexpected call ${init.method} ${url}`);
    return typeof next === "function" ? next(url, init) : next;
  };
  return { f, calls };
}

test("wait rides out 408 request_timeout and 503 shutting_down, honouring Retry-After", async () => {
  const { f, calls } = scripted([
    json(408, { error: { code: "request_timeout", message: "request timed out" } }),
    json(503, { error: { code: "shutting_down", message: "shutting down" } }, { "retry-after": "1" }),
    json(200, lease("pending")),
    json(200, lease("active")),
  ]);
  const c = new Latchkey({ addr: "http://127.0.0.1:9", token: "lk_agent_x", fetch: f });
  const t0 = Date.now();
  const l = await c.wait(new Lease(lease("pending")), { timeoutSeconds: 20 });
  const took = Date.now() - t0;
  assert.equal(l.state, "active");
  assert.equal(calls.length, 4);
  assert.ok(took >= 1000, `Retry-After honoured (${took} ms)`);
  for (const { url, init } of calls) {
    assert.equal(init.method, "GET");
    assert.match(url, /^http:\/\/127\.0\.0\.1:9\/v1\/leases\/01lease0+\?wait=\d+&seen=pending$/);
    assert.equal(init.headers.authorization, "Bearer lk_agent_x");
  }
  const waits = calls.map((c) => Number(new URL(c.url).searchParams.get("wait")));
  assert.ok(waits.every((w) => w >= 1 && w <= 20), String(waits));
});

test("wait gives up after maxRetries consecutive failures", async () => {
  const answers = Array.from({ length: 10 }, () =>
    json(503, { error: { code: "shutting_down", message: "shutting down" } }, { "retry-after": "0" }),
  );
  const { f, calls } = scripted(answers);
  const c = new Latchkey({ addr: "http://127.0.0.1:9", token: "t", fetch: f, maxRetries: 3 });
  const err = await c.wait(new Lease(lease("pending")), { timeoutSeconds: 30 }).catch((e) => e);
  assert.ok(err instanceof ApiError, String(err));
  assert.equal(err.code, "shutting_down");
  assert.equal(err.retryAfter, 0);
  assert.equal(calls.length, 4);
});

test("wait does not retry other errors", async () => {
  const { f, calls } = scripted([json(404, { error: { code: "not_found", message: "no such lease" } })]);
  const c = new Latchkey({ addr: "http://127.0.0.1:9", token: "t", fetch: f });
  const err = await c.wait("01lease00000000000000000000").catch((e) => e);
  assert.ok(err instanceof ApiError && err.status === 404 && err.code === "not_found", String(err));
  assert.equal(calls.length, 1);
  assert.doesNotMatch(calls[0].url, /wait=/, "an id alone is looked up first, without waiting");
});

test("wait ends on each final state with its error", async () => {
  const c = new Latchkey({ addr: "http://x", token: "t", fetch: async () => assert.fail("no request") });
  await assert.rejects(c.wait(new Lease(lease("denied"))), LeaseDenied);
  for (const [s, cls] of [["expired", LeaseExpired], ["exhausted", LeaseExpired], ["revoked", LeaseRevoked]]) {
    const e = await c.wait(new Lease(lease(s))).catch((x) => x);
    assert.ok(e instanceof cls, String(e));
    assert.ok(e instanceof LeaseError, String(e));
    assert.equal(e.state, s);
    assert.equal(e.leaseId, "01lease00000000000000000000");
  }
  assert.equal((await c.wait(new Lease(lease("active")))).state, "active");
});

test("a WaitTimeout carries the lease and approval ids", async () => {
  const { f } = scripted([async (url) => {
    await new Promise((r) => setTimeout(r, 1100));
    return json(200, lease("pending"));
  }]);
  const c = new Latchkey({ addr: "http://x", token: "t", fetch: f });
  const e = await c.wait(new Lease(lease("pending")), { timeoutSeconds: 1 }).catch((x) => x);
  assert.ok(e instanceof WaitTimeout, String(e));
  assert.equal(e.leaseId, "01lease00000000000000000000");
  assert.equal(e.approvalId, "01appr000000000000000000000");
  assert.ok(e instanceof LatchkeyError);
});

test("LeaseDenied takes the approver's reason when the lease view carries one", () => {
  const withReason = new Lease(lease("denied", { approval: { id: "a", state: "denied", votes: 0, votes_needed: 1, decided_by: "bob", reason: "too broad" } }));
  const e = new LeaseDenied(withReason);
  assert.equal(e.reason, "too broad");
  assert.equal(e.decidedBy, "bob");
  assert.match(e.message, /denied by bob: too broad/);
  const viaVotes = new Lease(lease("denied", { approval: { id: "a", state: "denied", decided_by: "bob", votes: [{ approver: "bob", decision: "deny", reason: "later" }] } }));
  assert.equal(new LeaseDenied(viaVotes).reason, "later");
  assert.equal(new LeaseDenied(new Lease(lease("denied"))).reason, null);
});

test("defaults come from LATCHKEY_ADDR and LATCHKEY_TOKEN", async () => {
  const saved = { a: process.env.LATCHKEY_ADDR, t: process.env.LATCHKEY_TOKEN };
  try {
    process.env.LATCHKEY_ADDR = "http://127.0.0.1:4321/";
    process.env.LATCHKEY_TOKEN = "lk_agent_from_env";
    const { f, calls } = scripted([json(200, { kind: "agent" })]);
    const c = new Latchkey({ fetch: f });
    assert.equal(c.addr, "http://127.0.0.1:4321");
    assert.deepEqual(await c.whoami(), { kind: "agent" });
    assert.equal(calls[0].url, "http://127.0.0.1:4321/v1/whoami");
    assert.equal(calls[0].init.headers.authorization, "Bearer lk_agent_from_env");
    delete process.env.LATCHKEY_TOKEN;
    assert.throws(() => new Latchkey({ fetch: f }), LatchkeyError);
  } finally {
    for (const [k, v] of [["LATCHKEY_ADDR", saved.a], ["LATCHKEY_TOKEN", saved.t]]) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test("ApiError from the error body, and from a non-JSON answer", async () => {
  const { f } = scripted([
    json(403, { error: { code: "access_denied", message: "not allowed" } }),
    new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }),
  ]);
  const c = new Latchkey({ addr: "http://x", token: "t", fetch: f });
  const a = await c.describeSecret("x").catch((e) => e);
  assert.ok(a instanceof ApiError);
  assert.deepEqual([a.status, a.code, a.detail, a.message], [403, "access_denied", "not allowed", "403 access_denied: not allowed"]);
  const b = await c.describeSecret("x").catch((e) => e);
  assert.deepEqual([b.status, b.code], [502, "http_502"]);
  assert.ok(!b.message.includes("html"));
});

test("requests: paths, bodies and the secret-path encoding", async () => {
  const { f, calls } = scripted([
    json(200, { value: "v", lease: lease("exhausted") }),
    json(201, lease("active")),
    json(201, { path: "p" }),
  ]);
  const c = new Latchkey({ addr: "http://x", token: "t", fetch: f });
  await c.getSecret("/production/openai/api-key", { reason: "r" });
  await c.requestLease("a/b", { action: "proxy", ttlSeconds: 30, uses: 2, sessionId: "s" });
  await c.putSecret("a/b c", "v", { sensitivity: "sensitive" });
  assert.equal(calls[0].url, "http://x/v1/secrets//production/openai/api-key/read");
  assert.deepEqual(JSON.parse(calls[0].init.body), { reason: "r" });
  assert.deepEqual(JSON.parse(calls[1].init.body), { path: "a/b", action: "proxy", ttl_seconds: 30, uses: 2, session_id: "s" });
  assert.equal(calls[2].url, "http://x/v1/secrets/a/b%20c");
  assert.equal(calls[2].init.method, "PUT");
});

test("an unreachable daemon is ConnectionFailed", async () => {
  const c = new Latchkey({ addr: "http://127.0.0.1:1", token: "t", timeoutSeconds: 5 });
  const e = await c.whoami().catch((x) => x);
  assert.ok(e instanceof ConnectionFailed, String(e));
  assert.ok(e instanceof LatchkeyError);
});

test("an abort signal stops a wait", async () => {
  const f = (url, init) =>
    new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(init.signal.reason), { once: true }));
  const c = new Latchkey({ addr: "http://x", token: "t", fetch: f });
  const ctl = new AbortController();
  setTimeout(() => ctl.abort(new Error("stop")), 100);
  await assert.rejects(c.wait(new Lease(lease("pending")), { timeoutSeconds: 30, signal: ctl.signal }), /stop/);
});

test("a 410 on a lease use is LeaseExpired with the daemon's code; using a pending lease is a LeaseError", async () => {
  const { f } = scripted([
    json(410, { error: { code: "expired", message: "the lease has expired" } }),
    json(409, { error: { code: "lease_not_active", message: "the lease is not active" } }),
    json(200, lease("pending")),
  ]);
  const c = new Latchkey({ addr: "http://x", token: "t", fetch: f });
  const e = await c.leaseSecret("01lease00000000000000000000").catch((x) => x);
  assert.ok(e instanceof LeaseExpired, String(e));
  assert.equal(e.code, "expired");
  assert.equal(e.leaseId, "01lease00000000000000000000");
  const p = await c.leaseSecret("01lease00000000000000000000").catch((x) => x);
  assert.ok(p instanceof LeaseError && !(p instanceof LeaseExpired), String(p));
  assert.match(p.message, /still pending/);
});

test("callService without a lease or path uses the service's secret", async () => {
  const { f, calls } = scripted([
    json(200, [{ name: "gh", base_url: "https://api.github.com", secret: "production/github/token", endpoints: {} }]),
    json(201, lease("active", { action: "proxy" })),
    json(200, { status: 200, headers: {}, body: { ok: true }, truncated: false, latency_ms: 3 }),
    json(409, { error: { code: "conflict", message: "the lease is over" } }),
  ]);
  const c = new Latchkey({ addr: "http://x", token: "t", fetch: f });
  const r = await c.callService("gh", "get_repo", { params: { owner: "o", repo: "r" }, reason: "why" });
  assert.deepEqual([r.status, r.body, r.latencyMs], [200, { ok: true }, 3]);
  assert.deepEqual(JSON.parse(calls[1].init.body), { path: "/production/github/token", action: "proxy", uses: 1, reason: "why" });
  assert.equal(calls[2].url, "http://x/v1/proxy/gh/get_repo");
  assert.deepEqual(JSON.parse(calls[2].init.body), { lease_id: "01lease00000000000000000000", params: { owner: "o", repo: "r" } });
  assert.equal(calls[3].init.method, "DELETE");
});
