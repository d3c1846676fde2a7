// The Latchkey client: secrets, leases and their approval wait, scoped tokens, the proxy and
// the approvers' votes. No runtime dependencies: the global fetch (or one passed in) and
// AbortSignal.timeout.

import { ENDPOINTS, type EndpointName, type EndpointSpec } from "./contract.js";
import { ApiError, LatchkeyError, LeaseDenied, LeaseExpired, TransportError, WaitTimeout } from "./errors.js";
import {
  Approval,
  Lease,
  proxyResponse,
  secretInfo,
  serviceInfo,
  type LeaseState,
  type ProxyResponse,
  type SecretInfo,
  type ServiceInfo,
  type VoteResult,
} from "./lease.js";
import { ScopedToken, Secret } from "./secret.js";

type Json = Record<string, unknown>;
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export const DEFAULT_ADDR = "http://127.0.0.1:8200";
/** How long `getSecret`, `wait` and `withLease` wait for an approval unless told otherwise. */
export const DEFAULT_WAIT_SECONDS = 300;
/** The daemon holds a long-poll at most this long. */
const MAX_POLL_SECONDS = 60;

export interface LatchkeyOptions {
  /** Daemon address; default `LATCHKEY_ADDR`, else `http://127.0.0.1:8200`. */
  addr?: string;
  /** Bearer credential (agent key, scoped token, approver or admin token); default `LATCHKEY_TOKEN`. */
  token?: string;
  /** A fetch implementation; default the global `fetch`. */
  fetch?: FetchLike;
  /** Per-request timeout in seconds (long-polls get their wait on top); default 30. */
  timeoutSeconds?: number;
  /** Consecutive retriable failures (408, 503, connection errors) a wait tolerates; default 30. */
  maxRetries?: number;
}

export interface WaitOptions {
  /** Give up after this many seconds with `WaitTimeout` (default 300; `Infinity` waits for the decision). */
  timeoutSeconds?: number;
  /** Stop waiting when aborted (the abort reason is thrown). */
  signal?: AbortSignal;
}

export interface GetSecretOptions {
  /** Why (shown to approvers). */
  reason?: string;
  /** How long to wait for an approval (default 300 s); past it, `WaitTimeout`. */
  waitSeconds?: number;
  /** env_bundles: only these keys. */
  keys?: string[];
  signal?: AbortSignal;
}

export interface LeaseOptions {
  action?: "read" | "proxy";
  ttlSeconds?: number;
  uses?: number;
  keys?: string[];
  reason?: string;
  sessionId?: string;
  taskId?: string;
}

export interface WithLeaseOptions extends LeaseOptions {
  /** How long to wait for an approval (default 300 s). */
  waitSeconds?: number;
  signal?: AbortSignal;
}

export interface PutOptions {
  /** `api_key` (default), `password`, `token`, `certificate`, `ssh_key`, `env_bundle`, `note`, `generic`. */
  type?: string;
  /** `standard` (default), `sensitive` or `critical`. */
  sensitivity?: "standard" | "sensitive" | "critical";
  metadata?: Record<string, unknown>;
  /** RFC 3339 time (or a Date) after which the secret cannot be used. */
  expiresAt?: string | Date;
  maxAccessCount?: number;
  /** Check-and-set: the current version expected (0: must not exist yet). */
  ifVersion?: number;
}

export interface ListOptions {
  prefix?: string;
  after?: string;
  limit?: number;
  includeDeleted?: boolean;
}

export interface TokenOptions {
  scopes: string[];
  ttlSeconds?: number;
  description?: string;
  sessionId?: string;
  taskId?: string;
  /** Admin tokens only: the agent to mint for. */
  agentId?: string;
}

export interface CallServiceOptions {
  /** Path parameters and the query (GET, DELETE) or JSON body of the upstream call. */
  params?: Record<string, unknown>;
  /** Same as `params` (the name the upstream body goes by in other clients). */
  json?: Record<string, unknown>;
  /** Same as `params`. */
  body?: Record<string, unknown>;
  /** An active `proxy` lease to use (not revoked afterwards). */
  lease?: Lease | string;
  /** Or: the secret path; a one-use proxy lease is requested, waited for, used and revoked. */
  path?: string;
  reason?: string;
  sessionId?: string;
  taskId?: string;
  /** With `path`: how long to wait for an approval (default 300 s). */
  waitSeconds?: number;
  signal?: AbortSignal;
}

