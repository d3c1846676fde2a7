"""What the sync and async clients share: the table of every daemon route the SDK calls
(checked against the daemon's ``/openapi.json`` by the contract test), request building,
error mapping and the decisions of the approval wait loop. No I/O here."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ._errors import (
    ApiError,
    LeaseDenied,
    LeaseExpired,
    LeaseRevoked,
    _retry_after,
)
from ._models import Lease

DEFAULT_ADDR = "http://127.0.0.1:8200"
DEFAULT_TIMEOUT = 30.0
DEFAULT_WAIT = 600.0
# The daemon holds a long-poll at most 60 s (`GET /v1/leases/{id}?wait=N`, N <= 60).
MAX_POLL = 60
# Extra read time over a long-poll's own wait before the client gives up on the answer.
POLL_GRACE = 15.0
# Consecutive retryable failures (408, 429, 503, connection errors) a wait tolerates.
MAX_WAIT_RETRIES = 20
RETRYABLE_STATUS = frozenset({408, 429, 503})


@dataclass(frozen=True)
class Endpoint:
    """One daemon route the SDK calls: method, OpenAPI path template, the JSON body fields
    it may send (``None``: no body) and the query parameters it may send."""

    method: str
    path: str
    body: tuple[str, ...] | None = None
    query: tuple[str, ...] = ()


# Every (method, path, body fields, query) the SDK sends. `build` refuses anything not
# declared here, and tests/test_contract.py checks the table against /openapi.json.
ENDPOINTS: dict[str, Endpoint] = {
    # secrets
    "secret.put": Endpoint(
        "PUT",
        "/v1/secrets/{path}",
        (
            "value",
            "entries",
            "type",
            "sensitivity",
            "metadata",
            "expires_at",
            "max_access_count",
            "if_version",
        ),
    ),
    "secret.describe": Endpoint("GET", "/v1/secrets/{path}", query=("include_deleted",)),
    "secret.list": Endpoint("GET", "/v1/secrets", query=("prefix", "after", "limit", "include_deleted")),
    "secret.delete": Endpoint("DELETE", "/v1/secrets/{path}"),
    "secret.restore": Endpoint("POST", "/v1/secrets/{path}/restore"),
    "secret.rollback": Endpoint("POST", "/v1/secrets/{path}/rollback", ("version", "if_version")),
    "secret.versions": Endpoint("GET", "/v1/secrets/{path}/versions"),
    "secret.read": Endpoint("POST", "/v1/secrets/{path}/read", ("reason", "keys")),
    # leases
    "lease.request": Endpoint(
        "POST",
        "/v1/leases",
        ("path", "action", "ttl_seconds", "uses", "keys", "reason", "session_id", "task_id"),
    ),
    "lease.get": Endpoint("GET", "/v1/leases/{id}", query=("wait", "seen")),
    "lease.list": Endpoint("GET", "/v1/leases", query=("state", "limit", "before")),
    "lease.revoke": Endpoint("DELETE", "/v1/leases/{id}", query=("reason",)),
    "lease.secret": Endpoint("POST", "/v1/leases/{id}/secret"),
    # tokens
    "token.mint": Endpoint(
        "POST",
        "/v1/tokens",
        ("scopes", "ttl_seconds", "description", "session_id", "task_id", "agent_id"),
    ),
    "token.revoke": Endpoint(
        "POST", "/v1/tokens/revoke", ("token_id", "agent_id", "session_id", "task_id", "reason")
    ),
    "token.delete": Endpoint("DELETE", "/v1/tokens/{id}"),
    # proxy
    "proxy.call": Endpoint("POST", "/v1/proxy/{service}/{endpoint}", ("lease_id", "params")),
    "service.list": Endpoint("GET", "/v1/services"),
    "service.create": Endpoint(
        "POST",
        "/v1/services",
        ("template", "name", "secret", "base_url", "allow_private", "allowed_agents", "service"),
    ),
    "service.delete": Endpoint("DELETE", "/v1/services/{name}"),
    # approvals
    "approval.list": Endpoint("GET", "/v1/approvals", query=("state", "limit", "before")),
    "approval.get": Endpoint("GET", "/v1/approvals/{id}"),
    "approval.vote": Endpoint("POST", "/v1/approvals/{id}/votes", ("decision", "reason")),
    # identity
    "whoami": Endpoint("GET", "/v1/whoami"),
    "status": Endpoint("GET", "/v1/status"),
    # admin helpers
    "agent.create": Endpoint("POST", "/v1/agents", ("name", "trust_tier", "description")),
    "grant.create": Endpoint(
        "POST", "/v1/grants", ("subject", "pattern", "actions", "limits", "expires_at")
    ),
    "approver.token": Endpoint("POST", "/v1/approvers/{name}/tokens"),
}

# Path parameters that hold a secret path: its `/` are kept (a leading one makes it absolute).
_PATH_PARAMS = frozenset({"path"})
_SAFE_PATH = "/@+=:"


@dataclass(frozen=True)
class Req:
    """A request ready to send."""

    name: str
    method: str
    url: str
    json: dict[str, Any] | None
    params: dict[str, str]
    timeout: float | None = None


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for key, val in values.items():
        token = "{" + key + "}"
        if token not in out:
            raise ValueError(f"{key!r} is not a parameter of {template}")
        if key in _PATH_PARAMS:
            if not val or val == "/":
                raise ValueError("a secret path may not be empty")
            enc = quote(val, safe=_SAFE_PATH)
        else:
            if not val:
                raise ValueError(f"{key} may not be empty")
            enc = quote(val, safe="")
        out = out.replace(token, enc)
    if "{" in out:
        raise ValueError(f"missing parameters for {template}")
    return out


def _qval(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def build(
    name: str,
    path_params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> Req:
    """A request for the route ``name`` of ``ENDPOINTS``; ``None`` fields are left out.
    Sending a body field or query parameter the table does not declare is a bug: refused."""
    ep = ENDPOINTS[name]
    url = _fill(ep.path, path_params or {})
    json_body: dict[str, Any] | None = None
    if ep.body is not None:
        json_body = {k: v for k, v in (body or {}).items() if v is not None}
        extra = set(json_body) - set(ep.body)
        if extra:
            raise ValueError(f"{name}: undeclared body fields {sorted(extra)}")
    elif body:
        raise ValueError(f"{name} takes no body")
    params = {k: _qval(v) for k, v in (query or {}).items() if v is not None}
    extra_q = set(params) - set(ep.query)
    if extra_q:
        raise ValueError(f"{name}: undeclared query parameters {sorted(extra_q)}")
    return Req(name=name, method=ep.method, url=url, json=json_body, params=params, timeout=timeout)


def api_error(resp: httpx.Response, req: Req | None = None) -> ApiError:
    """The daemon's ``{"error": {"code", "message"}}`` as an ``ApiError`` (a generic one
    when the body is not that shape; the body itself is never copied into the message)."""
    code = f"http_{resp.status_code}"
    message = resp.reason_phrase or "error"
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
        err = data["error"]
        code = str(err.get("code") or code)
        message = str(err.get("message") or message)
    return ApiError(
        resp.status_code,
        code,
        message,
        retry_after=_retry_after(resp.headers),
        method=req.method if req else None,
        path=req.url if req else None,
    )


def decode(resp: httpx.Response, req: Req) -> Any:
    """The JSON of a successful answer, or raise its ``ApiError``."""
    if resp.status_code >= 400:
        raise api_error(resp, req)
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        raise ApiError(resp.status_code, "invalid_response", "the daemon answered with no JSON",
                       method=req.method, path=req.url) from None


def env_addr(addr: str | None) -> str:
    return (addr or os.environ.get("LATCHKEY_ADDR") or DEFAULT_ADDR).rstrip("/")


def env_token(token: str | None) -> str | None:
    return token if token is not None else (os.environ.get("LATCHKEY_TOKEN") or None)


def headers(token: str | None) -> dict[str, str]:
    h = {"accept": "application/json", "user-agent": "latchkey-python/0.1.0"}
    if token:
        h["authorization"] = f"Bearer {token}"
    return h


def mask_token(token: str | None) -> str:
    if not token:
        return "None"
    prefix = token.split("_")[0:2]
    return "'" + "_".join(prefix) + "_***'" if len(prefix) == 2 else "'***'"


# --- the approval wait -------------------------------------------------------------------

def _denial_reason(lease: Lease) -> str | None:
    """The approver's reason, where the lease view carries one. Today's daemon answers an
    agent only ``approval.decided_by`` (see README, "API gaps"); newer fields are read if
    present."""
    appr = lease.raw.get("approval")
    if isinstance(appr, Mapping):
        for key in ("decision_reason", "deny_reason", "reason"):
            v = appr.get(key)
            if isinstance(v, str) and v:
                return v
    for key in ("decision_reason", "deny_reason", "denial_reason"):
        v = lease.raw.get(key)
        if isinstance(v, str) and v:
            return v
    return None


def settle(lease: Lease) -> Lease | None:
    """``lease`` when active, ``None`` while pending; raise the typed error of a final state."""
    if lease.state == "active":
        return lease
    if lease.state == "pending":
        return None
    if lease.state == "denied":
        raise LeaseDenied(
            lease,
            reason=_denial_reason(lease),
            decided_by=lease.approval.decided_by if lease.approval else None,
        )
    if lease.state == "revoked":
        raise LeaseRevoked(f"lease {lease.id} on {lease.path} was revoked", lease)
    if lease.state == "exhausted":
        raise LeaseExpired(f"lease {lease.id} on {lease.path} is used up", lease)
    if lease.state == "expired":
        why = ""
        if lease.approval is not None and lease.approval.state == "expired":
            why = " (its approval's deadline passed)"
        raise LeaseExpired(f"lease {lease.id} on {lease.path} expired{why}", lease)
    raise LeaseExpired(f"lease {lease.id} on {lease.path} is {lease.state}", lease)


def poll_seconds(remaining: float) -> int:
    """The ``wait=`` of the next long-poll: never past the caller's deadline, at most 60."""
    if not remaining > 0:
        return 0
    return max(0, math.floor(min(float(MAX_POLL), remaining)))


def retry_delay(err: Exception, attempt: int, remaining: float) -> float:
    """How long to sleep before polling again after a retryable failure."""
    ra = getattr(err, "retry_after", None)
    delay = float(ra) if ra is not None else min(5.0, 0.25 * (2 ** attempt))
    return max(0.0, min(delay, remaining))


def retryable(err: Exception) -> bool:
    return isinstance(err, ApiError) and err.status in RETRYABLE_STATUS


def expired_error(err: ApiError, lease_id: str) -> LeaseExpired:
    """410 ``expired`` on a use of a lease: past its TTL, ``expires_at`` or ``max_access_count``."""
    return LeaseExpired(f"lease {lease_id}: {err.message}", lease_id=lease_id, code=err.code)


def lease_id_of(lease: Lease | str) -> str:
    return lease if isinstance(lease, str) else lease.id
