"""Fixtures: one real daemon (`latchkey serve --dev` on 127.0.0.1:0) for the whole session,
with an approver `alice` configured, a grant letting every agent read/proxy/list under
`shared/**`, and factories for agents and approver clients.

The binary comes from LATCHKEY_BIN (run-tests.sh sets it from its first argument); without
it, ../../target/debug/latchkey (relative to sdk/python), then /work/bin/latchkey.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from latchkey import Latchkey

SDK_DIR = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def latchkey_bin() -> str:
    env = os.environ.get("LATCHKEY_BIN")
    if env:
        p = Path(env)
        if not p.is_file():
            raise pytest.UsageError(f"LATCHKEY_BIN={env} is not a file")
        return str(p.resolve())
    for cand in (SDK_DIR.parent.parent / "target" / "debug" / "latchkey", Path("/work/bin/latchkey")):
        if cand.is_file():
            return str(cand)
    raise pytest.UsageError("no latchkey binary: set LATCHKEY_BIN")


@dataclass
class Daemon:
    addr: str
    admin_token: str
    approver_token: str
    proc: subprocess.Popen[bytes]
    workdir: Path

    def admin(self) -> Latchkey:
        return Latchkey(self.addr, self.admin_token)

    def approver(self) -> Latchkey:
        return Latchkey(self.addr, self.approver_token)


CONFIG = """
[[approvers]]
name = "alice"
patterns = ["**"]

[[approvers]]
name = "bob"
patterns = ["shared/bob-only/**"]
"""


def _reader(stream: Any, q: queue.Queue[str | None]) -> None:
    # Reads the daemon's stdout to the end, so it never blocks on a full pipe.
    for raw in iter(stream.readline, b""):
        q.put(raw.decode("utf-8", "replace").rstrip("\n"))
    q.put(None)


@dataclass
class Process:
    """A running `latchkey serve --dev` and what it printed."""

    proc: subprocess.Popen[bytes]
    addr: str
    admin_token: str
    log: Any


def start_daemon(workdir: Path, listen: str = "127.0.0.1:0") -> Process:
    """`serve --dev --config config.toml` in ``workdir`` (LATCHKEY_* variables removed);
    waits (bounded) for its export lines and /readyz."""
    if not (workdir / "config.toml").exists():
        (workdir / "config.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCHKEY_")}
    env["NO_COLOR"] = "1"
    log = open(workdir / "daemon.log", "ab")
    proc = subprocess.Popen(
        [latchkey_bin(), "serve", "--dev", "--listen", listen, "--config", "config.toml"],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    q: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    addr = token = ""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = q.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        if line.startswith("export LATCHKEY_ADDR="):
            addr = line.split("=", 1)[1]
        elif line.startswith("export LATCHKEY_TOKEN="):
            token = line.split("=", 1)[1]
        elif line.startswith("# try: curl"):
            break
    if not (addr.startswith("http://127.0.0.1:") and token.startswith("lk_admin_")):
        stop_daemon(proc)
        log.close()
        raise RuntimeError(f"the daemon did not start: {(workdir / 'daemon.log').read_text()[-2000:]}")
    for _ in range(100):  # ready within 10 s
        try:
            if httpx.get(addr + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return Process(proc, addr, token, log)


def stop_daemon(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then wait (bounded); SIGKILL if it is still running."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
    return proc.returncode


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    workdir = tmp_path_factory.mktemp("latchkey")
    p = start_daemon(workdir)
    try:
        with Latchkey(p.addr, p.admin_token) as admin:
            approver_token = admin.admin.approver_token("alice")
            admin.admin.create_grant("shared/**", ["read", "proxy", "list"])
        yield Daemon(p.addr, p.admin_token, approver_token, p.proc, workdir)
    finally:
        stop_daemon(p.proc)
        p.log.close()


@pytest.fixture(scope="session")
def admin(daemon: Daemon) -> Iterator[Latchkey]:
    with daemon.admin() as c:
        yield c


@pytest.fixture(scope="session")
def approver(daemon: Daemon) -> Iterator[Latchkey]:
    with daemon.approver() as c:
        yield c


def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def make_agent(daemon: Daemon, admin: Latchkey) -> Iterator[Callable[..., tuple[Latchkey, str]]]:
    """``make_agent(tier=2)`` → (client, api key) of a new agent; clients closed after the test."""
    clients: list[Latchkey] = []

    def make(tier: int = 2) -> tuple[Latchkey, str]:
        a = admin.admin.create_agent(f"py-{uid()}", trust_tier=tier)
        c = Latchkey(daemon.addr, a.api_key)
        clients.append(c)
        return c, a.api_key

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def agent(make_agent: Callable[..., tuple[Latchkey, str]]) -> Latchkey:
    """A tier-2 agent: standard secrets are instant, sensitive ones wait for an approval."""
    return make_agent(2)[0]


@pytest.fixture
def shared_secret(admin: Latchkey) -> Callable[..., tuple[str, str]]:
    """``shared_secret(sensitivity)`` → (absolute path for an agent, value) of a fresh secret
    under shared/ (which every agent may read through leases)."""

    def make(sensitivity: str = "standard", value: str | None = None) -> tuple[str, str]:
        path = f"shared/t/{uid()}"
        val = value or f"sk-live-{uuid.uuid4().hex}"
        admin.put_secret(path, val, sensitivity=sensitivity)
        return "/" + path, val

    return make


def wait_for_approval(approver: Latchkey, lease_id: str, timeout: float = 10.0) -> str:
    """The id of the pending approval of ``lease_id``, as the approver lists it (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for a in approver.approvals.list(state="pending", limit=100):
            if a.lease_id == lease_id:
                return a.id
        time.sleep(0.05)
    raise AssertionError(f"no pending approval for lease {lease_id}")


# --- a local upstream for the proxy ------------------------------------------------------


@dataclass
class Upstream:
    url: str
    seen: list[dict[str, Any]]


class _EchoHandler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        rec = {
            "method": self.command,
            "path": self.path,
            "authorization": self.headers.get("authorization"),
            "body": body,
        }
        self.seen.append(rec)
        # Echo everything back, the credential included: the daemon must redact it.
        out = json.dumps({"ok": True, **rec}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_DELETE = _answer  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_EchoHandler,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield Upstream(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable
