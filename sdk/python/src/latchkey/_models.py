"""The objects the SDK answers with. Anything holding a secret value or a credential masks
it in ``repr`` and ``str``; the raw value is reached only through an explicit attribute."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MASK",
    "ApprovalSummary",
    "Lease",
    "Secret",
    "Entries",
    "SecretInfo",
    "SecretPage",
    "SecretVersion",
    "ScopedToken",
    "Vote",
    "Approval",
    "VoteResult",
    "ProxyResponse",
    "Service",
    "NewAgent",
]

MASK = "***"

PENDING = "pending"
ACTIVE = "active"
FINAL_STATES = frozenset({"exhausted", "expired", "revoked", "denied"})


def _opt_str(d: Mapping[str, Any], key: str) -> str | None:
    v = d.get(key)
    return None if v is None else str(v)


@dataclass(frozen=True)
class ApprovalSummary:
    """The approval part of a lease that needed one."""

    id: str
    state: str
    votes: int
    votes_needed: int
    deadline: str | None
    decided_by: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ApprovalSummary:
        return cls(
            id=str(d["id"]),
            state=str(d.get("state", "")),
            votes=int(d.get("votes") or 0),
            votes_needed=int(d.get("votes_needed") or 0),
            deadline=_opt_str(d, "deadline"),
            decided_by=_opt_str(d, "decided_by"),
            raw=dict(d),
        )


@dataclass(frozen=True)
class Lease:
    """A lease as the daemon shows it (never holds a value)."""

    id: str
    state: str
    path: str
    action: str
    uses: int
    uses_left: int
    ttl_seconds: int
    reason: str
    expires_at: str | None
    approval_id: str | None
    approval: ApprovalSummary | None
    policy_source: str | None
    session_id: str | None
    task_id: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Lease:
        appr = d.get("approval")
        policy = d.get("policy") or {}
        return cls(
            id=str(d["id"]),
            state=str(d.get("state", "")),
            path=str(d.get("path", "")),
            action=str(d.get("action", "read")),
            uses=int(d.get("uses") or 0),
            uses_left=int(d.get("uses_left") or 0),
            ttl_seconds=int(d.get("ttl_seconds") or 0),
            reason=str(d.get("reason", "")),
            expires_at=_opt_str(d, "expires_at"),
            approval_id=_opt_str(d, "approval_id"),
            approval=ApprovalSummary.from_json(appr) if isinstance(appr, Mapping) else None,
            policy_source=_opt_str(policy, "source") if isinstance(policy, Mapping) else None,
            session_id=_opt_str(d, "session_id"),
            task_id=_opt_str(d, "task_id"),
            raw=dict(d),
        )

    @property
    def pending(self) -> bool:
        return self.state == PENDING

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class Entries(Mapping[str, str]):
    """The entries of an env_bundle: a read-only mapping whose ``repr`` shows the keys only."""

    __slots__ = ("_d",)

    def __init__(self, d: Mapping[str, str]) -> None:
        self._d = dict(d)

    def __getitem__(self, key: str) -> str:
        return self._d[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __repr__(self) -> str:
        return "Entries({" + ", ".join(f"{k!r}: {MASK!r}" for k in self._d) + "})"

    __str__ = __repr__

    def to_dict(self) -> dict[str, str]:
        """A plain ``dict`` copy (unmasked: handle with care)."""
        return dict(self._d)


class Secret:
    """A secret value handed out by a lease. ``repr`` and ``str`` are masked;
    ``.value`` gives the value and, for an env_bundle, ``.entries`` the entries."""

    __slots__ = ("_path", "_value", "_entries", "_lease")

    def __init__(
        self,
        path: str,
        value: str | None,
        entries: Mapping[str, str] | None = None,
        lease: Lease | None = None,
    ) -> None:
        self._path = path
        self._value = value
        self._entries = Entries(entries) if entries is not None else None
        self._lease = lease

    @classmethod
    def from_json(cls, d: Mapping[str, Any], path: str = "") -> Secret:
        lease_d = d.get("lease")
        lease = Lease.from_json(lease_d) if isinstance(lease_d, Mapping) else None
        entries = d.get("entries")
        value = d.get("value")
        return cls(
            path=lease.path if lease is not None and lease.path else path,
            value=None if value is None else str(value),
            entries={str(k): "" if v is None else str(v) for k, v in entries.items()}
            if isinstance(entries, Mapping)
            else None,
            lease=lease,
        )

    @property
    def path(self) -> str:
        return self._path

    @property
    def value(self) -> str:
        """The value. An env_bundle has entries instead (``.entries``): ``.value`` raises."""
        if self._value is None:
            from ._errors import LatchkeyError

            raise LatchkeyError(f"{self._path or 'this secret'} is an env_bundle: read .entries")
        return self._value

    @property
    def is_bundle(self) -> bool:
        return self._entries is not None

    @property
    def entries(self) -> Entries | None:
        """The entries of an env_bundle (only the keys the lease allows), else ``None``."""
        return self._entries

    @property
    def lease(self) -> Lease | None:
        """The lease after this use."""
        return self._lease

    @property
    def lease_id(self) -> str | None:
        return self._lease.id if self._lease is not None else None

    def __repr__(self) -> str:
        if self._entries is not None:
            return f"Secret(path={self._path!r}, entries={self._entries!r})"
        return f"Secret(path={self._path!r}, value={MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")

    def __eq__(self, other: object) -> bool:
        # Compare values without exposing them (useful in tests), never equal to a str.
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value and self._entries == other._entries

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class SecretInfo:
    """A secret's metadata (``describe``, ``put``, ``list``): never its value."""

    path: str
    full_path: str
    namespace: str
    type: str
    sensitivity: str
    current_version: int
    latest_version: int
    deleted: bool
    metadata: Mapping[str, Any]
    expires_at: str | None
    access_count: int
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SecretInfo:
        return cls(
            path=str(d.get("path", "")),
            full_path=str(d.get("full_path", "")),
            namespace=str(d.get("namespace", "")),
            type=str(d.get("type", "")),
            sensitivity=str(d.get("sensitivity", "")),
            current_version=int(d.get("current_version") or 0),
            latest_version=int(d.get("latest_version") or 0),
            deleted=bool(d.get("deleted", False)),
            metadata=dict(d.get("metadata") or {}),
            expires_at=_opt_str(d, "expires_at"),
            access_count=int(d.get("access_count") or 0),
            raw=dict(d),
        )