interface CallArgs {
  params?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined | null>;
  body?: Json;
  /** Extra seconds on top of the client's request timeout (long-polls). */
  extraTimeout?: number;
  signal?: AbortSignal;
}

interface Answer {
  status: number;
  data: unknown;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/** A secret path in a URL: allowed characters as they are, anything else percent-encoded. */
function pathParam(p: string): string {
  return p.replace(/[^A-Za-z0-9._@+=:*\-/]/g, (c) => encodeURIComponent(c));
}

function dropUndefined<T extends Json>(o: T): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

function isRetriable(e: unknown): boolean {
  if (e instanceof TransportError) return true;
  if (e instanceof ApiError) {
    return (
      (e.status === 408 && e.code === "request_timeout") ||
      (e.status === 503 && (e.code === "shutting_down" || e.code === "unavailable")) ||
      (e.status === 429 && e.code === "rate_limited")
    );
  }
  return false;
}

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = p?.env?.[name];
  return v === "" ? undefined : v;
}

/** The approvers' side: list, approve and deny approvals (an approver or admin token). */
export class Approvals {
  readonly #client: Latchkey;
  constructor(client: Latchkey) {
    this.#client = client;
  }

  /** Approvals newest first; `state` `pending` (default) or `all`. */
  async list(opts: { state?: "pending" | "all"; limit?: number; before?: string } = {}): Promise<Approval[]> {
    const r = await this.#client._call("approvals.list", {
      query: { state: opts.state, limit: opts.limit, before: opts.before },
    });
    return (r.data as Json[]).map((a) => new Approval(a));
  }

  async get(id: string): Promise<Approval> {
    const r = await this.#client._call("approvals.get", { params: { id } });
    return new Approval(r.data as Json);
  }

  /** Vote to approve. */
  approve(id: string | Approval, reason?: string): Promise<VoteResult> {
    return this.#vote(id, "approve", reason);
  }

  /** Vote to deny (one deny denies); `reason` is recorded with the vote. */
  deny(id: string | Approval, reason?: string): Promise<VoteResult> {
    return this.#vote(id, "deny", reason);
  }

  async #vote(id: string | Approval, decision: "approve" | "deny", reason?: string): Promise<VoteResult> {
    const approvalId = typeof id === "string" ? id : id.id;
    const r = await this.#client._call("approvals.vote", {
      params: { id: approvalId },
      body: { decision, reason },
    });
    const d = r.data as Json;
    return {
      result: String(d.result),
      approval: new Approval(d.approval as Json),
      lease: new Lease(d.lease as Json),
    };
  }
}

export class Latchkey {
  readonly addr: string;
  readonly #token: string;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #options: LatchkeyOptions;
  /** Approvals (for approver and admin tokens). */
  readonly approvals: Approvals;

  constructor(options: LatchkeyOptions = {}) {
    const addr = options.addr ?? env("LATCHKEY_ADDR") ?? DEFAULT_ADDR;
    const token = options.token ?? env("LATCHKEY_TOKEN");
    if (!token) {
      throw new LatchkeyError("no Latchkey token: pass { token } or set LATCHKEY_TOKEN");
    }
    const f = options.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (typeof f !== "function") {
      throw new LatchkeyError("no fetch available: pass { fetch } (Node 18+ has a global fetch)");
    }
    this.addr = addr.replace(/\/+$/, "");
    this.#token = token;
    this.#fetch = f;
    this.#timeoutMs = (options.timeoutSeconds ?? 30) * 1000;
    this.#maxRetries = options.maxRetries ?? 30;
    this.#options = { ...options };
    this.approvals = new Approvals(this);
  }

