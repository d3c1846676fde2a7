// Leases, approvals and the other records the daemon answers, as camelCase objects. Each keeps
// the daemon's JSON in `raw` for fields the SDK does not name.

/** A lease's state: `pending` until decided, `active` while usable, then one of the ends. */
export type LeaseState = "pending" | "active" | "exhausted" | "expired" | "revoked" | "denied";

/** States a lease never leaves. */
export const FINAL_STATES: ReadonlySet<string> = new Set([
  "exhausted",
  "expired",
  "revoked",
  "denied",
]);

type Json = Record<string, unknown>;

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}
function num(v: unknown): number | null {
  return typeof v === "number" ? v : null;
}

/** The approval part of a pending (or decided) lease. */
export interface ApprovalSummary {
  id: string;
  state: string;
  votes: number;
  votesNeeded: number;
  deadline: string | null;
  decidedBy: string | null;
}

/** A lease as the daemon answered it. */
export class Lease {
  readonly id: string;
  readonly state: LeaseState;
  /** The full path of the secret (`entities/<agent>/…` for the agent's own secrets). */
  readonly path: string;
  readonly action: "read" | "proxy";
  readonly agentId: string | null;
  readonly approvalId: string | null;
  readonly approval: ApprovalSummary | null;
  readonly reason: string;
  readonly ttlSeconds: number | null;
  readonly uses: number | null;
  readonly usesLeft: number | null;
  readonly keys: string[] | null;
  readonly sessionId: string | null;
  readonly taskId: string | null;
  /** Pending: the approval deadline; active: when the lease ends. */
  readonly expiresAt: string | null;
  readonly grantedAt: string | null;
  /** The rule that decided whether an approval was needed, e.g. `default: tier 2 × sensitive`. */
  readonly policySource: string | null;
  readonly raw: Readonly<Json>;

  constructor(raw: Json) {
    this.raw = raw;
    this.id = String(raw.id);
    this.state = String(raw.state) as LeaseState;
    this.path = String(raw.path ?? "");
    this.action = (raw.action === "proxy" ? "proxy" : "read");
    this.agentId = str(raw.agent_id);
    this.approvalId = str(raw.approval_id);
    const a = raw.approval as Json | null | undefined;
    this.approval =
      a && typeof a === "object"
        ? {
            id: String(a.id),
            state: String(a.state),
            votes: num(a.votes) ?? 0,
            votesNeeded: num(a.votes_needed) ?? 0,
            deadline: str(a.deadline),
            decidedBy: str(a.decided_by),
          }
        : null;
    this.reason = str(raw.reason) ?? "";
    this.ttlSeconds = num(raw.ttl_seconds);
    this.uses = num(raw.uses);
    this.usesLeft = num(raw.uses_left);
    this.keys = Array.isArray(raw.keys) ? (raw.keys as string[]) : null;
    this.sessionId = str(raw.session_id);
    this.taskId = str(raw.task_id);
    this.expiresAt = str(raw.expires_at);
    this.grantedAt = str(raw.granted_at);
    const policy = raw.policy as Json | undefined;
    this.policySource = policy ? str(policy.source) : null;
  }

  get pending(): boolean {
    return this.state === "pending";
  }
  get active(): boolean {
    return this.state === "active";
  }
  /** The lease is over (exhausted, expired, revoked or denied). */
  get final(): boolean {
    return FINAL_STATES.has(this.state);
  }

  /**
   * The approver's reason for a denial, when the lease view carries it. The daemon (at the
   * time of writing) shows the agent only `approval.decided_by`; the SDK also looks for
   * `approval.reason` and a deny vote's reason, so it picks the reason up once the daemon
   * answers with it.
   */
  get denialReason(): string | null {
    const a = this.raw.approval as Json | null | undefined;
    if (a && typeof a === "object") {
      for (const k of ["decision_reason", "deny_reason", "reason"]) {
        const v = a[k];
        if (typeof v === "string" && v) return v;
      }
      const tally = a.tally as Json | undefined;
      const votes = Array.isArray(a.votes) ? a.votes : Array.isArray(tally?.votes) ? (tally!.votes as unknown[]) : [];
      for (const v of votes as Json[]) {
        if (v && v.decision === "deny" && typeof v.reason === "string" && v.reason) return v.reason;
      }
    }
    for (const k of ["decision_reason", "deny_reason", "denial_reason"]) {
      const v = this.raw[k];
      if (typeof v === "string" && v) return v;
    }
    return null;
  }

  toJSON(): Json {
    return { ...this.raw };
  }
}

