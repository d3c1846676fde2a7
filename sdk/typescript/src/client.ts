// The Latchkey client: secrets, leases and their approval wait, scoped tokens, the proxy and
// the approvers' votes. No runtime dependencies: the global fetch (or one passed in) and
// AbortSignal.timeout.

import { ENDPOINTS, type EndpointName, type EndpointSpec } from "./contract.js";
import {
  ApiError,
  ConnectionFailed,
  LatchkeyError,
  LeaseDenied,
  LeaseError,
  LeaseExpired,
  LeaseRevoked,
  WaitTimeout,
} from "./errors.js";
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
import { MASK, ScopedToken, Secret } from "./secret.js";

type Json = Record<string, unknown>;
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export const DEFAULT_ADDR = "http://127.0.0.1:8200";
/** How long `getSecret`, `wait` and `withLease` wait for an approval unless told otherwise. */
export const DEFAULT_WAIT_SECONDS = 600;
/** The daemon holds a long-poll at most this long. */
const MAX_POLL_SECONDS = 60;
/** Statuses a quiet revoke ignores: the lease is already over (409) or gone (404, 410). */
const QUIET_REVOKE = new Set([404, 409, 410]);

export interface LatchkeyOptions {
  /** Daemon address; default `LATCHKEY_ADDR`, else `http://127.0.0.1:8200`. */
  addr?: string;
  /** Bearer credential (agent key, scoped token, approver or admin token); default `LATCHKEY_TOKEN`. */
  token?: string;
  /** A fetch implementation; default the global `fetch`. */
  fetch?: FetchLike;
  /** Per-request timeout in seconds (long-polls get their wait on top); default 30. */
  timeoutSeconds?: number;
  /** Consecutive retriable failures (408, 429, 503, connection errors) a wait tolerates; default 20. */
  maxRetries?: number;
}

export interface WaitOptions {
  /** Give up after this many seconds with `WaitTimeout` (default 600; `Infinity` waits for the decision). */
  timeoutSeconds?: number;
  /** Stop waiting when aborted (the abort reason is thrown). */
  signal?: AbortSignal;
}

export interface GetSecretOptions {
  /** Why (shown to approvers). */
  reason?: string;
  /** How long to wait for an approval (default 600 s); past it, `WaitTimeout`. */
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
  /** How long to wait for an approval (default 600 s). */
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
  scopes: string | string[];
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
  /**
   * Or: the secret's path (default: the service's secret, absolute); a one-use proxy lease is
   * requested, waited for, used and revoked.
   */
  path?: string;
  reason?: string;
  sessionId?: string;
  taskId?: string;
  /** With `path`: how long to wait for an approval (default 600 s). */
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
  if (e instanceof ConnectionFailed) return true;
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

function approvalIdOf(a: string | Approval | Lease): string {
  if (typeof a === "string") return a;
  if (a instanceof Approval) return a.id;
  if (!a.approvalId) throw new LatchkeyError(`lease ${a.id} has no approval`);
  return a.approvalId;
}

/** The approvers' side: list, approve and deny approvals (an approver token, or the admin's where it may vote). */
export class Approvals {
  readonly #client: Latchkey;
  constructor(client: Latchkey) {
    this.#client = client;
  }

  /** Approvals newest first; `state` `pending` (default) or `all`. */
  async list(opts: { state?: "pending" | "all"; limit?: number; before?: string } = {}): Promise<Approval[]> {
    const r = await this.#client._call("approvals.list", {
      query: { state: opts.state ?? "pending", limit: opts.limit, before: opts.before },
    });
    return ((r.data as Json[]) ?? []).map((a) => new Approval(a));
  }

  /** One approval (by id, the `Approval`, or the pending `Lease` it decides). */
  async get(approval: string | Approval | Lease): Promise<Approval> {
    const r = await this.#client._call("approvals.get", { params: { id: approvalIdOf(approval) } });
    return new Approval(r.data as Json);
  }

  /** Votes `approve` or `deny`; `reason` is recorded with the vote. */
  async vote(approval: string | Approval | Lease, decision: "approve" | "deny", reason?: string): Promise<VoteResult> {
    const r = await this.#client._call("approvals.vote", {
      params: { id: approvalIdOf(approval) },
      body: { decision, reason },
    });
    const d = r.data as Json;
    return {
      result: String(d.result),
      approval: new Approval(d.approval as Json),
      lease: new Lease(d.lease as Json),
    };
  }

  approve(approval: string | Approval | Lease, reason?: string): Promise<VoteResult> {
    return this.vote(approval, "approve", reason);
  }

  /** One deny denies the lease. */
  deny(approval: string | Approval | Lease, reason?: string): Promise<VoteResult> {
    return this.vote(approval, "deny", reason);
  }
}

