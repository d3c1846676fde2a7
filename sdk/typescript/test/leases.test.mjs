// Reads, approvals, denials, wait bounds and withLease against a real daemon.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";

import { Latchkey, LeaseDenied, LeaseExpired, Secret, WaitTimeout } from "../dist/index.js";
import { eventually, startDaemon } from "./helpers.mjs";

const VALUE = "sk-ts-sdk-7f3a9c2e1b";
const SENSITIVE = "sk-ts-sensitive-55d0e2a8";

let d;
let agent; // Latchkey as a tier-2 agent
let approver; // Latchkey as alice

before(async () => {
  d = await startDaemon();
  const a = await d.createAgent("ts-leases", 2);
  agent = new Latchkey({ addr: d.addr, token: a.key });
  approver = new Latchkey({ addr: d.addr, token: await d.approverToken() });
  await agent.putSecret("app/standard", VALUE);
  await agent.putSecret("app/sensitive", SENSITIVE, { sensitivity: "sensitive" });
});

after(async () => {
  await d?.stop();
});

/** The pending approval of `leaseId`, as alice sees it (bounded poll). */
function pendingApproval(leaseId) {
  return eventually(
    async () => (await approver.approvals.list({ state: "pending" })).find((a) => a.leaseId === leaseId),
    { what: `the approval of lease ${leaseId}` },
  );
}

/** The first pending approval for a path ending in `suffix` (bounded poll). */
function pendingFor(suffix) {
  return eventually(
    async () => (await approver.approvals.list({ state: "pending" })).find((a) => a.path.endsWith(suffix)),
    { what: `an approval for ${suffix}` },
  );
}

describe("getSecret", () => {
  test("a standard secret is read at once", async () => {
    const s = await agent.getSecret("app/standard", { reason: "instant" });
    assert.ok(s instanceof Secret);
    assert.equal(s.value, VALUE);
    assert.equal(s.path, "app/standard");
    assert.equal(s.lease.action, "read");
    assert.match(s.leaseId, /^[0-9a-z]{26}$/);
  });

  test("a sensitive secret waits for the approver, then yields its value", async () => {
    const read = agent.getSecret("app/sensitive", { reason: "nightly eval", waitSeconds: 30 }).catch((e) => e);
    const approval = await pendingFor("app/sensitive");
    assert.equal(approval.reason, "nightly eval");
    assert.equal(approval.sensitivity, "sensitive");
    assert.equal(approval.state, "pending");
    const vote = await approver.approvals.approve(approval.id, "fine");
    assert.equal(vote.result, "decided");
    assert.equal(vote.lease.state, "active");
    const s = await read;
    assert.ok(!(s instanceof Error), String(s));
    assert.equal(s.value, SENSITIVE);
    assert.equal(s.lease.approvalId, approval.id);
  });

  test("a denial raises LeaseDenied with who decided (and the reason when the daemon tells it)", async () => {
    // The outcome is taken at once, so the rejection is never unhandled while we vote.
    const read = agent.getSecret("app/sensitive", { reason: "please", waitSeconds: 30 }).then(
      () => assert.fail("expected LeaseDenied"),
      (e) => e,
    );
    const approval = await pendingFor("app/sensitive");
    await approver.approvals.deny(approval.id, "not today");
    const err = await read;
    assert.ok(err instanceof LeaseDenied, String(err));
    assert.equal(err.approvalId, approval.id);
    assert.equal(err.leaseId, approval.leaseId);
    assert.equal(err.decidedBy, "alice");
    assert.equal(err.reason, "not today");
    assert.ok(!err.message.includes(SENSITIVE));
    assert.equal(err.lease.state, "denied");
  });

  test("the wait bound raises WaitTimeout with the ids; the lease stays pending and can be waited on again", async () => {
    const t0 = Date.now();
    const err = await agent.getSecret("app/sensitive", { reason: "slow", waitSeconds: 1 }).then(
      () => assert.fail("expected WaitTimeout"),
      (e) => e,
    );
    const took = Date.now() - t0;
    assert.ok(err instanceof WaitTimeout, String(err));
    assert.ok(took >= 900 && took < 10_000, `took ${took} ms`);
    assert.match(err.leaseId, /^[0-9a-z]{26}$/);
    assert.match(err.approvalId, /^[0-9a-z]{26}$/);
    assert.equal(err.lease.state, "pending");
    assert.ok(!err.message.includes(SENSITIVE));

    const approval = await pendingApproval(err.leaseId);
    assert.equal(approval.id, err.approvalId);
    const resumed = agent.wait(err.leaseId, { timeoutSeconds: 30 }).catch((e) => e);
    await approver.approvals.approve(approval.id);
    const lease = await resumed;
    assert.ok(!(lease instanceof Error), String(lease));
    assert.equal(lease.state, "active");
    assert.equal((await agent.leaseSecret(lease)).value, SENSITIVE);
  });
});

