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

/** A lease ended without being granted: an approver (or the deadline) denied it. */
export class LeaseDenied extends LatchkeyError {
  readonly lease: Lease;
  readonly leaseId: string;
  readonly approvalId: string | null;
  /** The approver's reason, when the daemon tells the agent (see README "API gaps"). */
  readonly reason: string | null;
  /** Who decided: an approver's name, or `deadline`. */
  readonly decidedBy: string | null;

  constructor(lease: Lease) {
    const by = lease.approval?.decidedBy ?? null;
    const reason = lease.denialReason;
    let msg = `lease ${lease.id} on ${lease.path} was denied`;
    if (by) msg += ` by ${by}`;
    if (reason) msg += `: ${reason}`;
    super(msg);
    this.lease = lease;
    this.leaseId = lease.id;
    this.approvalId = lease.approvalId;
    this.reason = reason;
    this.decidedBy = by;
  }
}

/**
 * A lease is over and can give nothing more: it expired (TTL or approval deadline), was
 * revoked, or its uses are spent (`state` says which).
 */
export class LeaseExpired extends LatchkeyError {
  readonly lease: Lease;
  readonly leaseId: string;
  readonly approvalId: string | null;
  readonly state: string;

  constructor(lease: Lease) {
    super(`lease ${lease.id} on ${lease.path} is ${lease.state}`);
    this.lease = lease;
    this.leaseId = lease.id;
    this.approvalId = lease.approvalId;
    this.state = lease.state;
  }
}

/**
 * The caller's wait bound passed while the lease was still pending. The lease stays pending
 * on the daemon (`wait(lease)` again later, or revoke it); its ids are here.
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

/** The daemon could not be reached, or did not answer in time (no HTTP answer at all). */
export class TransportError extends LatchkeyError {}