  /** A client with the same address and options but another credential (e.g. a scoped token). */
  withToken(token: string | ScopedToken): Latchkey {
    return new Latchkey({ ...this.#options, addr: this.addr, token: typeof token === "string" ? token : token.token });
  }

  toString(): string {
    return `Latchkey(${this.addr})`;
  }
  toJSON(): Json {
    return { addr: this.addr };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  // ---- transport ----------------------------------------------------------------------

  /** @internal Sends one request of the contract table. */
  async _call(name: EndpointName, args: CallArgs = {}): Promise<Answer> {
    const spec: EndpointSpec = ENDPOINTS[name];
    let path = spec.path.replace(/\{(\w+)\}/g, (_, k: string) => {
      const v = args.params?.[k];
      if (v === undefined) throw new LatchkeyError(`${name}: missing path parameter ${k}`);
      return k === "path" ? pathParam(v) : encodeURIComponent(v);
    });
    if (args.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(args.query)) {
        if (v === undefined || v === null) continue;
        if (!spec.query?.includes(k)) throw new LatchkeyError(`${name}: query parameter ${k} is not in the SDK contract`);
        q.set(k, String(v));
      }
      const s = q.toString();
      if (s) path += `?${s}`;
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: "application/json",
    };
    let body: string | undefined;
    if (spec.body) {
      const b = dropUndefined(args.body ?? {});
      for (const k of Object.keys(b)) {
        if (!spec.body.includes(k)) throw new LatchkeyError(`${name}: body field ${k} is not in the SDK contract`);
      }
      body = JSON.stringify(b);
      headers["content-type"] = "application/json";
    } else if (args.body) {
      throw new LatchkeyError(`${name}: takes no body`);
    }
    const timeout = AbortSignal.timeout(this.#timeoutMs + (args.extraTimeout ?? 0) * 1000);
    const signal = args.signal ? anySignal([timeout, args.signal]) : timeout;
    let res: Response;
    try {
      res = await this.#fetch(this.addr + path, { method: spec.method, headers, body, signal });
    } catch (e) {
      if (args.signal?.aborted) throw args.signal.reason;
      const what = (e as Error)?.name === "TimeoutError" ? "timed out" : `failed: ${(e as Error)?.message ?? e}`;
      throw new TransportError(`${spec.method} ${spec.path} to ${this.addr} ${what}`, { cause: e });
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw new TransportError(`${spec.method} ${spec.path}: reading the answer failed`, { cause: e });
    }
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const err = (data as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const ra = Number(res.headers.get("retry-after"));
      throw new ApiError(
        res.status,
        typeof err?.code === "string" ? err.code : `http_${res.status}`,
        typeof err?.message === "string" ? err.message : res.statusText || "error",
        { retryAfter: Number.isFinite(ra) && res.headers.has("retry-after") ? ra : null, method: spec.method, path: spec.path },
      );
    }
    return { status: res.status, data };
  }

  // ---- secrets: reading ----------------------------------------------------------------

  /**
   * Reads a secret in one call: the value at once when no approval is needed, else waits
   * (long-poll) for the approval up to `waitSeconds` (default 300) and then reads it.
   * Throws `LeaseDenied`, `LeaseExpired`, `WaitTimeout` (the lease stays pending: its id is
   * on the error) or `ApiError`.
   */
  async getSecret(path: string, opts: GetSecretOptions = {}): Promise<Secret> {
    const r = await this._call("secrets.read", {
      params: { path },
      body: { reason: opts.reason, keys: opts.keys },
      signal: opts.signal,
    });
    const d = r.data as Json;
    if (r.status === 200) return secretFrom(path, d);
    const lease = await this.wait(new Lease(d), { timeoutSeconds: opts.waitSeconds, signal: opts.signal });
    return this.leaseSecret(lease, path);
  }

  /** Asks for a lease: `active` at once, or `pending` with its approval (then `wait`). */
  async requestLease(path: string, opts: LeaseOptions = {}): Promise<Lease> {
    const r = await this._call("leases.create", {
      body: {
        path,
        action: opts.action,
        ttl_seconds: opts.ttlSeconds,
        uses: opts.uses,
        keys: opts.keys,
        reason: opts.reason,
        session_id: opts.sessionId,
        task_id: opts.taskId,
      },
    });
    return new Lease(r.data as Json);
  }

  /** The lease now. */
  async getLease(id: string | Lease): Promise<Lease> {
    const r = await this._call("leases.show", { params: { id: typeof id === "string" ? id : id.id } });
    return new Lease(r.data as Json);
  }

  /** The caller's leases, newest first. */
  async listLeases(opts: { state?: LeaseState; limit?: number; before?: string } = {}): Promise<Lease[]> {
    const r = await this._call("leases.list", { query: { state: opts.state, limit: opts.limit, before: opts.before } });
    return (r.data as Json[]).map((l) => new Lease(l));
  }

  /**
   * Waits until the lease is decided: returns it once `active`; throws `LeaseDenied` when
   * denied, `LeaseExpired` when it expired, was revoked or is used up, `WaitTimeout` past
   * `timeoutSeconds`. Long-polls `GET /v1/leases/{id}?wait=N&seen=STATE` (N ≤ 60), and rides
   * out `408 request_timeout`, `503 shutting_down` (after its `Retry-After`) and connection
   * errors, at most `maxRetries` in a row and never past the timeout.
   */
  async wait(lease: Lease | string, opts: WaitOptions = {}): Promise<Lease> {
    const timeout = opts.timeoutSeconds ?? DEFAULT_WAIT_SECONDS;
    const started = Date.now();
    const deadline = started + timeout * 1000;
    const id = typeof lease === "string" ? lease : lease.id;
    let cur: Lease | null = typeof lease === "string" ? null : lease;
    let failures = 0;
    for (;;) {
      if (cur) {
        if (cur.state === "active") return cur;
        if (cur.state === "denied") throw new LeaseDenied(cur);
        if (cur.final) throw new LeaseExpired(cur);
      }
      const remaining = deadline - Date.now();
      if (cur && remaining <= 0) throw new WaitTimeout(cur, (Date.now() - started) / 1000);
      const waitFor = cur ? Math.max(1, Math.min(MAX_POLL_SECONDS, Math.ceil(remaining / 1000))) : 0;
      try {
        const r = await this._call("leases.show", {
          params: { id },
          query: cur ? { wait: waitFor, seen: cur.state } : {},
          extraTimeout: waitFor,
          signal: opts.signal,
        });
        cur = new Lease(r.data as Json);
        failures = 0;
      } catch (e) {
        if (!isRetriable(e) || ++failures > this.#maxRetries) throw e;
        const left = deadline - Date.now();
        if (left <= 0) {
          if (cur) throw new WaitTimeout(cur, (Date.now() - started) / 1000);
          throw e;
        }
        const ra = e instanceof ApiError && e.retryAfter !== null ? e.retryAfter * 1000 : Math.min(500 * 2 ** (failures - 1), 5000);
        await sleep(Math.max(100, Math.min(ra, left, 30_000)), opts.signal);
      }
    }
  }

  /** Uses the lease once: the value (or an env_bundle's allowed entries). */
  async leaseSecret(lease: Lease | string, path?: string): Promise<Secret> {
    const id = typeof lease === "string" ? lease : lease.id;
    const r = await this._call("leases.secret", { params: { id } });
    const d = r.data as Json;
    return secretFrom(path ?? (typeof lease === "string" ? String((d.lease as Json)?.path ?? "") : lease.path), d);
  }

  /** Revokes a lease (a pending one's approval is cancelled). */
  async revokeLease(lease: Lease | string, reason?: string): Promise<Lease> {
    const r = await this._call("leases.revoke", {
      params: { id: typeof lease === "string" ? lease : lease.id },
      query: { reason },
    });
    return new Lease(r.data as Json);
  }

  /**
   * Requests a lease, waits for it, and runs `fn` with it; the lease is revoked afterwards
   * whatever happens (also when the wait fails). For `action: "read"` (default) `fn` gets the
   * secret (one use) and the lease; for `action: "proxy"` it gets the lease (for
   * `callService`) and `null`.
   */
  async withLease<T>(
    path: string,
    opts: WithLeaseOptions,
    fn: (secret: Secret, lease: Lease) => Promise<T> | T,
  ): Promise<T>;
  async withLease<T>(path: string, fn: (secret: Secret, lease: Lease) => Promise<T> | T): Promise<T>;
  async withLease<T>(
    path: string,
    a: WithLeaseOptions | ((secret: Secret, lease: Lease) => Promise<T> | T),
    b?: (secret: Secret, lease: Lease) => Promise<T> | T,
  ): Promise<T> {
    const opts = typeof a === "function" ? {} : a;
    const fn = (typeof a === "function" ? a : b)!;
    let lease = await this.requestLease(path, opts);
    try {
      lease = await this.wait(lease, { timeoutSeconds: opts.waitSeconds, signal: opts.signal });
      if (opts.action === "proxy") {
        return await (fn as unknown as (l: Lease, s: null) => Promise<T> | T)(lease, null);
      }
      const secret = await this.leaseSecret(lease, path);
      return await fn(secret, secret.lease);
    } finally {
      await this.revokeLease(lease, "withLease done").catch(() => {
        // Already over (exhausted, expired, denied: 409) or unreachable: nothing to give back.
      });
    }
  }

  // ---- secrets: writing and metadata ---------------------------------------------------

  /**
   * Creates or updates a secret. `value` is a string, or an object of entries for an
   * env_bundle (type defaults to `env_bundle` then); `null` changes only the metadata.
   */
  async put(path: string, value: string | Record<string, string> | null, opts: PutOptions = {}): Promise<SecretInfo> {
    const isEntries = value !== null && typeof value === "object";
    const r = await this._call("secrets.put", {
      params: { path },
      body: {
        value: typeof value === "string" ? value : undefined,
        entries: isEntries ? value : undefined,
        type: opts.type ?? (isEntries ? "env_bundle" : undefined),
        sensitivity: opts.sensitivity,
        metadata: opts.metadata,
        expires_at: opts.expiresAt instanceof Date ? opts.expiresAt.toISOString() : opts.expiresAt,
        max_access_count: opts.maxAccessCount,
        if_version: opts.ifVersion,
      },
    });
    return secretInfo(r.data as Json);
  }

  /** Stores an env_bundle (KEY → VALUE). */
  putEnvBundle(path: string, entries: Record<string, string>, opts: PutOptions = {}): Promise<SecretInfo> {
    return this.put(path, entries, { ...opts, type: "env_bundle" });
  }

  /** A new value for an existing secret (a new version; type, sensitivity and metadata kept). */
  rotate(path: string, value: string | Record<string, string>, opts: { ifVersion?: number } = {}): Promise<SecretInfo> {
    return this.put(path, value, { ifVersion: opts.ifVersion, type: typeof value === "string" ? undefined : "env_bundle" });
  }

  /** Metadata, never the value. */
  async describe(path: string, opts: { includeDeleted?: boolean } = {}): Promise<SecretInfo> {
    const r = await this._call("secrets.describe", {
      params: { path },
      query: { include_deleted: opts.includeDeleted ? "true" : undefined },
    });
    return secretInfo(r.data as Json);
  }

  /** One page of secrets (metadata); pass `next` as `after` for the next page. */
  async list(opts: ListOptions = {}): Promise<{ secrets: SecretInfo[]; next: string | null }> {
    const r = await this._call("secrets.list", {
      query: {
        prefix: opts.prefix,
        after: opts.after,
        limit: opts.limit,
        include_deleted: opts.includeDeleted ? "true" : undefined,
      },
    });
    const d = r.data as Json;
    return {
      secrets: ((d.secrets as Json[]) ?? []).map(secretInfo),
      next: typeof d.next === "string" ? d.next : null,
    };
  }

  /** Every secret under the options' prefix, page after page. */
  async *listAll(opts: Omit<ListOptions, "after"> = {}): AsyncGenerator<SecretInfo> {
    let after: string | undefined;
    for (;;) {
      const page = await this.list({ ...opts, after });
      yield* page.secrets;
      if (!page.next || page.next === after) return;
      after = page.next;
    }
  }

  /** The versions of a secret (creator, source, KEK id; never values), oldest first. */
  async versions(path: string): Promise<Json[]> {
    const r = await this._call("secrets.versions", { params: { path } });
    return ((r.data as Json).versions as Json[]) ?? [];
  }

  /** Makes an older version's value current again, as a new version. */
  async rollback(path: string, version: number, opts: { ifVersion?: number } = {}): Promise<SecretInfo> {
    const r = await this._call("secrets.rollback", {
      params: { path },
      body: { version, if_version: opts.ifVersion },
    });
    return secretInfo(r.data as Json);
  }

  /** Soft delete. */
  async delete(path: string): Promise<SecretInfo> {
    const r = await this._call("secrets.delete", { params: { path } });
    return secretInfo(r.data as Json);
  }

  /** Undoes a soft delete. */
  async restore(path: string): Promise<SecretInfo> {
    const r = await this._call("secrets.restore", { params: { path } });
    return secretInfo(r.data as Json);
  }

  // ---- tokens --------------------------------------------------------------------------

  /** Mints a narrower token for a sub-agent (`withToken(t)` makes a client of it). */
  async requestToken(opts: TokenOptions): Promise<ScopedToken> {
    const r = await this._call("tokens.mint", {
      body: {
        scopes: opts.scopes,
        ttl_seconds: opts.ttlSeconds,
        description: opts.description,
        session_id: opts.sessionId,
        task_id: opts.taskId,
        agent_id: opts.agentId,
      },
    });
    return new ScopedToken(r.data as Json);
  }

  /** Revokes a scoped token (and every token minted from it). */
  async revokeToken(token: string | ScopedToken): Promise<void> {
    await this._call("tokens.revoke", { params: { id: typeof token === "string" ? token : token.id } });
  }

  /** The caller's credential: kind, agent, namespace, scopes, expiry. */
  async whoami(): Promise<Json> {
    return (await this._call("whoami")).data as Json;
  }

  // ---- the proxy -----------------------------------------------------------------------

  /** Proxy services (names, endpoints, the secret each injects; never the credential). */
  async listServices(): Promise<ServiceInfo[]> {
    const r = await this._call("services.list");
    return (r.data as Json[]).map(serviceInfo);
  }

  /**
   * Calls `endpoint` of `service` through the daemon, which injects the credential: the
   * caller never holds it, and any echo of it in the answer is `[redacted]`. Give an active
   * proxy `lease`, or the secret's `path` (and a `reason`): a one-use proxy lease is then
   * requested, waited for (approval rules apply), used and revoked.
   */
  async callService(service: string, endpoint: string, opts: CallServiceOptions = {}): Promise<ProxyResponse> {
    const given = [opts.params, opts.json, opts.body].filter((p) => p !== undefined);
    if (given.length > 1) throw new TypeError("callService: give one of params, json, body");
    const params = given[0];
    if (params !== undefined && (params === null || typeof params !== "object" || Array.isArray(params))) {
      throw new TypeError("callService: params must be an object");
    }
    const call = async (leaseId: string) =>
      proxyResponse(
        (
          await this._call("proxy.call", {
            params: { service, endpoint },
            body: { lease_id: leaseId, params },
            signal: opts.signal,
          })
        ).data as Json,
      );
    if (opts.lease !== undefined) {
      if (opts.path !== undefined) throw new TypeError("callService: give a lease or a path, not both");
      return call(typeof opts.lease === "string" ? opts.lease : opts.lease.id);
    }
    if (opts.path === undefined) throw new TypeError("callService: give a proxy lease or the secret's path");
    return this.withLease(
      opts.path,
      {
        action: "proxy",
        uses: 1,
        reason: opts.reason,
        sessionId: opts.sessionId,
        taskId: opts.taskId,
        waitSeconds: opts.waitSeconds,
        signal: opts.signal,
      },
      ((lease: Lease) => call(lease.id)) as unknown as (s: Secret, l: Lease) => Promise<ProxyResponse>,
    );
  }
}

function secretFrom(path: string, d: Json): Secret {
  const entries = d.entries && typeof d.entries === "object" ? (d.entries as Record<string, string>) : null;
  const value = typeof d.value === "string" ? d.value : null;
  return new Secret(path, entries ? null : value, entries, new Lease((d.lease ?? {}) as Json));
}

/** An AbortSignal that aborts when any of `signals` does (AbortSignal.any is Node 20+). */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as unknown as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (typeof any === "function") return any(signals);
  const c = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      c.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => c.abort(s.reason), { once: true });
  }
  return c.signal;
}
