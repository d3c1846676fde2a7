"""Unit tests without a daemon: masking, error mapping, request building and the wait loop's
retries, over httpx.MockTransport."""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from latchkey import (
    ENDPOINTS,
    ApiError,
    AsyncLatchkey,
    ConnectionFailed,
    Entries,
    Latchkey,
    Lease,
    LeaseDenied,
    LeaseExpired,
    LeaseRevoked,
    NewAgent,
    ScopedToken,
    Secret,
    WaitTimeout,
)
from latchkey import _core as core
from latchkey.compat import AgentVault

VALUE = "sk-very-secret-0123456789"


def lease_json(state: str = "pending", **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": "L1",
        "state": state,
        "path": "production/x",
        "action": "read",
        "uses": 1,
        "uses_left": 1,
        "ttl_seconds": 300,
        "reason": "r",
        "expires_at": "2026-12-03T23:00:00Z",
        "approval_id": "A1",
        "policy": {"source": "default: tier 2 × sensitive"},
        "approval": {"id": "A1", "state": "pending" if state == "pending" else state,
                     "votes": 0, "votes_needed": 1, "deadline": "x", "decided_by": None},
    }
    d.update(kw)
    return d


def client(handler: Callable[[httpx.Request], httpx.Response]) -> Latchkey:
    return Latchkey("http://lk.test", "lk_agent_abcdef", transport=httpx.MockTransport(handler))


def err(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


# --- masking -----------------------------------------------------------------------------


def test_secret_is_masked() -> None:
    s = Secret("production/x", VALUE)
    for text in (repr(s), str(s), f"{s}", f"{s:>40}", "%s" % s, "{}".format(s), repr([s]), repr({"k": s})):
        assert VALUE not in text
    assert s.value == VALUE
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert s == Secret("other", VALUE) and s != Secret("production/x", "other")


def test_entries_and_bundle_masked() -> None:
    s = Secret.from_json({"entries": {"A": VALUE, "B": "b-val-xyz"}, "lease": lease_json("exhausted")})
    assert isinstance(s.entries, Entries)
    assert s.entries["A"] == VALUE and s.entries.to_dict() == {"A": VALUE, "B": "b-val-xyz"}
    for text in (repr(s), str(s), repr(s.entries), str(s.entries)):
        assert VALUE not in text and "b-val-xyz" not in text
    assert "'A'" in repr(s.entries)
    assert s.path == "production/x" and s.lease_id == "L1"


def test_credentials_masked() -> None:
    tok = ScopedToken({"token": "lk_tok_" + VALUE, "id": "T1", "agent_id": "a", "scopes": ["secrets:read:x/*"],
                       "expires_at": "z"})
    agent = NewAgent({"agent": {"id": "a", "name": "n", "namespace": "entities/a", "trust_tier": 2},
                      "api_key": "lk_agent_" + VALUE})
    c = Latchkey("http://lk.test", "lk_agent_" + VALUE)
    ac = AsyncLatchkey("http://lk.test", "lk_agent_" + VALUE)
    vault = AgentVault(agent_key="lk_agent_" + VALUE, base_url="http://lk.test")
    for obj in (tok, agent, c, ac, vault):
        assert VALUE not in repr(obj) and VALUE not in str(obj) and VALUE not in f"{obj}"
    assert tok.value.endswith(VALUE) and agent.api_key.endswith(VALUE)
    assert "lk_agent_***" in repr(c)
    c.close()


def test_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"kind": "agent"})

    monkeypatch.setenv("LATCHKEY_ADDR", "http://from-env.test:9999/")
    monkeypatch.setenv("LATCHKEY_TOKEN", "lk_agent_fromenv")
    c = Latchkey(transport=httpx.MockTransport(handler))
    assert c.addr == "http://from-env.test:9999"
    c.whoami()
    assert str(seen[0].url) == "http://from-env.test:9999/v1/whoami"
    assert seen[0].headers["authorization"] == "Bearer lk_agent_fromenv"
    monkeypatch.delenv("LATCHKEY_ADDR")
    assert Latchkey().addr == "http://127.0.0.1:8200"