/** A new agent: its record and its API key (answered once; masked when printed). */
export class NewAgent {
  readonly #apiKey: string;
  readonly id: string;
  readonly name: string;
  /** `entities/<id>`: where the agent's relative paths resolve. */
  readonly namespace: string;
  readonly trustTier: number | null;
  readonly raw: Readonly<Json>;

  constructor(d: Json) {
    const agent = (d.agent ?? {}) as Json;
    this.#apiKey = String(d.api_key);
    this.id = String(agent.id);
    this.name = String(agent.name ?? "");
    this.namespace = String(agent.namespace ?? "");
    this.trustTier = typeof agent.trust_tier === "number" ? agent.trust_tier : null;
    this.raw = agent;
  }

  /** The `lk_agent_…` key, shown once: store it now. */
  get apiKey(): string {
    return this.#apiKey;
  }
  toString(): string {
    return `NewAgent(${this.name} ${this.id}: ${MASK})`;
  }
  toJSON(): Json {
    return { id: this.id, name: this.name, namespace: this.namespace, trust_tier: this.trustTier, api_key: MASK };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/** A few admin calls, enough to set up agents, grants, approvers and services (an admin token). */
export class Admin {
  readonly #client: Latchkey;
  constructor(client: Latchkey) {
    this.#client = client;
  }

  /** Registers an agent (namespace `entities/<id>/`); its API key is answered once. */
  async createAgent(name: string, opts: { trustTier?: number; description?: string } = {}): Promise<NewAgent> {
    const r = await this.#client._call("agents.create", {
      body: { name, trust_tier: opts.trustTier, description: opts.description },
    });
    return new NewAgent(r.data as Json);
  }

  /**
   * Grants `actions` on `pattern` to one agent (`agentId`) or to a namespace (default
   * `entities`: every agent).
   */
  async createGrant(
    pattern: string,
    actions: Array<"read" | "proxy" | "list" | "write">,
    opts: { agentId?: string; namespace?: string; limits?: Record<string, unknown>; expiresAt?: string | Date } = {},
  ): Promise<Json> {
    if (opts.agentId !== undefined && opts.namespace !== undefined) {
      throw new TypeError("createGrant: give agentId or namespace, not both");
    }
    const subject =
      opts.agentId !== undefined
        ? { kind: "agent", value: opts.agentId }
        : { kind: "namespace", value: opts.namespace ?? "entities" };
    const r = await this.#client._call("grants.create", {
      body: {
        subject,
        pattern,
        actions,
        limits: opts.limits,
        expires_at: opts.expiresAt instanceof Date ? opts.expiresAt.toISOString() : opts.expiresAt,
      },
    });
    return r.data as Json;
  }

  /** An API token for the configured approver `name` (answered once). */
  async approverToken(name: string): Promise<string> {
    const r = await this.#client._call("approvers.token", { params: { name } });
    return String((r.data as Json).token);
  }

  /** Declares a proxy service: in full (`service`, the daemon's Service shape) or from a template. */
  async addService(opts: {
    service?: Record<string, unknown>;
    template?: string;
    name?: string;
    secret?: string;
    baseUrl?: string;
    allowPrivate?: boolean;
    allowedAgents?: string[];
  }): Promise<ServiceInfo> {
    const r = await this.#client._call("services.create", {
      body: {
        service: opts.service,
        template: opts.template,
        name: opts.name,
        secret: opts.secret,
        base_url: opts.baseUrl,
        allow_private: opts.allowPrivate,
        allowed_agents: opts.allowedAgents,
      },
    });
    return serviceInfo(r.data as Json);
  }

  async deleteService(name: string): Promise<void> {
    await this.#client._call("services.delete", { params: { name } });
  }
}

