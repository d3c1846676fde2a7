"""Typed errors. None of them ever carries a secret value: messages are built from ids,
states, codes and the daemon's own error message (which the daemon keeps free of values)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Lease

__all__ = [
    "LatchkeyError",
    "ConnectionFailed",
    "ApiError",
    "LeaseError",
    "LeaseDenied",
    "LeaseExpired",
    "LeaseRevoked",
    "WaitTimeout",
]


class LatchkeyError(Exception):
    """Base class of every error the SDK raises."""


class ConnectionFailed(LatchkeyError):
    """The daemon could not be reached (connection refused, reset, or no answer in time)."""


class ApiError(LatchkeyError):
    """The daemon answered with an error: ``{"error": {"code", "message"}}``.

    ``code`` is one of the daemon's stable codes (``not_found``, ``access_denied``,
    ``scope_escalation``, ``version_conflict``, ``lease_not_active``, ``expired``, …).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.method = method
        self.path = path
        where = f" ({method} {path})" if method and path else ""
        super().__init__(f"{status} {code}: {message}{where}")

    def __repr__(self) -> str:
        return f"ApiError(status={self.status}, code={self.code!r}, message={self.message!r})"


class LeaseError(LatchkeyError):
    """A lease ended without giving what was asked for. ``lease`` is the last view of it."""

    def __init__(self, message: str, lease: Lease | None = None, *, lease_id: str | None = None) -> None:
        self.lease = lease
        self.lease_id = lease.id if lease is not None else lease_id
        self.approval_id = lease.approval_id if lease is not None else None
        self.state = lease.state if lease is not None else None
        super().__init__(message)


class LeaseDenied(LeaseError):
    """An approver denied the lease.

    ``decided_by`` names the approver; ``reason`` is the approver's reason when the daemon
    shows it to the caller (an approver or admin client fetches it from the approval; an
    agent's view of a lease does not carry it today, see the README).
    """

    def __init__(
        self,
        lease: Lease,
        *,
        reason: str | None = None,
        decided_by: str | None = None,
    ) -> None:
        self.reason = reason
        self.decided_by = decided_by
        msg = f"lease {lease.id} on {lease.path} was denied"
        if decided_by:
            msg += f" by {decided_by}"
        if reason:
            msg += f": {reason}"
        super().__init__(msg, lease)


class LeaseExpired(LeaseError):
    """The lease (or its approval) ran out: expired, used up, or the secret expired.

    ``code`` is the daemon's error code when the daemon refused a use
    (``expired``, ``lease_not_active``), else ``None``.
    """

    def __init__(
        self,
        message: str,
        lease: Lease | None = None,
        *,
        lease_id: str | None = None,
        code: str | None = None,
    ) -> None:
        self.code = code
        super().__init__(message, lease, lease_id=lease_id)


class LeaseRevoked(LeaseError):
    """The lease was revoked (by its agent, an admin, or with its token, session or task)."""


class WaitTimeout(LatchkeyError):
    """The wait ran out while the lease was still pending. The lease is still there: pass
    ``lease_id`` (or ``lease``) to ``wait`` again to go on waiting."""

    def __init__(self, lease: Lease, waited: float) -> None:
        self.lease = lease
        self.lease_id = lease.id
        self.approval_id = lease.approval_id
        self.waited = waited
        super().__init__(
            f"lease {lease.id} still {lease.state} after {waited:.1f}s"
            + (f" (approval {lease.approval_id})" if lease.approval_id else "")
        )


def _retry_after(headers: Any) -> float | None:
    raw = headers.get("retry-after") if headers is not None else None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None