# --- requests ------------------------------------------------------------------------------


def test_build_refuses_undeclared_fields() -> None:
    with pytest.raises(ValueError):
        core.build("lease.request", body={"path": "x", "colour": "red"})
    with pytest.raises(ValueError):
        core.build("lease.get", {"id": "L"}, query={"bogus": 1})
    with pytest.raises(ValueError):
        core.build("lease.secret", {"id": "L"}, body={"x": 1})
    with pytest.raises(ValueError):
        core.build("secret.read", {"path": ""})
    r = core.build("secret.put", {"path": "a/b"}, {"value": "v", "type": None, "if_version": 0})
    assert r.json == {"value": "v", "if_version": 0} and r.method == "PUT"
    for name, ep in ENDPOINTS.items():
        assert ep.method in {"GET", "POST", "PUT", "DELETE", "PATCH"}, name
        assert ep.path.startswith("/v1/"), name


def test_paths_are_sent_as_written() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"value": VALUE, "lease": lease_json("exhausted")})

    c = client(handler)
    c.get_secret("/production/openai/api-key", reason="why")
    c.get_secret("staging/a@b+c=d:e")
    assert seen[0].url.raw_path == b"/v1/secrets//production/openai/api-key/read"
    assert json.loads(seen[0].content) == {"reason": "why"}
    assert seen[1].url.raw_path == b"/v1/secrets/staging/a@b+c=d:e/read"
    assert json.loads(seen[1].content) == {}


# --- errors --------------------------------------------------------------------------------


def test_error_mapping() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/conflict"):
            return err(409, "version_conflict", "version is 3, not 1")
        if req.url.path.endswith("/html"):
            return httpx.Response(502, text="<html>" + VALUE + "</html>")
        return err(503, "shutting_down", "the daemon is stopping", {"retry-after": "5"})

    c = client(handler)
    with pytest.raises(ApiError) as e:
        c.describe_secret("conflict")
    assert (e.value.status, e.value.code, e.value.message) == (409, "version_conflict", "version is 3, not 1")
    assert "409 version_conflict" in str(e.value) and "/v1/secrets/conflict" in str(e.value)
    with pytest.raises(ApiError) as e:
        c.describe_secret("html")
    assert e.value.status == 502 and e.value.code == "http_502" and VALUE not in str(e.value)
    with pytest.raises(ApiError) as e:
        c.describe_secret("x")
    assert e.value.retry_after == 5.0 and e.value.code == "shutting_down"


def test_put_value_never_in_error() -> None:
    c = client(lambda req: err(400, "bad_request", "value may not be empty"))
    with pytest.raises(ApiError) as e:
        c.put_secret("a", VALUE)
    assert VALUE not in str(e.value) and VALUE not in repr(e.value)
    assert e.value.__cause__ is None or VALUE not in str(e.value.__cause__)


def test_connection_failed() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    with pytest.raises(ConnectionFailed) as e:
        client(handler).whoami()
    assert "ConnectError" in str(e.value)


# --- the wait loop ---------------------------------------------------------------------------


