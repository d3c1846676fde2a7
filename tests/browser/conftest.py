"""Fixtures: a real daemon (`latchkey serve --dev` on 127.0.0.1:0, approvers alice for
everything and carol for staging/** only) and a headless Debian Chromium driven by Playwright.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

CONFIG = """
[[approvers]]
name = "alice"
patterns = ["**"]

[[approvers]]
name = "carol"
patterns = ["staging/**"]
"""

# Chromium's flags on this machine: no sandbox (root in a container), and nothing that
# reaches for the network on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Daemon:
    addr: str
    admin: str
    proc: subprocess.Popen[bytes]
    workdir: Path

    def api(self, method: str, path: str, token: str | None = None, body: Any = None, timeout: float = 40) -> tuple[int, Any]:
        """One API call; returns (status, JSON body or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.addr + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.admin}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        status, out = self.api(method, path, token, body)
        assert 200 <= status < 300, (status, out)
        return out

    def cli(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LATCHKEY_")}
        env.update(LATCHKEY_ADDR=self.addr, LATCHKEY_TOKEN=self.admin, NO_COLOR="1")
        out = subprocess.run([os.environ["LATCHKEY_BIN"], *args], env=env, capture_output=True, timeout=30, check=True)
        return out.stdout.decode().strip()

    def link(self, approver: str | None = None) -> str:
        """A one-time sign-in URL, from `latchkey console link`."""
        return self.cli("console", "link", *(["--approver", approver] if approver else []))

    def events(self, pattern: str) -> list[dict[str, Any]]:
        return list(self.ok("GET", f"/v1/audit?event={pattern}&limit=1000")["events"])


def _reader(stream: Any, q: queue.Queue[str | None]) -> None:
    for raw in iter(stream.readline, b""):
        q.put(raw.decode("utf-8", "replace").rstrip("\n"))
    q.put(None)


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    with tempfile.TemporaryDirectory(prefix="latchkey-browser-") as tmp:
        workdir = Path(tmp)
        (workdir / "config.toml").write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LATCHKEY_")}
        log = open(workdir / "daemon.log", "ab")
        proc = subprocess.Popen(
            [os.environ["LATCHKEY_BIN"], "serve", "--dev", "--listen", "127.0.0.1:0", "--config", "config.toml"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
        )
        q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
        addr = token = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (addr and token):
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
        if not (addr and token):
            proc.kill()
            raise RuntimeError("the daemon did not start: " + (workdir / "daemon.log").read_text())
        try:
            yield Daemon(addr, token, proc, workdir)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=os.environ["CHROMIUM"], headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    p = Path(os.environ.get("ARTIFACTS", "artifacts"))
    p.mkdir(parents=True, exist_ok=True)
    return p
