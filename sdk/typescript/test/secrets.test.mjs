// Secret management, env bundles and scoped tokens against a real daemon.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";

import { ApiError, Latchkey, ScopedToken } from "../dist/index.js";
import { startDaemon } from "./helpers.mjs";

let d;
let agent;
let agentInfo;

before(async () => {
  d = await startDaemon();
  agentInfo = await d.createAgent("ts-secrets", 2);
  agent = new Latchkey({ addr: d.addr, token: agentInfo.key });
});

after(async () => {
  await d?.stop();
});

describe("secrets", () => {
  test("put / describe / list / rotate / versions / delete / restore", async () => {
    const created = await agent.putSecret("db/password", "pw-one-0b1c", {
      type: "password",
      metadata: { owner: "team-a" },
    });
    assert.equal(created.path, "db/password");
    assert.equal(created.fullPath, `${agentInfo.namespace}/db/password`);
    assert.equal(created.type, "password");
    assert.equal(created.currentVersion, 1);
    assert.deepEqual(created.metadata, { owner: "team-a" });
    assert.ok(!JSON.stringify(created).includes("pw-one-0b1c"));

    const rotated = await agent.rotateSecret("db/password", "pw-two-93ad", { ifVersion: 1 });
    assert.equal(rotated.currentVersion, 2);
    assert.equal(rotated.type, "password", "rotate keeps the type");
    assert.deepEqual(rotated.metadata, { owner: "team-a" }, "rotate keeps the metadata");
    assert.equal((await agent.getSecret("db/password")).value, "pw-two-93ad");

    const conflict = await agent.rotateSecret("db/password", "pw-three", { ifVersion: 1 }).catch((e) => e);
    assert.ok(conflict instanceof ApiError, String(conflict));
    assert.equal(conflict.status, 409);
    assert.equal(conflict.code, "version_conflict");
    assert.ok(!conflict.message.includes("pw-three"));

    await agent.putSecret("db/user", "app", { type: "generic" });
    const info = await agent.describeSecret("db/password");
    assert.equal(info.currentVersion, 2);
    assert.equal(info.latestVersion, 2);
    assert.equal(info.deleted, false);

    const versions = await agent.secretVersions("db/password");
    assert.equal(versions.length, 2);
    assert.ok(!JSON.stringify(versions).includes("pw-"));

    const page = await agent.listSecrets({ prefix: "db/" });
    assert.deepEqual(page.secrets.map((s) => s.path).sort(), ["db/password", "db/user"]);
    const all = [];
    for await (const s of agent.iterSecrets({ prefix: "db/", limit: 1 })) all.push(s.path);
    assert.deepEqual(all.sort(), ["db/password", "db/user"]);

    const deleted = await agent.deleteSecret("db/user");
    assert.equal(deleted.deleted, true);
    const gone = await agent.describeSecret("db/user").catch((e) => e);
    assert.ok(gone instanceof ApiError, String(gone));
    assert.equal(gone.status, 404);
    assert.equal((await agent.describeSecret("db/user", { includeDeleted: true })).deleted, true);
    assert.deepEqual((await agent.listSecrets({ prefix: "db/" })).secrets.map((s) => s.path), ["db/password"]);
    assert.equal((await agent.listSecrets({ prefix: "db/", includeDeleted: true })).secrets.length, 2);

    const restored = await agent.restoreSecret("db/user");
    assert.equal(restored.deleted, false);
    assert.equal((await agent.getSecret("db/user")).value, "app");

    const back = await agent.rollbackSecret("db/password", 1);
    assert.equal(back.currentVersion, 3);
    assert.equal((await agent.getSecret("db/password")).value, "pw-one-0b1c");
  });

  test("errors carry the daemon's code and never the value", async () => {
    const e = await agent.getSecret("nope/missing").catch((x) => x);
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, 404);
    assert.equal(e.code, "not_found");
    const bad = await agent.putSecret("bad//path", "v-bad-9999").catch((x) => x);
    assert.ok(bad instanceof ApiError, String(bad));
    assert.equal(bad.status, 400);
    assert.ok(!bad.message.includes("v-bad-9999"));
  });
});

