"""A wait rides out the daemon stopping (503 shutting_down with Retry-After, then refused
connections) and goes on when a daemon answers at the same address again."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from latchkey import Latchkey

from .conftest import start_daemon, stop_daemon, uid


def test_wait_survives_a_daemon_restart(tmp_path: Path) -> None:
    first = start_daemon(tmp_path)
    second = None
    try:
        with Latchkey(first.addr, first.admin_token) as admin:
            approver_token = admin.admin.approver_token("alice")
            key = admin.admin.create_agent(f"restart-{uid()}", trust_tier=1).api_key
            admin.put_secret("ops/restart-key", "restart-value-1", sensitivity="sensitive")
            admin.admin.create_grant("ops/**", ["read"])
        agent = Latchkey(first.addr, key)
        lease = agent.request_lease("/ops/restart-key", reason="across a restart")
        assert lease.pending
        result: dict[str, Any] = {}

        def wait() -> None:
            try:
                result["lease"] = agent.wait(lease, timeout=60)
            except BaseException as e:  # noqa: BLE001
                result["error"] = e

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.5)  # the long-poll is held by the daemon
        t0 = time.monotonic()
        assert stop_daemon(first.proc) == 0
        assert time.monotonic() - t0 < 5  # the waiting long-poll did not hold the stop up
        listen = first.addr.removeprefix("http://")
        try:
            second = start_daemon(tmp_path, listen)  # same data, same port
        except RuntimeError as e:  # the port was taken in between: nothing to learn here
            if "in use" in str(e).lower() or "addrinuse" in str(e).lower():
                pytest.skip(f"port {listen} taken by another process")
            raise
        assert second.addr == first.addr
        with Latchkey(second.addr, approver_token) as approver:
            approver.approvals.approve(lease.approval_id or "")
        t.join(timeout=40)
        assert not t.is_alive()
        assert "error" not in result, repr(result.get("error"))
        assert result["lease"].state == "active"
        assert agent.lease_secret(result["lease"]).value == "restart-value-1"
        agent.close()
    finally:
        stop_daemon(first.proc)
        first.log.close()
        if second is not None:
            stop_daemon(second.proc)
            second.log.close()
