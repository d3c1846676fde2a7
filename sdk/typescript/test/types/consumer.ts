// Compiled with `tsc --noEmit` by run-tests.sh: the published declarations type-check in a
// consumer's strict TypeScript (nothing here runs).
import {
  ApiError,
  Latchkey,
  LeaseDenied,
  WaitTimeout,
  type Lease,
  type ProxyResponse,
  type Secret,
  type SecretInfo,
} from "../../dist/index.js";

export async function example(fetchImpl: typeof fetch): Promise<void> {
  const lk = new Latchkey({ addr: "http://127.0.0.1:8200", token: "lk_agent_x", fetch: fetchImpl, timeoutSeconds: 10 });
  const s: Secret = await lk.getSecret("/production/x", { reason: "r", waitSeconds: 5, keys: ["A"] });
  const v: string = s.value;
  const e: Readonly<Record<string, string>> = s.entries;
  const l: Lease = await lk.requestLease("x", { action: "proxy", ttlSeconds: 60, uses: 2, sessionId: "s", taskId: "t" });
  const active: Lease = await lk.wait(l, { timeoutSeconds: 30 });
  const n: number = await lk.withLease("x", { reason: "r" }, async (secret, lease) => secret.value.length + (lease.usesLeft ?? 0));
  const r: ProxyResponse = await lk.callService("svc", "ep", { lease: active, json: { a: 1 } });
  const info: SecretInfo = await lk.putSecret("x", "v", { sensitivity: "sensitive" });
  const t = await lk.requestToken({ scopes: ["secrets:read:x/*"], ttlSeconds: 60 });
  const sub: Latchkey = lk.withToken(t);
  const votes = await sub.approvals.list({ state: "all" });
  if (votes[0]) await sub.approvals.deny(votes[0], "no");
  try {
    await lk.getSecret("y");
  } catch (err) {
    if (err instanceof LeaseDenied) console.log(err.reason, err.decidedBy);
    if (err instanceof WaitTimeout) console.log(err.leaseId, err.approvalId);
    if (err instanceof ApiError) console.log(err.status, err.code, err.detail);
  }
  void [v, e, n, r, info];
}
