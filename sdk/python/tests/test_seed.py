"""The "ASS seed" skills on Latchkey through ``latchkey.compat.AgentVault``: the orchestrator
mints a scoped token for a sub-agent skill, the skill reads its secret with it. Both scripts
run as they are, as separate processes, against the real daemon."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from pathlib import Path

import pytest

from latchkey import Latchkey
from latchkey.compat import AgentVault

from .conftest import Daemon, uid

SEED = Path(__file__).resolve().parent / "seed"


def test_seed_scripts_only_import_latchkey() -> None:
    for script in ("skill.py", "orchestrator.py"):
        lines = [l for l in (SEED / script).read_text().splitlines() if "latchkey" in l.lower()]
        code = [l for l in lines if not l.lstrip().startswith(("#", '"', "Written"))]
        assert code == ["from latchkey.compat import AgentVault  # was: from agentvault import AgentVault"], code


def test_seed_orchestrator_and_skill(daemon: Daemon, admin: Latchkey, python_exe: str) -> None:
    agent = admin.admin.create_agent(f"seed-{uid()}", trust_tier=2)
    value = f"wx-{uid()}{uid()}"
    with Latchkey(daemon.addr, agent.api_key) as lk:
        lk.put_secret("skills/weather/api-key", value)
        lk.put_secret("billing/stripe-key", "sk_live_never_seen")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LATCHKEY_", "AGENT_VAULT_"))}
    env.update({"AGENT_VAULT_URL": daemon.addr, "AGENT_VAULT_KEY": agent.api_key})
    run = subprocess.run(
        [python_exe, str(SEED / "orchestrator.py")], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout)
    expected = hmac.new(value.encode(), b"GET /forecast?city=Paris", hashlib.sha256).hexdigest()
    assert out["skill"] == "weather" and out["signature"] == expected
    assert out["forbidden"] in ("access_denied", "not_found")
    assert value not in run.stdout and value not in run.stderr
    assert "sk_live_never_seen" not in run.stdout
    assert "***" in out["repr"] and "***" in out["token"]
    assert agent.api_key not in run.stdout


@pytest.mark.asyncio
async def test_agent_vault_api(daemon: Daemon, admin: Latchkey) -> None:
    agent = admin.admin.create_agent(f"vault-{uid()}", trust_tier=2)
    async with AgentVault(agent_key=agent.api_key, base_url=daemon.addr) as vault:
        await vault.client.put_secret("a/b", "vault-value-1")
        s = await vault.get_secret("a/b")
        assert s.value == "vault-value-1" and "vault-value-1" not in repr(s)
        tok = await vault.request_token(scope=["secrets:read:a/*"], ttl_seconds=600, description="d")
        assert tok.value.startswith("lk_tok_") and tok.value not in repr(tok)
        assert tok.scopes == ["secrets:read:a/*"]
    async with AgentVault(agent_key=tok.value, base_url=daemon.addr) as sub:
        assert (await sub.get_secret("a/b")).value == "vault-value-1"
