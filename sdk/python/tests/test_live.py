"""The sync client against the real daemon."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from latchkey import (
    ApiError,
    LatchkeyError,
    Latchkey,
    LeaseDenied,
    LeaseExpired,
    Secret,
    WaitTimeout,
)

from .conftest import Daemon, Upstream, uid, wait_for_approval

SecretMaker = Callable[..., tuple[str, str]]


def assert_masked(obj: object, *values: str) -> None:
    for text in (repr(obj), str(obj), f"{obj}", f"{obj!r}"):
        for v in values:
            assert v not in text, f"secret value shown by {type(obj).__name__}: {text}"


def test_instant_get_secret(agent: Latchkey, shared_secret: SecretMaker) -> None:
    path, value = shared_secret("standard")
    s = agent.get_secret(path, reason="unit test", wait=5)
    assert isinstance(s, Secret)
    assert s.value == value
    assert s.entries is None
    assert s.lease is not None and s.lease.state == "exhausted"  # single use, spent
    assert_masked(s, value)
    assert "***" in repr(s) and str(s) == "***"


def test_pending_then_approved_wait_yields_value(
    agent: Latchkey, approver: Latchkey, shared_secret: SecretMaker
) -> None:
    path, value = shared_secret("sensitive")
    result: dict[str, Any] = {}

    def read() -> None:
        try:
            result["secret"] = agent.get_secret(path, reason="nightly eval", wait=20)
        except BaseException as e:  # noqa: BLE001 - surfaced below
            result["error"] = e

    t = threading.Thread(target=read)
    t.start()
    # The approver sees the pending approval with the agent's reason, and approves it.
    deadline = time.monotonic() + 10
    approval = None
    while approval is None and time.monotonic() < deadline:
        approval = next((a for a in approver.approvals.list() if a.path == path.lstrip("/")), None)
        time.sleep(0.05)
    assert approval is not None, "no pending approval"
    assert approval.reason == "nightly eval" and approval.state == "pending"
    approved_at = time.monotonic()
    vote = approver.approvals.approve(approval, reason="ok")
    assert vote.result == "decided" and vote.approval.state == "approved"
    t.join(timeout=20)
    assert not t.is_alive()
    assert "error" not in result, result.get("error")
    assert result["secret"].value == value
    # the long-poll answered on the vote, not on a later poll
    assert time.monotonic() - approved_at < 5


def test_request_lease_wait_and_read(agent: Latchkey, approver: Latchkey, shared_secret: SecretMaker) -> None:
    path, value = shared_secret("critical")
    lease = agent.request_lease(path, reason="migrate", ttl_seconds=60, uses=2)
    assert lease.state == "pending" and lease.approval_id and lease.approval is not None
    assert lease.policy_source and "critical" in lease.policy_source
    timer = threading.Timer(0.3, lambda: approver.approvals.approve(lease.approval_id or ""))
    timer.start()
    try:
        active = agent.wait(lease, timeout=15)
    finally:
        timer.join(timeout=10)
    assert active.state == "active" and active.uses_left == 2
    assert agent.lease_secret(active).value == value
    second = agent.lease_secret(active.id)
    assert second.value == value and second.lease is not None and second.lease.state == "exhausted"
    with pytest.raises(LeaseExpired) as e:
        agent.lease_secret(active)
    assert e.value.state == "exhausted" and e.value.lease_id == active.id


def test_denial_raises_lease_denied(agent: Latchkey, approver: Latchkey, shared_secret: SecretMaker) -> None:
    path, value = shared_secret("sensitive")
    lease = agent.request_lease(path, reason="please")
    approval_id = wait_for_approval(approver, lease.id)
    vote = approver.approvals.deny(approval_id, reason="not on a Friday")
    assert vote.approval.state == "denied"
    assert vote.approval.deny_reason == "not on a Friday"  # the approver side carries it
    with pytest.raises(LeaseDenied) as e:
        agent.wait(lease, timeout=10)
    err = e.value
    assert err.lease_id == lease.id and err.approval_id == approval_id
    assert err.decided_by == "alice"
    assert "denied by alice" in str(err)
    assert_masked(err, value)
    # get_secret on a denied lease's path: a new lease, denied again
    with pytest.raises(LeaseDenied):
        t = threading.Timer(0.3, lambda: approver.approvals.deny(wait_for_approval(approver, _pending_id(agent, path)), reason="no"))
        t.start()
        try:
            agent.get_secret(path, reason="again", wait=10)
        finally:
            t.join(timeout=10)


def _pending_id(agent: Latchkey, path: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for l in agent.list_leases(state="pending", limit=50):
            if "/" + l.path == path:
                return l.id
        time.sleep(0.05)
    raise AssertionError("no pending lease")


def test_denial_reason_reaches_the_agent(agent: Latchkey, approver: Latchkey, shared_secret: SecretMaker) -> None:
    path, _ = shared_secret("sensitive")
    lease = agent.request_lease(path, reason="please")
    approver.approvals.deny(wait_for_approval(approver, lease.id), reason="not on a Friday")
    with pytest.raises(LeaseDenied) as e:
        agent.wait(lease, timeout=10)
    assert e.value.reason == "not on a Friday"


def test_wait_timeout(agent: Latchkey, approver: Latchkey, shared_secret: SecretMaker) -> None:
    path, value = shared_secret("sensitive")
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout) as e:
        agent.get_secret(path, reason="short", wait=1.5)
    took = time.monotonic() - t0
    assert 1.4 <= took < 6, took
    err = e.value
    assert err.lease_id and err.approval_id
    assert err.lease.state == "pending"
    assert_masked(err, value)
    # wait=0 looks once and gives up at once; the lease is still there to wait on
    t1 = time.monotonic()
    with pytest.raises(WaitTimeout):
        agent.wait(err.lease_id, timeout=0)
    assert time.monotonic() - t1 < 2
    # approve afterwards: waiting again on the same lease now succeeds
    approver.approvals.approve(err.approval_id or "")
    active = agent.wait(err.lease_id, timeout=10)
    assert agent.lease_secret(active).value == value


def test_lease_context_manager_revokes(agent: Latchkey, shared_secret: SecretMaker) -> None:
    path, value = shared_secret("standard")
    with agent.lease(path, reason="ctx", uses=3, ttl_seconds=60) as s:
        assert s.value == value
        lid = s.lease_id
        assert lid is not None
        during = agent.get_lease(lid)
        assert during.state == "active" and during.uses_left == 2
    after = agent.get_lease(lid)
    assert after.state == "revoked"

    # an error inside the block still revokes, and the error is the caller's
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with agent.lease(path, uses=3) as s2:
            lid2 = s2.lease_id
            raise Boom()
    assert lid2 is not None and agent.get_lease(lid2).state == "revoked"


def test_lease_context_manager_revokes_pending_on_timeout(
    agent: Latchkey, approver: Latchkey, shared_secret: SecretMaker
) -> None:
    path, _ = shared_secret("sensitive")
    with pytest.raises(WaitTimeout) as e:
        with agent.lease(path, reason="ctx", wait=1):
            raise AssertionError("not reached")
    lease = agent.get_lease(e.value.lease_id)
    assert lease.state == "revoked"
    assert lease.approval is not None and lease.approval.state == "cancelled"
    assert all(a.lease_id != lease.id for a in approver.approvals.list())


def test_request_token_scoped_and_limited(daemon: Daemon, agent: Latchkey) -> None:
    agent.put_secret("staging/db/password", "pg-pass-123")
    agent.put_secret("prod/db/password", "pg-prod-456")
    tok = agent.request_token(
        ["secrets:read:staging/**"], ttl_seconds=120, description="sub-agent", session_id="run-42", task_id="t-1"
    )
    assert tok.value.startswith("lk_tok_") and tok.token == tok.value
    assert tok.scopes == ["secrets:read:staging/**"] and tok.session_id == "run-42"
    assert_masked(tok, tok.value)
    with agent.with_token(tok) as sub:
        assert_masked(sub, tok.value)
        who = sub.whoami()
        assert who["kind"] == "token" and who["scopes"] == ["secrets:read:staging/**"]
        assert sub.get_secret("staging/db/password").value == "pg-pass-123"
        # outside its scope
        with pytest.raises(ApiError) as e:
            sub.get_secret("prod/db/password")
        assert e.value.status in (403, 404)
        assert "pg-prod-456" not in str(e.value)
        # no write
        with pytest.raises(ApiError) as e:
            sub.put_secret("staging/db/password", "overwrite")
        assert e.value.status == 403
        # cannot mint wider than itself
        with pytest.raises(ApiError) as e:
            sub.request_token("secrets:*:**")
        assert e.value.code == "scope_escalation"
        # a narrower child is fine
        child = sub.request_token("secrets:read:staging/db/*", ttl_seconds=60)
        assert child.value != tok.value
    # revoked: it stops working
    agent.revoke_token(tok)
    with agent.with_token(tok) as sub:
        with pytest.raises(ApiError) as e:
            sub.get_secret("staging/db/password")
        assert e.value.status == 401


def test_env_bundle(agent: Latchkey, admin: Latchkey) -> None:
    entries = {"DB_URL": "postgres://u:pw-777@db/x", "API_KEY": "k-888", "EMPTY": ""}
    info = agent.put_env_bundle("app/env", entries)
    assert info.type == "env_bundle"
    got = agent.get_env_bundle("app/env", reason="boot")
    assert dict(got) == entries
    assert_masked(got, "pw-777", "k-888")
    only = agent.get_env_bundle("app/env", keys=["API_KEY"])
    assert dict(only) == {"API_KEY": "k-888"}
    s = agent.get_secret("app/env")
    assert s.is_bundle and s.entries is not None
    with pytest.raises(LatchkeyError) as e:
        _ = s.value
    assert "env_bundle" in str(e.value)
    assert_masked(s, "pw-777", "k-888")
    agent.put_secret("plain/one", "v-1")
    with pytest.raises(LatchkeyError):
        agent.get_env_bundle("plain/one")


def test_put_describe_list_delete_restore_rotate_rollback(agent: Latchkey) -> None:
    base = f"crud-{uid()}"
    p = f"{base}/api-key"
    created = agent.put_secret(p, "v1-aaa", sensitivity="standard", metadata={"owner": "py"}, if_version=0)
    assert created.current_version == 1 and created.metadata == {"owner": "py"}
    with pytest.raises(ApiError) as e:
        agent.put_secret(p, "v1-again", if_version=0)
    assert e.value.status == 409 and e.value.code == "version_conflict"
    assert "v1-again" not in str(e.value) and "v1-again" not in repr(e.value)
    rotated = agent.rotate_secret(p, "v2-bbb", if_version=1)
    assert rotated.current_version == 2
    assert agent.get_secret(p).value == "v2-bbb"
    desc = agent.describe_secret(p)
    assert desc.path == p and desc.current_version == 2 and desc.namespace.startswith("entities/")
    assert "v2-bbb" not in repr(desc)
    agent.put_secret(f"{base}/other", "o-1")
    page = agent.list_secrets(prefix=base + "/")
    assert sorted(s.path for s in page.secrets) == [p, f"{base}/other"]
    assert [s.path for s in agent.iter_secrets(base + "/")] == [s.path for s in page.secrets]
    versions = agent.secret_versions(p)
    assert [v.version for v in versions] == [1, 2] and versions[-1].current
    rolled = agent.rollback_secret(p, 1)
    assert rolled.current_version == 3
    assert agent.get_secret(p).value == "v1-aaa"
    deleted = agent.delete_secret(p)
    assert deleted.deleted
    with pytest.raises(ApiError) as e:
        agent.describe_secret(p)
    assert e.value.status in (404, 410)
    assert agent.describe_secret(p, include_deleted=True).deleted
    assert p not in [s.path for s in agent.list_secrets(prefix=base + "/").secrets]
    restored = agent.restore_secret(p)
    assert not restored.deleted
    assert agent.get_secret(p).value == "v1-aaa"


def test_call_service_through_proxy(
    admin: Latchkey, agent: Latchkey, approver: Latchkey, upstream: Upstream
) -> None:
    token = f"svc-cred-{uid()}-{uid()}"
    name = f"echo{uid()}"
    admin.put_secret(f"shared/svc/{name}", token, type="token")
    admin.admin.add_service(
        {
            "name": name,
            "base_url": upstream.url,
            "secret": f"shared/svc/{name}",
            "allow_private": True,
            "inject": {"kind": "header", "name": "authorization", "template": "Bearer {secret}"},
            "endpoints": {
                "get_item": {"method": "GET", "path": "/items/{id}"},
                "create": {"method": "POST", "path": "/items"},
            },
        }
    )
    assert name in [s.name for s in agent.list_services()]

    # one call, lease requested, used and revoked by the SDK (the secret path from the service)
    before = len(upstream.seen)
    r = agent.call_service(name, "get_item", {"id": "42", "q": "x y"}, reason="fetch item")
    assert r.status == 200
    assert r.body["path"].startswith("/items/42?") and "q=x" in r.body["path"]
    assert token not in str(r.body) and token not in str(r.headers)
    assert r.body["authorization"] is None or "[redacted]" in r.body["authorization"]
    assert upstream.seen[before]["authorization"] == f"Bearer {token}"  # it did go upstream

    # with an explicit proxy lease: two uses, json body
    with agent.proxy_lease(f"/shared/svc/{name}", uses=2, reason="batch") as lease:
        assert lease.action == "proxy" and lease.state == "active"
        r2 = agent.call_service(name, "create", json={"title": "t"}, lease=lease)
        assert r2.status == 200 and '"title"' in r2.body["body"]
        assert token not in str(r2.body)
        r3 = agent.call_service(name, "create", json={"title": "u"}, lease=lease.id)
        assert r3.status == 200
        with pytest.raises(LeaseExpired):
            agent.call_service(name, "create", json={"title": "v"}, lease=lease)
    # a read lease's holder still never gets the credential from the proxy
    with pytest.raises(LatchkeyError):
        agent.call_service("no-such-service", "x")


def test_approvals_list_and_get(agent: Latchkey, approver: Latchkey, shared_secret: SecretMaker) -> None:
    path, _ = shared_secret("sensitive")
    lease = agent.request_lease(path, reason="look at me", ttl_seconds=30)
    aid = wait_for_approval(approver, lease.id)
    a = approver.approvals.get(aid)
    assert a.lease_id == lease.id and a.reason == "look at me" and a.quorum == 1
    assert a.sensitivity == "sensitive" and a.trust_tier == 2
    assert approver.approvals.get(lease).id == aid  # by lease, too
    # agents cannot list approvals; approvers cannot read secrets
    with pytest.raises(ApiError) as e:
        agent.approvals.list()
    assert e.value.status == 403
    with pytest.raises(ApiError) as e:
        approver.get_secret(path)
    assert e.value.status == 403
    approver.approvals.approve(aid)
    with pytest.raises(ApiError) as e:
        approver.approvals.approve(aid)
    assert e.value.code == "already_decided"
    agent.revoke_lease(lease, reason="done")
    assert agent.get_lease(lease).state == "revoked"


def test_no_secret_in_reprs_or_errors(daemon: Daemon, admin: Latchkey, make_agent: Any) -> None:
    c, key = make_agent(3)
    assert_masked(c, key)
    assert_masked(admin, daemon.admin_token)
    new = admin.admin.create_agent(f"py-{uid()}")
    assert_masked(new, new.api_key)
    with pytest.raises(ApiError) as e:
        Latchkey(daemon.addr, "lk_agent_not-a-real-key-zzz").get_secret("x")
    assert e.value.status == 401 and "not-a-real-key-zzz" not in str(e.value)
    with pytest.raises(ApiError) as e:
        c.put_secret("bad//path", "value-in-error-999")
    assert "value-in-error-999" not in str(e.value) and "value-in-error-999" not in repr(e.value)
