"""The async client against the real daemon: the main flows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from latchkey import ApiError, AsyncLatchkey, Latchkey, LeaseDenied, LeaseExpired, WaitTimeout

from .conftest import Daemon, Upstream, uid

SecretMaker = Callable[..., tuple[str, str]]
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def aagent(daemon: Daemon, admin: Latchkey) -> AsyncIterator[AsyncLatchkey]:
    key = admin.admin.create_agent(f"pya-{uid()}", trust_tier=2).api_key
    async with AsyncLatchkey(daemon.addr, key) as c:
        yield c


@pytest_asyncio.fixture
async def aapprover(daemon: Daemon) -> AsyncIterator[AsyncLatchkey]:
    async with AsyncLatchkey(daemon.addr, daemon.approver_token) as c:
        yield c


async def approval_for(approver: AsyncLatchkey, lease_id: str) -> str:
    for _ in range(200):  # 10 s
        for a in await approver.approvals.list(limit=100):
            if a.lease_id == lease_id:
                return a.id
        await asyncio.sleep(0.05)
    raise AssertionError("no pending approval")


async def approval_for_path(approver: AsyncLatchkey, path: str) -> str:
    for _ in range(200):
        for a in await approver.approvals.list(limit=100):
            if a.path == path.lstrip("/"):
                return a.id
        await asyncio.sleep(0.05)
    raise AssertionError("no pending approval")


async def test_async_instant_get_secret(aagent: AsyncLatchkey, shared_secret: SecretMaker) -> None:
    path, value = shared_secret("standard")
    s = await aagent.get_secret(path, reason="async")
    assert s.value == value and value not in repr(s) and value not in str(s)


async def test_async_pending_approve_wait(
    aagent: AsyncLatchkey, aapprover: AsyncLatchkey, shared_secret: SecretMaker
) -> None:
    path, value = shared_secret("sensitive")

    async def approve() -> float:
        aid = await approval_for_path(aapprover, path)
        at = time.monotonic()
        await aapprover.approvals.approve(aid)
        return at

    read = asyncio.create_task(aagent.get_secret(path, reason="async approval", wait=20))
    approved_at = await asyncio.wait_for(approve(), 15)
    secret = await asyncio.wait_for(read, 20)
    assert secret.value == value
    assert time.monotonic() - approved_at < 5


async def test_async_denied(aagent: AsyncLatchkey, aapprover: AsyncLatchkey, shared_secret: SecretMaker) -> None:
    path, _ = shared_secret("sensitive")
    lease = await aagent.request_lease(path, reason="async deny")
    assert lease.pending
    await aapprover.approvals.deny(await approval_for(aapprover, lease.id), reason="nope")
    with pytest.raises(LeaseDenied) as e:
        await aagent.wait(lease, timeout=10)
    assert e.value.decided_by == "alice" and e.value.lease_id == lease.id


async def test_async_wait_timeout(aagent: AsyncLatchkey, shared_secret: SecretMaker) -> None:
    path, _ = shared_secret("critical")
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout) as e:
        await aagent.get_secret(path, wait=1)
    assert 0.9 <= time.monotonic() - t0 < 5
    assert e.value.approval_id
    await aagent.revoke_lease(e.value.lease_id)


async def test_async_lease_context_manager(aagent: AsyncLatchkey, shared_secret: SecretMaker) -> None:
    path, value = shared_secret("standard")
    async with aagent.lease(path, reason="async ctx", uses=2) as s:
        assert s.value == value
        lid = s.lease_id
        assert lid is not None
        assert (await aagent.get_lease(lid)).state == "active"
    assert (await aagent.get_lease(lid)).state == "revoked"


async def test_async_request_token(aagent: AsyncLatchkey, daemon: Daemon) -> None:
    await aagent.put_secret("jobs/key", "job-key-1")
    await aagent.put_secret("other/key", "other-key-1")
    tok = await aagent.request_token("secrets:read:jobs/*", ttl_seconds=60, description="async sub")
    async with aagent.with_token(tok) as sub:
        assert (await sub.get_secret("jobs/key")).value == "job-key-1"
        with pytest.raises(ApiError) as e:
            await sub.get_secret("other/key")
        assert e.value.status in (403, 404)


async def test_async_env_bundle_and_crud(aagent: AsyncLatchkey) -> None:
    await aagent.put_env_bundle("svc/env", {"A": "1-aaa", "B": "2-bbb"})
    assert dict(await aagent.get_env_bundle("svc/env", keys=["B"])) == {"B": "2-bbb"}
    await aagent.put_secret("svc/k", "k1")
    await aagent.rotate_secret("svc/k", "k2")
    assert (await aagent.describe_secret("svc/k")).current_version == 2
    paths = [s.path async for s in aagent.iter_secrets("svc/")]
    assert paths == ["svc/env", "svc/k"]
    assert (await aagent.delete_secret("svc/k")).deleted
    assert not (await aagent.restore_secret("svc/k")).deleted


async def test_async_call_service(
    admin: Latchkey, aagent: AsyncLatchkey, upstream: Upstream
) -> None:
    token = f"async-cred-{uid()}{uid()}"
    name = f"aecho{uid()}"
    admin.put_secret(f"shared/svc/{name}", token, type="token")
    admin.admin.add_service(
        {
            "name": name,
            "base_url": upstream.url,
            "secret": f"shared/svc/{name}",
            "allow_private": True,
            "inject": {"kind": "query", "name": "api_key"},
            "endpoints": {"get_item": {"method": "GET", "path": "/items/{id}"}},
        }
    )
    r = await aagent.call_service(name, "get_item", {"id": "7"}, reason="async proxy")
    assert r.status == 200 and r.body["path"].startswith("/items/7")
    assert token not in str(r.body) and token not in str(r.headers)
    async with aagent.proxy_lease(f"/shared/svc/{name}", uses=1) as lease:
        await aagent.call_service(name, "get_item", {"id": "8"}, lease=lease)
        with pytest.raises(LeaseExpired):
            await aagent.call_service(name, "get_item", {"id": "9"}, lease=lease)
