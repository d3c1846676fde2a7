// Latchkey SDK for TypeScript and JavaScript (Node 18+, ESM, no runtime dependencies).

export {
  Latchkey,
  Approvals,
  Admin,
  NewAgent,
  DEFAULT_ADDR,
  DEFAULT_WAIT_SECONDS,
  type FetchLike,
  type LatchkeyOptions,
  type WaitOptions,
  type GetSecretOptions,
  type LeaseOptions,
  type WithLeaseOptions,
  type PutOptions,
  type ListOptions,
  type TokenOptions,
  type CallServiceOptions,
} from "./client.js";
export {
  LatchkeyError,
  ConnectionFailed,
  ApiError,
  LeaseError,
  LeaseDenied,
  LeaseExpired,
  LeaseRevoked,
  WaitTimeout,
} from "./errors.js";
export { Secret, ScopedToken, MASK } from "./secret.js";
export {
  Lease,
  Approval,
  FINAL_STATES,
  type LeaseState,
  type ApprovalSummary,
  type VoteResult,
  type SecretInfo,
  type ProxyResponse,
  type ServiceInfo,
} from "./lease.js";
export { ENDPOINTS, type EndpointSpec, type EndpointName } from "./contract.js";
