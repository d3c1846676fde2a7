// Errors raised by the SDK. None of them ever carries a secret value: the daemon's error
// messages never contain one, and the SDK only adds ids, states, codes and reasons.

import type { Lease } from "./lease.js";

/** Base class of every error the SDK raises. */
export class LatchkeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The daemon answered with an error: `{"error": {"code": "…", "message": "…"}}`.
 * `code` is one of the daemon's stable codes (`not_found`, `access_denied`,
 * `scope_escalation`, `lease_not_active`, `expired`, `request_timeout`, `shutting_down`, …);
 * when a non-JSON error arrives it is `http_<status>`.
 */
export class ApiError extends LatchkeyError {
  readonly status: number;
  readonly code: string;
  /** The daemon's message, without the status and code prefix. */
  readonly detail: string;
  /** `Retry-After` in seconds, when the daemon sent one (503 `shutting_down`, 429). */
  readonly retryAfter: number | null;
  readonly method: string;
  readonly path: string;

  constructor(
    status: number,
    code: string,
    message: string,
    extra: { retryAfter?: number | null; method?: string; path?: string } = {},
  ) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.detail = message;
    this.retryAfter = extra.retryAfter ?? null;
    this.method = extra.method ?? "";
    this.path = extra.path ?? "";
  }
}

/** A lease ended without giving what was asked for. `lease` is the last view of it (when known). */
export class LeaseError extends LatchkeyError {
  readonly lease: Lease | null;
  readonly leaseId: string;
  readonly approvalId: string | null;
  readonly state: string | null;

  constructor(message: string, lease: Lease | null, leaseId?: string) {
    super(message);
    this.lease = lease;
    this.leaseId = lease?.id ?? leaseId ?? "";
    this.approvalId = lease?.approvalId ?? null;
    this.state = lease?.state ?? null;
  }
}

/** An approver (or the approval's deadline) denied the lease. */
export class LeaseDenied extends LeaseError {
  declare readonly lease: Lease;
  /**
   * The approver's reason, when the daemon shows it to the caller. An agent's view of a
   * lease does not carry it today (see README, "API gaps"); newer fields are read if present.
   */
  readonly reason: string | null;
  /** Who decided: an approver's name, or `deadline`. */
  readonly decidedBy: string | null;

  constructor(lease: Lease) {
    const by = lease.approval?.decidedBy ?? null;
    const reason = lease.denialReason;
    let msg = `lease ${lease.id} on ${lease.path} was denied`;
    if (by) msg += ` by ${by}`;
    if (reason) msg += `: ${reason}`;
    super(msg, lease);
    this.reason = reason;
    this.decidedBy = by;
  }
}

/**
 * The lease (or its approval) ran out: expired (TTL, approval deadline, the secret's
 * `expires_at` or `max_access_count`) or used up. `code` is the daemon's error code when the
 * daemon refused a use (`expired`), else null.
 */
export class LeaseExpired extends LeaseError {
  readonly code: string | null;

  constructor(message: string, lease: Lease | null, opts: { leaseId?: string; code?: string } = {}) {
    super(message, lease, opts.leaseId);
    this.code = opts.code ?? null;
  }
}

/** The lease was revoked (by its agent, an admin, or with its token, session or task). */
export class LeaseRevoked extends LeaseError {}

/**
 * The caller's wait bound passed while the lease was still pending. The lease stays pending
 * on the daemon: `wait(err.leaseId)` goes on waiting (or revoke it).
 */
export class WaitTimeout extends LatchkeyError {
  readonly lease: Lease;
  readonly leaseId: string;
  readonly approvalId: string | null;
  readonly waitedSeconds: number;

  constructor(lease: Lease, waitedSeconds: number) {
    super(
      `lease ${lease.id} on ${lease.path} is still ${lease.state} after ${waitedSeconds.toFixed(1)} s` +
        (lease.approvalId ? ` (approval ${lease.approvalId})` : ""),
    );
    this.lease = lease;
    this.leaseId = lease.id;
    this.approvalId = lease.approvalId;
    this.waitedSeconds = waitedSeconds;
  }
}

/** The daemon could not be reached (connection refused or reset, or no answer in time). */
export class ConnectionFailed extends LatchkeyError {}
