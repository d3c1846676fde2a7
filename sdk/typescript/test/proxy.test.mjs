// callService against a loopback upstream started by the test (the service sets
// allow_private, which a loopback upstream needs).

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";

import { ApiError, Latchkey, LeaseDenied, LeaseExpired } from "../dist/index.js";
import { eventually, startDaemon } from "./helpers.mjs";

const CREDENTIAL = "upstream-cred-6c1e0f9b2a77";

let d;
let agent;
let approver;
let upstream;
let upstreamUrl;
const seen = [];

before(async () => {
  upstream = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method, path: url.pathname, auth: req.headers.authorization ?? null, body });
      res.setHeader("content-type", "application/json");
      // Echo the credential back: the daemon must redact it.
      res.end(
        JSON.stringify({
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          body: body ? JSON.parse(body) : null,
          echoed: req.headers.authorization ?? null,
        }),
      );
    });
  });
  await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
  upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;

  d = await startDaemon();
  // Set-up through the SDK's admin calls.
  const admin = new Latchkey({ addr: d.addr, token: d.adminToken });
  await admin.putSecret("svc/up-token", CREDENTIAL, { type: "token" });
  await admin.putSecret("svc/guarded", CREDENTIAL, { type: "token", sensitivity: "sensitive" });
  const endpoints = {
    echo: { method: "GET", path: "/echo" },
    get_item: { method: "GET", path: "/items/{id}" },
    create: { method: "POST", path: "/items" },
  };
  const inject = { kind: "header", name: "authorization", template: "Bearer {secret}" };
  const up = await admin.admin.addService({
    service: { name: "up", base_url: upstreamUrl, secret: "svc/up-token", allow_private: true, inject, endpoints },
  });
  assert.equal(up.name, "up");
  await admin.admin.addService({
    service: { name: "guarded", base_url: upstreamUrl, secret: "svc/guarded", allow_private: true, inject, endpoints },
  });
  await admin.admin.addService({ template: "github", name: "gone", secret: "svc/up-token" });
  await admin.admin.deleteService("gone");
  const grant = await admin.admin.createGrant("svc/**", ["proxy"]);
  assert.deepEqual(grant.actions, ["proxy"]);
  const a = await admin.admin.createAgent("ts-proxy", { trustTier: 2, description: "proxy tests" });
  assert.match(a.apiKey, /^lk_agent_/);
  for (const shown of [String(a), JSON.stringify(a), inspect(a)]) assert.ok(!shown.includes(a.apiKey), shown);
  agent = new Latchkey({ addr: d.addr, token: a.apiKey });
  approver = new Latchkey({ addr: d.addr, token: await admin.admin.approverToken("alice") });
});

after(async () => {
  await d?.stop();
  await new Promise((r) => upstream?.close(r));
});

describe("callService", () => {
  test("listServices shows the services, never the credential", async () => {
    const services = await agent.listServices();
    const up = services.find((s) => s.name === "up");
    assert.ok(up, JSON.stringify(services));
    assert.equal(up.secret, "svc/up-token");
    assert.deepEqual(Object.keys(up.endpoints).sort(), ["create", "echo", "get_item"]);
    assert.ok(!JSON.stringify(services).includes(CREDENTIAL));
    assert.ok(!services.some((s) => s.name === "gone"));
  });

  test("without a lease or path: a one-use lease on the service's own secret", async () => {
    const res = await agent.callService("up", "echo", { reason: "default path", params: { x: "1" } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.query, { x: "1" });
    assert.ok(!JSON.stringify(res).includes(CREDENTIAL));
  });

  test("withProxyLease holds one lease for several calls and revokes it", async () => {
    let id;
    await agent.withProxyLease("/svc/up-token", { uses: 5, reason: "batch" }, async (lease) => {
      id = lease.id;
      for (const n of ["1", "2", "3"]) {
        const r = await agent.callService("up", "get_item", { lease, params: { id: n } });
        assert.equal(r.body.path, `/items/${n}`);
      }
    });
    const after = await agent.getLease(id);
    assert.equal(after.state, "revoked");
    assert.equal(after.usesLeft, 2);
  });

  test("with a path: a one-use proxy lease is requested, used and the answer is redacted", async () => {
    const before = seen.length;
    const res = await agent.callService("up", "get_item", {
      path: "/svc/up-token",
      reason: "fetch item",
      params: { id: "a b", q: "1" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.path, "/items/a%20b");
    assert.deepEqual(res.body.query, { q: "1" });
    assert.equal(typeof res.latencyMs, "number");
    assert.equal(res.truncated, false);
    // The upstream got the credential; the agent never sees it.
    assert.equal(seen[before].auth, `Bearer ${CREDENTIAL}`);
    assert.ok(!JSON.stringify(res).includes(CREDENTIAL), JSON.stringify(res));
    assert.match(String(res.body.echoed), /\[redacted\]/);
    const leases = await agent.listLeases({ limit: 5 });
    assert.equal(leases[0].action, "proxy");
    assert.ok(leases[0].final, leases[0].state);
  });

  test("with a lease: several calls, JSON body for POST", async () => {
    const lease = await agent.requestLease("/svc/up-token", { action: "proxy", uses: 2, reason: "two calls" });
    assert.equal(lease.state, "active");
    const r1 = await agent.callService("up", "create", { lease, json: { name: "widget" } });
    assert.equal(r1.status, 200);
    assert.deepEqual(r1.body.body, { name: "widget" });
    const r2 = await agent.callService("up", "echo", { lease: lease.id });
    assert.equal(r2.status, 200);
    assert.ok(!JSON.stringify([r1, r2]).includes(CREDENTIAL));
    const spent = await agent.callService("up", "echo", { lease }).catch((e) => e);
    assert.ok(spent instanceof LeaseExpired, String(spent));
    assert.equal(spent.state, "exhausted");
    // A read lease does not give the value of a proxy-only grant.
    const read = await agent.getSecret("/svc/up-token").catch((e) => e);
    assert.ok(read instanceof ApiError && read.status === 403, String(read));
  });

  test("a sensitive service waits for approval; a denial raises LeaseDenied", async () => {
    const call = agent.callService("guarded", "echo", { path: "/svc/guarded", reason: "approve me", waitSeconds: 30 }).catch((e) => e);
    const approval = await eventually(
      async () => (await approver.approvals.list()).find((a) => a.path === "svc/guarded" && a.action === "proxy"),
      { what: "the proxy approval" },
    );
    await approver.approvals.approve(approval);
    const res = await call;
    assert.ok(!(res instanceof Error), String(res));
    assert.equal(res.status, 200);
    assert.ok(!JSON.stringify(res).includes(CREDENTIAL));

    const denied = agent.callService("guarded", "echo", { path: "/svc/guarded", reason: "again", waitSeconds: 30 }).catch((e) => e);
    const second = await eventually(
      async () => (await approver.approvals.list()).find((a) => a.path === "svc/guarded" && a.reason === "again"),
      { what: "the second proxy approval" },
    );
    await approver.approvals.deny(second.id, "no more");
    const err = await denied;
    assert.ok(err instanceof LeaseDenied, String(err));
    assert.equal(err.decidedBy, "alice");
  });

  test("argument errors are caught before any request", async () => {
    await assert.rejects(agent.callService("nope", "echo", {}), /no proxy service named nope/);
    await assert.rejects(agent.callService("up", "echo", { lease: "x", path: "/svc/up-token" }), TypeError);
    await assert.rejects(agent.callService("up", "echo", { lease: "x", params: {}, json: {} }), TypeError);
  });
});