describe("env bundles", () => {
  test("entries in, entries out, keys narrowed, masked", async () => {
    const info = await agent.putEnvBundle("env/app", { DB_URL: "postgres://x-31f", API_KEY: "ak-77e1", EMPTY: "" });
    assert.equal(info.type, "env_bundle");
    const s = await agent.getSecret("env/app");
    assert.ok(s.isBundle);
    assert.deepEqual({ ...s.entries }, { DB_URL: "postgres://x-31f", API_KEY: "ak-77e1", EMPTY: "" });
    assert.throws(() => s.value, TypeError);
    for (const shown of [String(s), JSON.stringify(s), inspect(s)]) {
      assert.ok(!shown.includes("ak-77e1") && !shown.includes("postgres://x-31f"), shown);
    }
    const one = await agent.getSecret("env/app", { keys: ["API_KEY"] });
    assert.deepEqual({ ...one.entries }, { API_KEY: "ak-77e1" });

    const lease = await agent.requestLease("env/app", { keys: ["DB_URL"] });
    assert.deepEqual(lease.keys, ["DB_URL"]);
    assert.deepEqual({ ...(await agent.leaseSecret(lease)).entries }, { DB_URL: "postgres://x-31f" });

    await agent.rotateSecret("env/app", { API_KEY: "ak-new-0c2" });
    assert.deepEqual({ ...(await agent.getSecret("env/app")).entries }, { API_KEY: "ak-new-0c2" });
    const plain = await agent.getSecret("db/password").catch(() => null);
    if (plain) assert.throws(() => plain.entries, TypeError);
  });
});

describe("scoped tokens", () => {
  test("requestToken mints a narrower token that works within its scope only", async () => {
    await agent.putSecret("pub/a", "pub-a-4411");
    await agent.putSecret("priv/b", "priv-b-9922");
    const t = await agent.requestToken({
      scopes: ["secrets:read:pub/*"],
      ttlSeconds: 120,
      description: "sub-agent",
      sessionId: "run-42",
    });
    assert.ok(t instanceof ScopedToken);
    assert.match(t.token, /^lk_tok_/);
    assert.deepEqual(t.scopes, ["secrets:read:pub/*"]);
    assert.equal(t.agentId, agentInfo.id);
    assert.equal(t.sessionId, "run-42");
    for (const shown of [String(t), JSON.stringify(t), inspect(t)]) assert.ok(!shown.includes(t.token), shown);

    const sub = agent.withToken(t);
    const who = await sub.whoami();
    assert.equal(who.kind, "token");
    assert.deepEqual(who.scopes, ["secrets:read:pub/*"]);

    assert.equal((await sub.getSecret("pub/a")).value, "pub-a-4411");
    const outside = await sub.getSecret("priv/b").catch((e) => e);
    assert.ok(outside instanceof ApiError, String(outside));
    assert.equal(outside.status, 403);
    const write = await sub.putSecret("pub/c", "nope-value").catch((e) => e);
    assert.ok(write instanceof ApiError && write.status === 403, String(write));
    const wider = await sub.requestToken({ scopes: ["secrets:read:priv/*"] }).catch((e) => e);
    assert.ok(wider instanceof ApiError, String(wider));
    assert.equal(wider.code, "scope_escalation");
    const longer = await sub.requestToken({ scopes: ["secrets:read:pub/*"], ttlSeconds: 100_000 }).catch((e) => e);
    assert.ok(longer instanceof ApiError && longer.status >= 400, String(longer));

    // A grandchild within scope works, and revoking the child ends both.
    const child = await sub.requestToken({ scopes: ["secrets:read:pub/a"], ttlSeconds: 60 });
    assert.equal((await agent.withToken(child).getSecret("pub/a")).value, "pub-a-4411");
    await agent.revokeToken(t);
    const revoked = await sub.getSecret("pub/a").catch((e) => e);
    assert.ok(revoked instanceof ApiError && revoked.status === 401, String(revoked));
    const revokedChild = await agent.withToken(child).getSecret("pub/a").catch((e) => e);
    assert.ok(revokedChild instanceof ApiError && revokedChild.status === 401, String(revokedChild));
  });
});