@dataclass(frozen=True)
class SecretPage:
    """One page of ``list_secrets``; pass ``next`` as ``after`` for the next page."""

    secrets: list[SecretInfo]
    next: str | None


@dataclass(frozen=True)
class SecretVersion:
    """One version of a secret (never its value)."""

    version: int
    current: bool
    created_at: str | None
    created_by: str | None
    source: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SecretVersion:
        return cls(
            version=int(d.get("version") or 0),
            current=bool(d.get("current", False)),
            created_at=_opt_str(d, "created_at"),
            created_by=_opt_str(d, "created_by"),
            source=_opt_str(d, "source"),
            raw=dict(d),
        )


class ScopedToken:
    """A scoped token minted by ``request_token``. ``.value`` (alias ``.token``) is the
    bearer credential; ``repr``/``str`` mask it."""

    __slots__ = ("_token", "id", "agent_id", "scopes", "expires_at", "session_id", "task_id")

    def __init__(self, d: Mapping[str, Any]) -> None:
        self._token = str(d["token"])
        self.id = str(d.get("id", ""))
        self.agent_id = str(d.get("agent_id", ""))
        self.scopes: list[str] = [str(s) for s in d.get("scopes") or []]
        self.expires_at = _opt_str(d, "expires_at")
        self.session_id = _opt_str(d, "session_id")
        self.task_id = _opt_str(d, "task_id")

    @property
    def value(self) -> str:
        return self._token

    @property
    def token(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return f"ScopedToken(id={self.id!r}, scopes={self.scopes!r}, expires_at={self.expires_at!r}, token={MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __reduce__(self) -> Any:
        raise TypeError("a ScopedToken cannot be pickled")


@dataclass(frozen=True)
class Vote:
    approver: str
    decision: str
    reason: str | None
    at: str | None
    via: str | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Vote:
        return cls(
            approver=str(d.get("approver", "")),
            decision=str(d.get("decision", "")),
            reason=_opt_str(d, "reason"),
            at=_opt_str(d, "at"),
            via=_opt_str(d, "via"),
        )


@dataclass(frozen=True)
class Approval:
    """An approval as approvers see it (``approvals.list`` / ``approvals.get``)."""

    id: str
    lease_id: str
    state: str
    path: str
    agent_id: str
    agent_name: str
    trust_tier: int
    sensitivity: str
    action: str
    reason: str
    quorum: int
    votes: list[Vote]
    decided_by: str | None
    deadline: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Approval:
        tally = d.get("tally") or {}
        return cls(
            id=str(d["id"]),
            lease_id=str(d.get("lease_id", "")),
            state=str(tally.get("state", "")),
            path=str(d.get("path", "")),
            agent_id=str(d.get("agent_id", "")),
            agent_name=str(d.get("agent_name", "")),
            trust_tier=int(d.get("trust_tier") or 0),
            sensitivity=str(d.get("sensitivity", "")),
            action=str(d.get("action", "")),
            reason=str(d.get("reason", "")),
            quorum=int(tally.get("quorum") or 0),
            votes=[Vote.from_json(v) for v in tally.get("votes") or []],
            decided_by=_opt_str(tally, "decided_by"),
            deadline=_opt_str(tally, "deadline"),
            raw=dict(d),
        )

    @property
    def deny_reason(self) -> str | None:
        """The reason of the first deny vote, if any."""
        for v in self.votes:
            if v.decision == "deny":
                return v.reason
        return None


@dataclass(frozen=True)
class VoteResult:
    """``counted``, ``duplicate``, ``decided`` or ``lapsed``, with the approval and lease after it."""

    result: str
    approval: Approval
    lease: Lease

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> VoteResult:
        return cls(
            result=str(d.get("result", "")),
            approval=Approval.from_json(d["approval"]),
            lease=Lease.from_json(d["lease"]),
        )


@dataclass(frozen=True)
class ProxyResponse:
    """The upstream's answer through the proxy (credential already redacted by the daemon)."""

    status: int
    headers: Mapping[str, Any]
    body: Any
    truncated: bool
    latency_ms: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ProxyResponse:
        return cls(
            status=int(d.get("status") or 0),
            headers=dict(d.get("headers") or {}),
            body=d.get("body"),
            truncated=bool(d.get("truncated", False)),
            latency_ms=int(d.get("latency_ms") or 0),
        )


@dataclass(frozen=True)
class Service:
    name: str
    base_url: str
    secret: str
    endpoints: Mapping[str, Any]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Service:
        return cls(
            name=str(d.get("name", "")),
            base_url=str(d.get("base_url", "")),
            secret=str(d.get("secret", "")),
            endpoints=dict(d.get("endpoints") or {}),
            raw=dict(d),
        )


class NewAgent:
    """A registered agent with its API key (answered once). ``repr`` masks the key."""

    __slots__ = ("id", "name", "namespace", "trust_tier", "_api_key", "raw")

    def __init__(self, d: Mapping[str, Any]) -> None:
        agent = d.get("agent") or {}
        self.id = str(agent.get("id", ""))
        self.name = str(agent.get("name", ""))
        self.namespace = str(agent.get("namespace", ""))
        self.trust_tier = int(agent.get("trust_tier") or 0)
        self._api_key = str(d["api_key"])
        self.raw: Mapping[str, Any] = dict(agent)

    @property
    def api_key(self) -> str:
        return self._api_key

    def __repr__(self) -> str:
        return f"NewAgent(id={self.id!r}, name={self.name!r}, trust_tier={self.trust_tier}, api_key={MASK!r})"

    __str__ = __repr__