export class Latchkey {
  readonly addr: string;
  readonly #token: string;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #options: LatchkeyOptions;
  /** Approvals (for approver tokens). */
  readonly approvals: Approvals;
  /** Admin set-up calls (for admin tokens). */
  readonly admin: Admin;

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
    this.#maxRetries = options.maxRetries ?? 20;
    this.#options = { ...options };
    this.approvals = new Approvals(this);
    this.admin = new Admin(this);
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
      throw new ConnectionFailed(`${spec.method} ${spec.path} to ${this.addr} ${what}`, { cause: e });
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw new ConnectionFailed(`${spec.method} ${spec.path}: reading the answer failed`, { cause: e });
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

  /** The daemon's version, readiness and approval channels. */
  async status(): Promise<Json> {
    return (await this._call("status")).data as Json;
  }

  /** The caller's credential: kind, agent, namespace, scopes, expiry. */
  async whoami(): Promise<Json> {
    return (await this._call("whoami")).data as Json;
  }

  // ---- secrets: metadata and writes ----------------------------------------------------

  /**
   * Creates or updates a secret. `value` is a string, or an object of entries for an
   * env_bundle (the type defaults to `env_bundle` then); `null` changes only the metadata.
   */
  async putSecret(path: string, value: string | Record<string, string> | null, opts: PutOptions = {}): Promise<SecretInfo> {
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

  /** A new value for an existing secret: a new version; type, sensitivity and metadata are kept. */
  rotateSecret(path: string, value: string | Record<string, string>, opts: { ifVersion?: number } = {}): Promise<SecretInfo> {
    return this.putSecret(path, value, { ifVersion: opts.ifVersion });
  }

  /** Stores an env_bundle (KEY → VALUE; an entry may be empty). */
  putEnvBundle(path: string, entries: Record<string, string>, opts: PutOptions = {}): Promise<SecretInfo> {
    return this.putSecret(path, entries, { ...opts, type: "env_bundle" });
  }

  /** Metadata, never the value. */
  async describeSecret(path: string, opts: { includeDeleted?: boolean } = {}): Promise<SecretInfo> {
    const r = await this._call("secrets.describe", {
      params: { path },
      query: { include_deleted: opts.includeDeleted ? "true" : undefined },
    });
    return secretInfo(r.data as Json);
  }

  /** One page of secrets (metadata); pass `next` as `after` for the next page. */
  async listSecrets(opts: ListOptions = {}): Promise<{ secrets: SecretInfo[]; next: string | null }> {
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

  /** Every secret (under `prefix`), page after page. */
  async *iterSecrets(opts: Omit<ListOptions, "after"> = {}): AsyncGenerator<SecretInfo> {
    let after: string | undefined;
    for (;;) {
      const page = await this.listSecrets({ ...opts, after });
      yield* page.secrets;
      if (!page.next || page.next === after) return;
      after = page.next;
    }
  }

  /** Soft delete. */
  async deleteSecret(path: string): Promise<SecretInfo> {
    const r = await this._call("secrets.delete", { params: { path } });
    return secretInfo(r.data as Json);
  }

  /** Undoes a soft delete. */
  async restoreSecret(path: string): Promise<SecretInfo> {
    const r = await this._call("secrets.restore", { params: { path } });
    return secretInfo(r.data as Json);
  }

  /** Makes an older version's value current again, as a new version. */
  async rollbackSecret(path: string, version: number, opts: { ifVersion?: number } = {}): Promise<SecretInfo> {
    const r = await this._call("secrets.rollback", {
      params: { path },
      body: { version, if_version: opts.ifVersion },
    });
    return secretInfo(r.data as Json);
  }

  /** The versions of a secret (creator, source, KEK id; never values), oldest first. */
  async secretVersions(path: string): Promise<Json[]> {
    const r = await this._call("secrets.versions", { params: { path } });
    return ((r.data as Json).versions as Json[]) ?? [];
  }

  // ---- secrets: values -----------------------------------------------------------------

  /**
   * Reads a secret through a single-use lease (`POST /v1/secrets/{path}/read`): the value at
   * once when no approval is needed; else waits (long-polls) for the approval up to
   * `waitSeconds` (default 600) and then reads it. Throws `WaitTimeout` (the lease stays
   * pending: `wait(err.leaseId)` goes on), `LeaseDenied`, `LeaseExpired`, `LeaseRevoked` or
   * `ApiError`.
   */
  async getSecret(path: string, opts: GetSecretOptions = {}): Promise<Secret> {
    const r = await this._call("secrets.read", {
      params: { path },
      body: { reason: opts.reason || undefined, keys: opts.keys },
      signal: opts.signal,
    });
    const d = r.data as Json;
    if (r.status === 200) return secretFrom(path, d);
    const lease = await this.wait(new Lease(d), { timeoutSeconds: opts.waitSeconds, signal: opts.signal });
    return this.leaseSecret(lease, path);
  }

  /** The entries of an env_bundle (only `keys` when given), read as `getSecret` reads. */
  async getEnvBundle(path: string, opts: GetSecretOptions = {}): Promise<Readonly<Record<string, string>>> {
    const s = await this.getSecret(path, opts);
    if (!s.isBundle) throw new LatchkeyError(`${path} is not an env_bundle`);
    return s.entries;
  }

  // ---- leases --------------------------------------------------------------------------

  /** Asks for a lease: `active` at once, or `pending` with its approval (then `wait`). */
  async requestLease(path: string, opts: LeaseOptions = {}): Promise<Lease> {
    const r = await this._call("leases.create", {
      body: {
        path,
        action: opts.action,
        ttl_seconds: opts.ttlSeconds,
        uses: opts.uses,
        keys: opts.keys,
        reason: opts.reason || undefined,
        session_id: opts.sessionId,
        task_id: opts.taskId,
      },
    });
    return new Lease(r.data as Json);
  }

  /** The lease now. */
  async getLease(lease: string | Lease): Promise<Lease> {
    const r = await this._call("leases.show", { params: { id: leaseIdOf(lease) } });
    return new Lease(r.data as Json);
  }

  /** The caller's leases, newest first. */
  async listLeases(opts: { state?: LeaseState; limit?: number; before?: string } = {}): Promise<Lease[]> {
    const r = await this._call("leases.list", { query: { state: opts.state, limit: opts.limit, before: opts.before } });
    return ((r.data as Json[]) ?? []).map((l) => new Lease(l));
  }

  /**
   * Waits until the lease is decided: returns it once `active`; throws `LeaseDenied`,
   * `LeaseExpired` (expired or used up) or `LeaseRevoked` when it ends, `WaitTimeout` when
   * `timeoutSeconds` (default 600) pass first. Long-polls
   * `GET /v1/leases/{id}?wait=N&seen=STATE` (N ≤ 60, never past the deadline) and rides out
   * 408 `request_timeout`, 429, 503 `shutting_down` (after its `Retry-After`) and dropped
   * connections, at most `maxRetries` in a row.
   */
  async wait(lease: Lease | string, opts: WaitOptions = {}): Promise<Lease> {
    const timeout = Math.max(0, opts.timeoutSeconds ?? DEFAULT_WAIT_SECONDS);
    const started = Date.now();
    const deadline = started + timeout * 1000;
    let cur = typeof lease === "string" ? await this.getLease(lease) : lease;
    let failures = 0;
    for (;;) {
      if (settle(cur)) return cur;
      const remaining = (deadline - Date.now()) / 1000;
      if (remaining <= 0) throw new WaitTimeout(cur, (Date.now() - started) / 1000);
      const secs = Math.max(0, Math.min(MAX_POLL_SECONDS, Math.floor(remaining)));
      // The last fraction of a second: sleep it, then one last look (wait=0).
      if (secs === 0) await sleep(remaining * 1000, opts.signal);
      const asked = Date.now();
      try {
        const r = await this._call("leases.show", {
          params: { id: cur.id },
          query: { wait: secs, seen: cur.state },
          extraTimeout: secs,
          signal: opts.signal,
        });
        cur = new Lease(r.data as Json);
        failures = 0;
      } catch (e) {
        if (!isRetriable(e) || ++failures > this.#maxRetries) throw e;
        const left = deadline - Date.now();
        const delay = e instanceof ApiError && e.retryAfter !== null ? e.retryAfter * 1000 : Math.min(5000, 250 * 2 ** failures);
        await sleep(Math.max(0, Math.min(delay, left)), opts.signal);
        continue;
      }
      // A pending answer that came back at once (not held): do not spin.
      if (cur.state === "pending" && secs > 0 && Date.now() - asked < 50) {
        await sleep(Math.min(250, Math.max(0, deadline - Date.now())), opts.signal);
      }
    }
  }

  /** Uses an active read lease once: the value (or an env_bundle's allowed entries). */
  async leaseSecret(lease: Lease | string, path?: string): Promise<Secret> {
    const id = leaseIdOf(lease);
    const d = (await this.#use("leases.secret", { params: { id } }, id)) as Json;
    const p = path ?? (typeof lease === "string" ? String((d.lease as Json | undefined)?.path ?? "") : lease.path);
    return secretFrom(p, d);
  }

  /** Revokes a lease (a pending one's approval is cancelled). */
  async revokeLease(lease: Lease | string, opts: { reason?: string } = {}): Promise<Lease> {
    const r = await this._call("leases.revoke", { params: { id: leaseIdOf(lease) }, query: { reason: opts.reason } });
    return new Lease(r.data as Json);
  }

  /** A call that uses a lease, its refusals turned into the typed lease errors. */
  async #use(name: EndpointName, args: CallArgs, leaseId: string): Promise<unknown> {
    try {
      return (await this._call(name, args)).data;
    } catch (e) {
      if (e instanceof ApiError && e.status === 410) {
        throw new LeaseExpired(`lease ${leaseId}: ${e.detail}`, null, { leaseId, code: e.code });
      }
      if (e instanceof ApiError && e.code === "lease_not_active") {
        const cur = await this.getLease(leaseId);
        if (!settle(cur)) throw new LeaseError(`lease ${leaseId} is still pending: wait for it first`, cur);
      }
      throw e;
    }
  }

  async #revokeQuietly(id: string, failing: boolean): Promise<void> {
    try {
      await this.revokeLease(id, { reason: "released by the TypeScript SDK" });
    } catch (e) {
      if (failing) return; // the original error matters more
      if (e instanceof ApiError && QUIET_REVOKE.has(e.status)) return;
      throw e;
    }
  }

  /** Request, wait, run `fn` with the active lease, revoke in finally. */
  async #holding<T>(path: string, opts: WithLeaseOptions, fn: (lease: Lease) => Promise<T> | T): Promise<T> {
    const requested = await this.requestLease(path, opts);
    let failing = true;
    try {
      const lease = await this.wait(requested, { timeoutSeconds: opts.waitSeconds, signal: opts.signal });
      const out = await fn(lease);
      failing = false;
      return out;
    } finally {
      await this.#revokeQuietly(requested.id, failing);
    }
  }

  /**
   * Requests a read lease, waits for its approval, reads the value and runs `fn(secret,
   * lease)`; the lease is revoked afterwards whatever happens (also when the wait fails, which
   * cancels a pending approval).
   */
  withLease<T>(path: string, opts: WithLeaseOptions, fn: (secret: Secret, lease: Lease) => Promise<T> | T): Promise<T>;
  withLease<T>(path: string, fn: (secret: Secret, lease: Lease) => Promise<T> | T): Promise<T>;
  withLease<T>(
    path: string,
    a: WithLeaseOptions | ((secret: Secret, lease: Lease) => Promise<T> | T),
    b?: (secret: Secret, lease: Lease) => Promise<T> | T,
  ): Promise<T> {
    const opts = typeof a === "function" ? {} : a;
    const fn = (typeof a === "function" ? a : b)!;
    return this.#holding(path, { ...opts, action: "read" }, async (lease) => {
      const secret = await this.leaseSecret(lease, path);
      return fn(secret, secret.lease);
    });
  }

  /** An active `proxy` lease for `callService(…, { lease })` inside `fn`, revoked afterwards. */
  withProxyLease<T>(path: string, opts: Omit<WithLeaseOptions, "keys">, fn: (lease: Lease) => Promise<T> | T): Promise<T> {
    return this.#holding(path, { ...opts, action: "proxy" }, fn);
  }

  // ---- tokens --------------------------------------------------------------------------

  /**
   * Mints a scoped token for a sub-agent (`secrets:<read|proxy|list|write|*>:<glob>`),
   * covered by this credential's scopes and no longer-lived than it; `withToken(t)` makes a
   * client of it.
   */
  async requestToken(opts: TokenOptions): Promise<ScopedToken> {
    const r = await this._call("tokens.mint", {
      body: {
        scopes: typeof opts.scopes === "string" ? [opts.scopes] : opts.scopes,
        ttl_seconds: opts.ttlSeconds,
        description: opts.description,
        session_id: opts.sessionId,
        task_id: opts.taskId,
        agent_id: opts.agentId,
      },
    });
    return new ScopedToken(r.data as Json);
  }

  /** Revokes a scoped token (by id, or the `ScopedToken`) and every token minted from it. */
  async revokeToken(token: string | ScopedToken): Promise<Json> {
    const r = await this._call("tokens.revoke", { params: { id: typeof token === "string" ? token : token.id } });
    return (r.data ?? {}) as Json;
  }

  // ---- the proxy -----------------------------------------------------------------------

  /** Proxy services (names, endpoints, the secret each injects; never the credential). */
  async listServices(): Promise<ServiceInfo[]> {
    const r = await this._call("services.list");
    return ((r.data as Json[]) ?? []).map(serviceInfo);
  }

  /**
   * Calls `endpoint` of a proxy `service`; the daemon injects the credential, so the caller
   * never holds it, and any echo of it in the answer comes back `[redacted]`. `params` (or
   * `json`/`body`, the same thing) fill the endpoint's path parameters; the rest become the
   * query (GET, DELETE) or the JSON body. With `lease` (an active `proxy` lease) one use of it
   * is spent; without, a single-use proxy lease on `path` (default: the service's secret) is
   * requested, waited for (approval rules apply) and revoked after the call.
   */
  async callService(service: string, endpoint: string, opts: CallServiceOptions = {}): Promise<ProxyResponse> {
    const given = [opts.params, opts.json, opts.body].filter((p) => p !== undefined);
    if (given.length > 1) throw new TypeError("callService: give one of params, json, body");
    const params = given[0] ?? {};
    if (params === null || typeof params !== "object" || Array.isArray(params)) {
      throw new TypeError("callService: params must be an object");
    }
    if (opts.lease !== undefined && opts.path !== undefined) {
      throw new TypeError("callService: give a lease or a path, not both");
    }
    const call = async (leaseId: string) =>
      proxyResponse(
        (await this.#use(
          "proxy.call",
          { params: { service, endpoint }, body: { lease_id: leaseId, params }, signal: opts.signal },
          leaseId,
        )) as Json,
      );
    if (opts.lease !== undefined) return call(leaseIdOf(opts.lease));
    const path = opts.path ?? (await this.#serviceSecret(service));
    return this.withProxyLease(
      path,
      {
        uses: 1,
        reason: opts.reason,
        sessionId: opts.sessionId,
        taskId: opts.taskId,
        waitSeconds: opts.waitSeconds,
        signal: opts.signal,
      },
      (lease) => call(lease.id),
    );
  }

  async #serviceSecret(service: string): Promise<string> {
    const s = (await this.listServices()).find((x) => x.name === service);
    if (!s) throw new LatchkeyError(`no proxy service named ${service}`);
    return "/" + s.secret.replace(/^\/+/, "");
  }
}

function leaseIdOf(lease: string | Lease): string {
  return typeof lease === "string" ? lease : lease.id;
}

/** True when active, false while pending; throws the typed error of a final state. */
function settle(lease: Lease): boolean {
  switch (lease.state) {
    case "active":
      return true;
    case "pending":
      return false;
    case "denied":
      throw new LeaseDenied(lease);
    case "revoked":
      throw new LeaseRevoked(`lease ${lease.id} on ${lease.path} was revoked`, lease);
    case "exhausted":
      throw new LeaseExpired(`lease ${lease.id} on ${lease.path} is used up`, lease);
    case "expired": {
      const why = lease.approval?.state === "expired" ? " (its approval's deadline passed)" : "";
      throw new LeaseExpired(`lease ${lease.id} on ${lease.path} expired${why}`, lease);
    }
    default:
      throw new LeaseExpired(`lease ${lease.id} on ${lease.path} is ${lease.state}`, lease);
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