describe("leases", () => {
  test("requestLease / wait / leaseSecret with several uses", async () => {
    const lease = await agent.requestLease("app/standard", { uses: 2, ttlSeconds: 60, reason: "two reads", sessionId: "s-1", taskId: "t-1" });
    assert.equal(lease.state, "active");
    assert.equal(lease.uses, 2);
    assert.equal(lease.sessionId, "s-1");
    assert.equal(lease.taskId, "t-1");
    assert.equal((await agent.wait(lease)).id, lease.id);
    assert.equal((await agent.leaseSecret(lease)).value, VALUE);
    const second = await agent.leaseSecret(lease.id);
    assert.equal(second.value, VALUE);
    assert.equal(second.lease.state, "exhausted");
    const err = await agent.leaseSecret(lease).catch((e) => e);
    assert.ok(err instanceof LeaseExpired, String(err));
    assert.equal(err.state, "exhausted");
    assert.equal(err.leaseId, lease.id);
  });

  test("withLease revokes the lease after the callback", async () => {
    let seen;
    const out = await agent.withLease("app/standard", { uses: 3, reason: "scoped use" }, async (secret, lease) => {
      assert.equal(secret.value, VALUE);
      seen = lease;
      assert.equal(lease.state, "active");
      return "done";
    });
    assert.equal(out, "done");
    assert.equal((await agent.getLease(seen.id)).state, "revoked");
  });

  test("withLease revokes when the callback throws", async () => {
    let id;
    await assert.rejects(
      agent.withLease("app/standard", { uses: 2 }, async (_s, lease) => {
        id = lease.id;
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal((await agent.getLease(id)).state, "revoked");
  });

  test("withLease waits for an approval, and a timed-out wait cancels the pending lease", async () => {
    const run = agent.withLease("app/sensitive", { reason: "with approval", waitSeconds: 30 }, (s) => s.value).catch((e) => e);
    const approval = await pendingFor("app/sensitive");
    await approver.approvals.approve(approval.id);
    assert.equal(await run, SENSITIVE);
    // Its one use is spent: the lease is over already (revoking it is a no-op).
    assert.equal((await agent.getLease(approval.leaseId)).state, "exhausted");

    const err = await agent.withLease("app/sensitive", { waitSeconds: 1 }, () => assert.fail("no value")).catch((e) => e);
    assert.ok(err instanceof WaitTimeout, String(err));
    assert.equal((await agent.getLease(err.leaseId)).state, "revoked");
    const a = await approver.approvals.get(err.approvalId);
    assert.equal(a.state, "cancelled");
  });
});

describe("masking", () => {
  test("String, template literals, JSON.stringify and util.inspect never show the value", async () => {
    const s = await agent.getSecret("app/standard");
    for (const shown of [String(s), `${s}`, s.toString(), JSON.stringify(s), inspect(s), inspect({ nested: [s] }, { depth: 5 }), JSON.stringify({ s })]) {
      assert.ok(!shown.includes(VALUE), shown);
      assert.ok(shown.includes("[REDACTED]"), shown);
    }
    assert.equal(Object.keys(s).includes("value"), false);
    assert.equal(s.value, VALUE);
  });

  test("the client does not show its token", () => {
    const token = d.adminToken;
    const c = new Latchkey({ addr: d.addr, token });
    for (const shown of [String(c), JSON.stringify(c), inspect(c)]) assert.ok(!shown.includes(token), shown);
  });
});

describe("the daemon's logs", () => {
  test("hold none of the values read", () => {
    const logs = d.logs();
    assert.ok(!logs.includes(VALUE));
    assert.ok(!logs.includes(SENSITIVE));
  });
});
