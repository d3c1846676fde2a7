"""A representative "ASS seed" orchestrator: it holds the agent's key, mints a short-lived
token scoped to what one skill needs, and runs the skill as a sub-process with that token only.

Written against the AgentVault SDK; only the import line below changed to run on Latchkey.
"""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from latchkey.compat import AgentVault  # was: from agentvault import AgentVault

SKILL = Path(__file__).with_name("skill.py")
SKILL_SCOPE = os.environ.get("SKILL_SCOPE", "secrets:read:skills/weather/*")


async def main() -> int:
    base_url = os.environ["AGENT_VAULT_URL"]
    vault = AgentVault(agent_key=os.environ["AGENT_VAULT_KEY"], base_url=base_url)
    try:
        token = await vault.request_token(
            scope=SKILL_SCOPE, ttl_seconds=600, description="weather skill, one run"
        )
    finally:
        await vault.close()
    # The skill sees its own token, never the orchestrator's key.
    env = {k: v for k, v in os.environ.items() if k != "AGENT_VAULT_KEY"}
    env["AGENT_VAULT_KEY"] = token.value
    run = subprocess.run(
        [sys.executable, str(SKILL)], env=env, capture_output=True, text=True, timeout=60
    )
    if run.returncode != 0:
        print(json.dumps({"error": "skill failed", "stderr": run.stderr[-2000:]}))
        return 1
    result = json.loads(run.stdout)
    result["token"] = repr(token)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
