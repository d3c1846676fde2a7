"""The asynchronous client: the same API as ``Latchkey``, awaited."""

from __future__ import annotations

import asyncio
import builtins
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from . import _core as core
from ._core import build
from ._errors import ApiError, ConnectionFailed, LatchkeyError, LeaseError, WaitTimeout
from ._models import (
    Approval,
    Entries,
    Lease,
    NewAgent,
    ProxyResponse,
    ScopedToken,
    Secret,
    SecretInfo,
    SecretPage,
    SecretVersion,
    Service,
    VoteResult,
)

__all__ = ["AsyncLatchkey"]

_QUIET_REVOKE = frozenset({404, 409, 410})


class AsyncLatchkey:
    """A client of the Latchkey daemon.

    ``addr`` and ``token`` default to ``LATCHKEY_ADDR`` (else ``http://127.0.0.1:8200``) and
    ``LATCHKEY_TOKEN``. The token is an agent key, a scoped token, an approver token or an
    admin token; each reaches the routes the daemon allows it.
    """

    def __init__(
        self,
        addr: str | None = None,
        token: str | None = None,
        *,
        timeout: float = core.DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._addr = core.env_addr(addr)
        self._token = core.env_token(token)
        self._timeout = timeout
        self._transport = transport
        self._http = httpx.AsyncClient(
            base_url=self._addr,
            headers=core.headers(self._token),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        self.approvals = AsyncApprovals(self)
        self.admin = AsyncAdmin(self)

    @property
    def addr(self) -> str:
        return self._addr

    def __repr__(self) -> str:
        return f"AsyncLatchkey(addr={self._addr!r}, token={core.mask_token(self._token)})"

    def with_token(self, token: str | ScopedToken) -> AsyncLatchkey:
        """A new client for the same daemon acting with another credential (a sub-agent's
        scoped token, an approver token, …)."""
        tok = token.value if isinstance(token, ScopedToken) else token
        return AsyncLatchkey(self._addr, tok, timeout=self._timeout, transport=self._transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncLatchkey:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- transport ------------------------------------------------------------------------

    async def _send(self, req: core.Req) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": req.params or None}
        if req.json is not None:
            kwargs["json"] = req.json
        if req.timeout is not None:
            kwargs["timeout"] = req.timeout
        try:
            return await self._http.request(req.method, req.url, **kwargs)
        except httpx.TransportError as e:
            raise ConnectionFailed(
                f"{req.method} {self._addr}{req.url}: {type(e).__name__}"
            ) from e

    async def _call(self, req: core.Req) -> Any:
        return core.decode(await self._send(req), req)

    # --- identity -------------------------------------------------------------------------

    async def whoami(self) -> dict[str, Any]:
        """The caller's credential: kind, agent, namespace, scopes, expiry."""
        return dict(await self._call(build("whoami")))

    async def status(self) -> dict[str, Any]:
        """Version, readiness and approval channels."""
        return dict(await self._call(build("status")))

    # --- secrets: metadata and writes -----------------------------------------------------

    async def put_secret(
        self,
        path: str,
        value: str | None = None,
        *,
        entries: Mapping[str, str] | None = None,
        type: str | None = None,
        sensitivity: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expires_at: str | None = None,
        max_access_count: int | None = None,
        if_version: int | None = None,
    ) -> SecretInfo:
        """Create or update a secret (``entries`` for an env_bundle). A value makes a new
        version; without one only the metadata changes. ``if_version=0``: must not exist."""
        if entries is not None and type is None:
            type = "env_bundle"
        body = {
            "value": value,
            "entries": dict(entries) if entries is not None else None,
            "type": type,
            "sensitivity": sensitivity,
            "metadata": dict(metadata) if metadata is not None else None,
            "expires_at": expires_at,
            "max_access_count": max_access_count,
            "if_version": if_version,
        }
        return SecretInfo.from_json(await self._call(build("secret.put", {"path": path}, body)))

    async def rotate_secret(self, path: str, value: str, *, if_version: int | None = None) -> SecretInfo:
        """Rotate: store a new value as the next version (metadata unchanged)."""
        return await self.put_secret(path, value, if_version=if_version)

    async def put_env_bundle(
        self,
        path: str,
        entries: Mapping[str, str],
        *,
        sensitivity: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        if_version: int | None = None,
    ) -> SecretInfo:
        """Store an env_bundle (KEY → VALUE entries)."""
        return await self.put_secret(
            path,
            entries=entries,
            type="env_bundle",
            sensitivity=sensitivity,
            metadata=metadata,
            if_version=if_version,
        )

    async def describe_secret(self, path: str, *, include_deleted: bool | None = None) -> SecretInfo:
        """Metadata only, never the value."""
        req = build("secret.describe", {"path": path}, query={"include_deleted": include_deleted})
        return SecretInfo.from_json(await self._call(req))

    async def list_secrets(
        self,
        prefix: str | None = None,
        *,
        after: str | None = None,
        limit: int | None = None,
        include_deleted: bool | None = None,
    ) -> SecretPage:
        """One page of secrets (metadata); pass ``page.next`` as ``after`` for the next."""
        q = {"prefix": prefix, "after": after, "limit": limit, "include_deleted": include_deleted}
        data = await self._call(build("secret.list", query=q))
        return SecretPage(
            secrets=[SecretInfo.from_json(s) for s in data.get("secrets") or []],
            next=data.get("next"),
        )

    async def iter_secrets(
        self, prefix: str | None = None, *, include_deleted: bool | None = None, max_pages: int = 1000
    ) -> AsyncIterator[SecretInfo]:
        """Every secret under ``prefix``, page after page (at most ``max_pages`` pages)."""
        after: str | None = None
        for _ in range(max_pages):
            page = await self.list_secrets(prefix, after=after, include_deleted=include_deleted)
            for item in page.secrets:
                yield item
            if not page.next:
                return
            after = page.next

    async def delete_secret(self, path: str) -> SecretInfo:
        """Soft delete (``restore_secret`` brings it back)."""
        return SecretInfo.from_json(await self._call(build("secret.delete", {"path": path})))

    async def restore_secret(self, path: str) -> SecretInfo:
        return SecretInfo.from_json(await self._call(build("secret.restore", {"path": path})))

    async def rollback_secret(self, path: str, version: int, *, if_version: int | None = None) -> SecretInfo:
        """That version's value becomes current, as a new version."""
        req = build("secret.rollback", {"path": path}, {"version": version, "if_version": if_version})
        return SecretInfo.from_json(await self._call(req))

    async def secret_versions(self, path: str) -> list[SecretVersion]:
        data = await self._call(build("secret.versions", {"path": path}))
        return [SecretVersion.from_json(v) for v in data.get("versions") or []]

    # --- secrets: values ------------------------------------------------------------------

    async def get_secret(
        self,
        path: str,
        *,
        reason: str = "",
        keys: Sequence[str] | None = None,
        wait: float = core.DEFAULT_WAIT,
    ) -> Secret:
        """Read a secret's value through a single-use lease (``POST /v1/secrets/{path}/read``).

        When the lease needs an approval, waits for it (long-polls) up to ``wait`` seconds in
        all; then raises ``WaitTimeout`` (the lease stays pending: ``wait(e.lease_id)`` goes
        on), ``LeaseDenied`` or ``LeaseExpired``.
        """
        req = build("secret.read", {"path": path}, {"reason": reason or None, "keys": _keys(keys)})
        resp = await self._send(req)
        data = core.decode(resp, req)
        if resp.status_code == 200:
            return Secret.from_json(data, path)
        lease = await self.wait(Lease.from_json(data), timeout=wait)
        return await self.lease_secret(lease)

    async def get_env_bundle(
        self,
        path: str,
        *,
        reason: str = "",
        keys: Sequence[str] | None = None,
        wait: float = core.DEFAULT_WAIT,
    ) -> Entries:
        """The entries of an env_bundle (only ``keys`` when given), read as ``get_secret``."""
        secret = await self.get_secret(path, reason=reason, keys=keys, wait=wait)
        if secret.entries is None:
            raise LatchkeyError(f"{path} is not an env_bundle")
        return secret.entries

    # --- leases ---------------------------------------------------------------------------

    async def request_lease(
        self,
        path: str,
        *,
        action: str = "read",
        ttl_seconds: int | None = None,
        uses: int | None = None,
        keys: Sequence[str] | None = None,
        reason: str = "",
        session_id: str | None = None,
        task_id: str | None = None,
    ) -> Lease:
        """Ask for a lease (``action`` ``read`` or ``proxy``): active at once, or pending
        with its approval. ``wait`` it, then ``lease_secret`` or ``call_service``."""
        body = {
            "path": path,
            "action": action,
            "ttl_seconds": ttl_seconds,
            "uses": uses,
            "keys": _keys(keys),
            "reason": reason or None,
            "session_id": session_id,
            "task_id": task_id,
        }
        return Lease.from_json(await self._call(build("lease.request", body=body)))

    async def get_lease(self, lease: Lease | str) -> Lease:
        return Lease.from_json(await self._call(build("lease.get", {"id": core.lease_id_of(lease)})))

    async def list_leases(
        self, *, state: str | None = None, limit: int | None = None, before: str | None = None
    ) -> list[Lease]:
        data = await self._call(build("lease.list", query={"state": state, "limit": limit, "before": before}))
        return [Lease.from_json(x) for x in data or []]

    async def wait(self, lease: Lease | str, timeout: float = core.DEFAULT_WAIT) -> Lease:
        """Wait until the lease is decided: return it once ``active``; raise ``LeaseDenied``,
        ``LeaseExpired`` or ``LeaseRevoked`` when it ends, ``WaitTimeout`` when ``timeout``
        seconds pass first. Long-polls ``GET /v1/leases/{id}?wait=N&seen=STATE``, and rides
        out 408, 429, 503 (``Retry-After`` honoured) and dropped connections, bounded."""
        start = time.monotonic()
        deadline = start + max(0.0, timeout)
        cur = lease if isinstance(lease, Lease) else await self.get_lease(lease)
        failures = 0
        while True:
            if core.settle(cur) is not None:
                return cur
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(cur, time.monotonic() - start)
            secs = core.poll_seconds(remaining)
            if secs == 0:
                await asyncio.sleep(remaining)  # the last fraction of a second, then one last look
            req = build(
                "lease.get",
                {"id": cur.id},
                query={"wait": secs, "seen": cur.state},
                timeout=secs + core.POLL_GRACE,
            )
            asked = time.monotonic()
            try:
                cur = Lease.from_json(await self._call(req))
                failures = 0
            except (ApiError, ConnectionFailed) as e:
                if not (isinstance(e, ConnectionFailed) or core.retryable(e)):
                    raise
                failures += 1
                if failures > core.MAX_WAIT_RETRIES:
                    raise
                await asyncio.sleep(core.retry_delay(e, failures, deadline - time.monotonic()))
                continue
            if cur.state == "pending" and secs > 0 and time.monotonic() - asked < 0.05:
                await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    async def lease_secret(self, lease: Lease | str) -> Secret:
        """One use of an active read lease: the value (or an env_bundle's allowed entries)."""
        lid = core.lease_id_of(lease)
        data = await self._use(build("lease.secret", {"id": lid}), lid)
        return Secret.from_json(data, lease.path if isinstance(lease, Lease) else "")

    async def revoke_lease(self, lease: Lease | str, *, reason: str | None = None) -> Lease:
        """Revoke a lease (a pending one's approval is cancelled)."""
        req = build("lease.revoke", {"id": core.lease_id_of(lease)}, query={"reason": reason})
        return Lease.from_json(await self._call(req))

    async def _use(self, req: core.Req, lid: str) -> Any:
        """A call that uses a lease, its refusals turned into the typed lease errors."""
        try:
            return await self._call(req)
        except ApiError as e:
            if e.status == 410:
                raise core.expired_error(e, lid) from None
            if e.code == "lease_not_active":
                cur = await self.get_lease(lid)
                if core.settle(cur) is None:
                    raise LeaseError(f"lease {lid} is still pending: wait for it first", cur) from None
            raise

    async def _revoke_quietly(self, lid: str, failing: bool) -> None:
        try:
            await self.revoke_lease(lid, reason="released by the Python SDK")
        except ApiError as e:
            if e.status in _QUIET_REVOKE or failing:
                return
            raise
        except ConnectionFailed:
            if not failing:
                raise

    @asynccontextmanager
    async def lease(
        self,
        path: str,
        *,
        reason: str = "",
        ttl_seconds: int | None = None,
        uses: int | None = None,
        keys: Sequence[str] | None = None,
        wait: float = core.DEFAULT_WAIT,
        session_id: str | None = None,
        task_id: str | None = None,
    ) -> AsyncIterator[Secret]:
        """``with lk.lease(path, reason=…) as secret:`` — request a read lease, wait for its
        approval, read the value, and revoke the lease on exit (also when waiting fails)."""
        lz = await self.request_lease(
            path,
            action="read",
            ttl_seconds=ttl_seconds,
            uses=uses,
            keys=keys,
            reason=reason,
            session_id=session_id,
            task_id=task_id,
        )
        failing = True
        try:
            secret = await self.lease_secret(await self.wait(lz, timeout=wait))
            yield secret
            failing = False
        finally:
            await self._revoke_quietly(lz.id, failing or sys.exc_info()[0] is not None)

    @asynccontextmanager
    async def proxy_lease(
        self,
        path: str,
        *,
        reason: str = "",
        ttl_seconds: int | None = None,
        uses: int | None = None,
        wait: float = core.DEFAULT_WAIT,
        session_id: str | None = None,
        task_id: str | None = None,
    ) -> AsyncIterator[Lease]:
        """``with lk.proxy_lease(path) as lease:`` — an active ``proxy`` lease for
        ``call_service(…, lease=lease)``, revoked on exit."""
        lz = await self.request_lease(
            path,
            action="proxy",
            ttl_seconds=ttl_seconds,
            uses=uses,
            reason=reason,
            session_id=session_id,
            task_id=task_id,
        )
        failing = True
        try:
            active = await self.wait(lz, timeout=wait)
            yield active
            failing = False
        finally:
            await self._revoke_quietly(lz.id, failing or sys.exc_info()[0] is not None)

    # --- tokens ---------------------------------------------------------------------------

    async def request_token(
        self,
        scopes: str | Sequence[str],
        *,
        ttl_seconds: int | None = None,
        description: str | None = None,
        session_id: str | None = None,
        task_id: str | None = None,
        agent_id: str | None = None,
    ) -> ScopedToken:
        """Mint a scoped token for a sub-agent (``secrets:<read|proxy|list|write|*>:<glob>``),
        covered by this credential's scopes and no longer-lived than it."""
        body = {
            "scopes": [scopes] if isinstance(scopes, str) else list(scopes),
            "ttl_seconds": ttl_seconds,
            "description": description,
            "session_id": session_id,
            "task_id": task_id,
            "agent_id": agent_id,
        }
        return ScopedToken(await self._call(build("token.mint", body=body)))

    async def revoke_token(self, token: ScopedToken | str) -> dict[str, Any]:
        """Revoke a scoped token (by id, or the ``ScopedToken``) and the tokens minted from it."""
        tid = token.id if isinstance(token, ScopedToken) else token
        return dict(await self._call(build("token.delete", {"id": tid})))

    # --- proxy ----------------------------------------------------------------------------

    async def list_services(self) -> list[Service]:
        return [Service.from_json(s) for s in await self._call(build("service.list")) or []]

    async def call_service(
        self,
        service: str,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        *,
        json: Mapping[str, Any] | None = None,
        lease: Lease | str | None = None,
        path: str | None = None,
        reason: str = "",
        wait: float = core.DEFAULT_WAIT,
    ) -> ProxyResponse:
        """Call ``endpoint`` of a proxy ``service`` with the credential injected by the daemon.

        ``params`` (or ``json``, the same thing) fill the endpoint's path parameters; the rest
        become the query (GET, DELETE) or the JSON body. With ``lease`` (an active ``proxy``
        lease) one use of it is spent; without, a single-use proxy lease on ``path`` (default:
        the service's secret) is requested, waited for and revoked after the call.
        """
        if params is not None and json is not None:
            raise ValueError("give params or json, not both")
        p = dict(params if params is not None else json or {})
        if lease is not None:
            return await self._proxy(service, endpoint, core.lease_id_of(lease), p)
        secret_path = path if path is not None else await self._service_secret(service)
        async with self.proxy_lease(secret_path, reason=reason, uses=1, wait=wait) as lz:
            return await self._proxy(service, endpoint, lz.id, p)

    async def _proxy(self, service: str, endpoint: str, lid: str, params: dict[str, Any]) -> ProxyResponse:
        req = build(
            "proxy.call",
            {"service": service, "endpoint": endpoint},
            {"lease_id": lid, "params": params},
        )
        return ProxyResponse.from_json(await self._use(req, lid))

    async def _service_secret(self, service: str) -> str:
        for s in await self.list_services():
            if s.name == service:
                return "/" + s.secret.lstrip("/")
        raise LatchkeyError(f"no proxy service named {service!r}")


def _keys(keys: Sequence[str] | None) -> list[str] | None:
    if keys is None:
        return None
    if isinstance(keys, str):
        return [keys]
    return list(keys)


def _approval_id(approval: Approval | Lease | str) -> str:
    if isinstance(approval, Approval):
        return approval.id
    if isinstance(approval, Lease):
        if not approval.approval_id:
            raise LatchkeyError(f"lease {approval.id} has no approval")
        return approval.approval_id
    return approval


class AsyncApprovals:
    """Approvals, for approver tokens (and the admin where ``admin_is_approver``)."""

    def __init__(self, client: AsyncLatchkey) -> None:
        self._c = client

    async def list(
        self, *, state: str = "pending", limit: int | None = None, before: str | None = None
    ) -> builtins.list[Approval]:
        """Approvals newest first (``state`` ``pending`` or ``all``)."""
        data = await self._c._call(build("approval.list", query={"state": state, "limit": limit, "before": before}))
        return [Approval.from_json(a) for a in data or []]

    async def get(self, approval: Approval | Lease | str) -> Approval:
        return Approval.from_json(await self._c._call(build("approval.get", {"id": _approval_id(approval)})))

    async def vote(self, approval: Approval | Lease | str, decision: str, reason: str | None = None) -> VoteResult:
        req = build("approval.vote", {"id": _approval_id(approval)}, {"decision": decision, "reason": reason})
        return VoteResult.from_json(await self._c._call(req))

    async def approve(self, approval: Approval | Lease | str, reason: str | None = None) -> VoteResult:
        return await self.vote(approval, "approve", reason)

    async def deny(self, approval: Approval | Lease | str, reason: str | None = None) -> VoteResult:
        return await self.vote(approval, "deny", reason)


class AsyncAdmin:
    """A few admin calls, enough to set up agents, grants, approvers and services."""

    def __init__(self, client: AsyncLatchkey) -> None:
        self._c = client

    async def create_agent(self, name: str, *, trust_tier: int | None = None, description: str | None = None) -> NewAgent:
        body = {"name": name, "trust_tier": trust_tier, "description": description}
        return NewAgent(await self._c._call(build("agent.create", body=body)))

    async def create_grant(
        self,
        pattern: str,
        actions: Sequence[str],
        *,
        agent_id: str | None = None,
        namespace: str | None = None,
        limits: Mapping[str, Any] | None = None,
        expires_at: str | None = None,
    ) -> dict[str, Any]:
        """Grant ``actions`` on ``pattern`` to one agent or to a namespace (default ``entities``:
        every agent)."""
        if agent_id is not None and namespace is not None:
            raise ValueError("give agent_id or namespace, not both")
        subject = (
            {"kind": "agent", "value": agent_id}
            if agent_id is not None
            else {"kind": "namespace", "value": namespace or "entities"}
        )
        body = {
            "subject": subject,
            "pattern": pattern,
            "actions": list(actions),
            "limits": dict(limits) if limits is not None else None,
            "expires_at": expires_at,
        }
        return dict(await self._c._call(build("grant.create", body=body)))

    async def approver_token(self, name: str) -> str:
        """An API token for the configured approver ``name`` (answered once)."""
        data = await self._c._call(build("approver.token", {"name": name}))
        return str(data["token"])

    async def add_service(
        self,
        service: Mapping[str, Any] | None = None,
        *,
        template: str | None = None,
        name: str | None = None,
        secret: str | None = None,
        base_url: str | None = None,
        allow_private: bool | None = None,
        allowed_agents: Sequence[str] | None = None,
    ) -> Service:
        """Declare a proxy service: in full (``service``) or from a template."""
        body = {
            "service": dict(service) if service is not None else None,
            "template": template,
            "name": name,
            "secret": secret,
            "base_url": base_url,
            "allow_private": allow_private,
            "allowed_agents": list(allowed_agents) if allowed_agents is not None else None,
        }
        return Service.from_json(await self._c._call(build("service.create", body=body)))

    async def delete_service(self, name: str) -> None:
        await self._c._call(build("service.delete", {"name": name}))