/** A pending or decided approval, as an approver sees it. */
export class Approval {
  readonly id: string;
  readonly leaseId: string;
  readonly agentId: string;
  readonly agentName: string;
  readonly trustTier: number | null;
  readonly path: string;
  readonly namespace: string;
  readonly sensitivity: string;
  readonly action: string;
  /** The agent's reason for asking. */
  readonly reason: string;
  /** `pending`, `approved`, `denied`, `expired`, `auto_granted` or `cancelled`. */
  readonly state: string;
  readonly quorum: number | null;
  readonly deadline: string | null;
  readonly decidedBy: string | null;
  readonly votes: Array<{ approver: string; decision: string; reason: string | null; at: string; via: string }>;
  readonly raw: Readonly<Json>;

  constructor(raw: Json) {
    this.raw = raw;
    this.id = String(raw.id);
    this.leaseId = String(raw.lease_id ?? "");
    this.agentId = String(raw.agent_id ?? "");
    this.agentName = String(raw.agent_name ?? "");
    this.trustTier = num(raw.trust_tier);
    this.path = String(raw.path ?? "");
    this.namespace = String(raw.namespace ?? "");
    this.sensitivity = String(raw.sensitivity ?? "");
    this.action = String(raw.action ?? "");
    this.reason = str(raw.reason) ?? "";
    const t = (raw.tally ?? {}) as Json;
    this.state = String(t.state ?? "");
    this.quorum = num(t.quorum);
    this.deadline = str(t.deadline);
    this.decidedBy = str(t.decided_by);
    this.votes = (Array.isArray(t.votes) ? (t.votes as Json[]) : []).map((v) => ({
      approver: String(v.approver ?? ""),
      decision: String(v.decision ?? ""),
      reason: str(v.reason),
      at: String(v.at ?? ""),
      via: String(v.via ?? ""),
    }));
  }

  toJSON(): Json {
    return { ...this.raw };
  }
}

/** The answer to a vote. */
export interface VoteResult {
  /** `counted`, `duplicate`, `decided` or `lapsed` (the deadline had passed). */
  result: string;
  approval: Approval;
  lease: Lease;
}

/** A secret's metadata (never its value). */
export interface SecretInfo {
  /** The path as the caller addresses it. */
  path: string;
  fullPath: string;
  namespace: string;
  type: string;
  sensitivity: string;
  metadata: Record<string, unknown>;
  expiresAt: string | null;
  maxAccessCount: number | null;
  accessCount: number;
  currentVersion: number;
  latestVersion: number;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  deleted: boolean;
  deletedAt: string | null;
  raw: Readonly<Json>;
}

export function secretInfo(raw: Json): SecretInfo {
  return {
    path: String(raw.path ?? ""),
    fullPath: String(raw.full_path ?? ""),
    namespace: String(raw.namespace ?? ""),
    type: String(raw.type ?? ""),
    sensitivity: String(raw.sensitivity ?? ""),
    metadata: (raw.metadata as Record<string, unknown>) ?? {},
    expiresAt: str(raw.expires_at),
    maxAccessCount: num(raw.max_access_count),
    accessCount: num(raw.access_count) ?? 0,
    currentVersion: num(raw.current_version) ?? 0,
    latestVersion: num(raw.latest_version) ?? 0,
    createdAt: String(raw.created_at ?? ""),
    createdBy: String(raw.created_by ?? ""),
    updatedAt: String(raw.updated_at ?? ""),
    deleted: raw.deleted === true,
    deletedAt: str(raw.deleted_at),
    raw,
  };
}

/** The answer of a proxied call: the upstream's status, headers and body, credential redacted. */
export interface ProxyResponse {
  status: number;
  headers: Record<string, string>;
  /** JSON when the upstream answered JSON, a string when UTF-8 text, else `{base64: …}`. */
  body: unknown;
  truncated: boolean;
  latencyMs: number;
  raw: Readonly<Json>;
}

export function proxyResponse(raw: Json): ProxyResponse {
  return {
    status: num(raw.status) ?? 0,
    headers: (raw.headers as Record<string, string>) ?? {},
    body: raw.body,
    truncated: raw.truncated === true,
    latencyMs: num(raw.latency_ms) ?? 0,
    raw,
  };
}

/** A proxy service as listed (the credential is never part of it). */
export interface ServiceInfo {
  name: string;
  baseUrl: string;
  /** The full path of the secret it injects. */
  secret: string;
  endpoints: Record<string, { method: string; path: string }>;
  raw: Readonly<Json>;
}

export function serviceInfo(raw: Json): ServiceInfo {
  return {
    name: String(raw.name ?? ""),
    baseUrl: String(raw.base_url ?? ""),
    secret: String(raw.secret ?? ""),
    endpoints: (raw.endpoints as ServiceInfo["endpoints"]) ?? {},
    raw,
  };
}
