// Values and credentials that must not leak through logging: String(x), `${x}`,
// JSON.stringify(x), console.log(x) and util.inspect(x) all print a mask. The value is
// reached only through an explicit getter.

import type { Lease } from "./lease.js";

export const MASK = "[REDACTED]";
const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/** A secret value handed out by a lease. `.value` (or `.entries` for env_bundles) reveals it. */
export class Secret {
  readonly #value: string | null;
  readonly #entries: Readonly<Record<string, string>> | null;
  /** The path as asked for. */
  readonly path: string;
  /** The lease that yielded it (after this use). */
  readonly lease: Lease;

  constructor(path: string, value: string | null, entries: Record<string, string> | null, lease: Lease) {
    this.path = path;
    this.#value = value;
    this.#entries = entries ? Object.freeze({ ...entries }) : null;
    this.lease = lease;
  }

  /** The value. For an env_bundle (which has `entries` instead) it throws a TypeError. */
  get value(): string {
    if (this.#value === null) {
      throw new TypeError(`secret ${this.path} is an env_bundle: use .entries`);
    }
    return this.#value;
  }

  /** The entries of an env_bundle (only the keys the lease allows). Other types throw a TypeError. */
  get entries(): Readonly<Record<string, string>> {
    if (this.#entries === null) {
      throw new TypeError(`secret ${this.path} is not an env_bundle: use .value`);
    }
    return this.#entries;
  }

  /** Whether this is an env_bundle (has `entries`). */
  get isBundle(): boolean {
    return this.#entries !== null;
  }

  get leaseId(): string {
    return this.lease.id;
  }

  toString(): string {
    return `Secret(${this.path}: ${MASK})`;
  }

  [Symbol.toPrimitive](): string {
    return this.toString();
  }

  toJSON(): Record<string, unknown> {
    return this.#entries !== null
      ? {
          path: this.path,
          lease_id: this.lease.id,
          entries: Object.fromEntries(Object.keys(this.#entries).map((k) => [k, MASK])),
        }
      : { path: this.path, lease_id: this.lease.id, value: MASK };
  }

  [INSPECT](): string {
    return this.toString();
  }
}

/** A scoped token minted with `requestToken`. `.token` is the bearer credential. */
export class ScopedToken {
  readonly #token: string;
  readonly id: string;
  readonly agentId: string;
  readonly scopes: string[];
  readonly expiresAt: string;
  readonly sessionId: string | null;
  readonly taskId: string | null;

  constructor(raw: Record<string, unknown>) {
    this.#token = String(raw.token);
    this.id = String(raw.id);
    this.agentId = String(raw.agent_id ?? "");
    this.scopes = Array.isArray(raw.scopes) ? (raw.scopes as string[]) : [];
    this.expiresAt = String(raw.expires_at ?? "");
    this.sessionId = typeof raw.session_id === "string" ? raw.session_id : null;
    this.taskId = typeof raw.task_id === "string" ? raw.task_id : null;
  }

  /** The `lk_tok_…` bearer credential: hand it to the sub-agent. */
  get token(): string {
    return this.#token;
  }

  toString(): string {
    return `ScopedToken(${this.id}: ${MASK})`;
  }

  [Symbol.toPrimitive](): string {
    return this.toString();
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      agent_id: this.agentId,
      scopes: this.scopes,
      expires_at: this.expiresAt,
      session_id: this.sessionId,
      task_id: this.taskId,
      token: MASK,
    };
  }

  [INSPECT](): string {
    return this.toString();
  }
}
