// A real daemon stopping under a long-poll answers 503 shutting_down with Retry-After: the
// wait loop's retry rests on that (test/unit.test.mjs covers the retry itself).

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { ApiError, Latchkey } from "../dist/index.js";
import { startDaemon } from "./helpers.mjs";

let d;
after(async () => {
  await d?.stop();
});

test("a long-poll cut by SIGTERM is 503 shutting_down with Retry-After", async () => {
  d = await startDaemon();
  const a = await d.createAgent("ts-stop", 2);
  const agent = new Latchkey({ addr: d.addr, token: a.key, maxRetries: 0 });
  await agent.putSecret("s/x", "stop-value-1234", { sensitivity: "sensitive" });
  const pending = await agent.requestLease("s/x", { reason: "stop" });
  assert.equal(pending.state, "pending");
  const waiting = agent.wait(pending, { timeoutSeconds: 30 }).catch((e) => e);
  await new Promise((r) => setTimeout(r, 300));
  const stopped = d.stop();
  const err = await waiting;
  await stopped;
  assert.ok(err instanceof ApiError, `expected 503 shutting_down, got ${err}`);
  assert.equal(err.status, 503);
  assert.equal(err.code, "shutting_down");
  assert.ok(err.retryAfter > 0, String(err.retryAfter));
  d = null;
});