def test_wait_retries_408_and_503_honouring_retry_after() -> None:
    answers = [
        err(408, "request_timeout", "request timed out"),
        err(503, "shutting_down", "stopping", {"retry-after": "0"}),
        httpx.Response(200, json=lease_json("pending")),
        httpx.Response(200, json=lease_json("active", uses_left=1)),
    ]
    queries: list[dict[str, str]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        queries.append(dict(req.url.params))
        return answers.pop(0)

    t0 = time.monotonic()
    # given the lease (not its id), every answer above is a long-poll
    lease = client(handler).wait(Lease.from_json(lease_json("pending")), timeout=30)
    assert lease.state == "active"
    assert time.monotonic() - t0 < 5
    assert all(q["seen"] == "pending" for q in queries)
    assert all(1 <= int(q["wait"]) <= 60 for q in queries)


def test_wait_gives_up_after_bounded_retries() -> None:
    calls = 0

    def handler(req: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return err(503, "shutting_down", "stopping", {"retry-after": "0"})

    with pytest.raises(ApiError):
        client(handler).wait(Lease.from_json(lease_json("pending")), timeout=30)
    assert calls == core.MAX_WAIT_RETRIES + 1


def test_poll_seconds_bounds() -> None:
    assert core.poll_seconds(float("inf")) == 60
    assert core.poll_seconds(125.5) == 60
    assert core.poll_seconds(7.9) == 7
    assert core.poll_seconds(0.4) == 0
    assert core.poll_seconds(-1) == 0
    assert core.poll_seconds(float("nan")) == 0


def test_wait_does_not_retry_other_errors() -> None:
    with pytest.raises(ApiError) as e:
        client(lambda r: err(404, "not_found", "no lease L1")).wait(Lease.from_json(lease_json()), timeout=5)
    assert e.value.code == "not_found"


def test_wait_timeout_carries_ids() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        wait = int(req.url.params.get("wait", "0"))
        time.sleep(min(wait, 0.2))
        return httpx.Response(200, json=lease_json("pending"))

    t0 = time.monotonic()
    with pytest.raises(WaitTimeout) as e:
        client(handler).wait(Lease.from_json(lease_json()), timeout=1.2)
    assert 1.1 <= time.monotonic() - t0 < 3
    assert e.value.lease_id == "L1" and e.value.approval_id == "A1"


@pytest.mark.parametrize(
    ("state", "exc"),
    [("denied", LeaseDenied), ("expired", LeaseExpired), ("exhausted", LeaseExpired), ("revoked", LeaseRevoked)],
)
def test_final_states_map_to_errors(state: str, exc: type[Exception]) -> None:
    body = lease_json(state)
    body["approval"]["decided_by"] = "alice" if state == "denied" else None
    with pytest.raises(exc) as e:
        client(lambda r: httpx.Response(200, json=body)).wait(Lease.from_json(lease_json()), timeout=5)
    assert getattr(e.value, "lease_id") == "L1"
    if state == "denied":
        assert isinstance(e.value, LeaseDenied) and e.value.decided_by == "alice"


def test_denial_reason_read_when_the_daemon_gives_it() -> None:
    body = lease_json("denied")
    body["approval"].update({"decided_by": "alice", "decision_reason": "not on a Friday"})
    with pytest.raises(LeaseDenied) as e:
        client(lambda r: httpx.Response(200, json=body)).wait(Lease.from_json(lease_json()), timeout=5)
    assert e.value.reason == "not on a Friday" and "not on a Friday" in str(e.value)


def test_lease_secret_refusals() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "POST" and req.url.path == "/v1/leases/L1/secret":
            return err(410, "expired", "the lease has expired")
        if req.method == "POST":
            return err(409, "lease_not_active", "the lease is denied")
        return httpx.Response(200, json=lease_json("denied"))

    c = client(handler)
    with pytest.raises(LeaseExpired) as e:
        c.lease_secret("L1")
    assert e.value.code == "expired"
    with pytest.raises(LeaseDenied):
        c.lease_secret("L2")


async def _async_wait() -> None:
    answers = [err(408, "request_timeout", "t"), httpx.Response(200, json=lease_json("active"))]
    c = AsyncLatchkey("http://lk.test", "lk_agent_x", transport=httpx.MockTransport(lambda r: answers.pop(0)))
    lease = await c.wait(Lease.from_json(lease_json()), timeout=10)
    assert lease.state == "active"
    await c.aclose()


@pytest.mark.asyncio
async def test_async_wait_retries() -> None:
    await _async_wait()
