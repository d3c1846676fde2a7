"""A representative "ASS seed" skill: it gets a narrow vault token from its orchestrator
(AGENT_VAULT_KEY), reads the one secret it needs and uses it, without ever printing it.

Written against the AgentVault SDK; only the import line below changed to run on Latchkey.
"""

import asyncio
import hashlib
import hmac
import json
import os
import sys

from latchkey.compat import AgentVault  # was: from agentvault import AgentVault

SECRET_PATH = os.environ.get("SKILL_SECRET_PATH", "skills/weather/api-key")
FORBIDDEN_PATH = os.environ.get("SKILL_FORBIDDEN_PATH", "billing/stripe-key")


def sign(key: str, message: str) -> str:
    # What a skill would do with an API key: sign a request to its upstream.
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


async def main() -> int:
    vault = AgentVault(agent_key=os.environ["AGENT_VAULT_KEY"], base_url=os.environ["AGENT_VAULT_URL"])
    try:
        secret = await vault.get_secret(SECRET_PATH)
        report = {"skill": "weather", "signature": sign(secret.value, "GET /forecast?city=Paris")}
        # The token is scoped to the skill's own secrets: anything else is refused.
        try:
            await vault.get_secret(FORBIDDEN_PATH)
            report["forbidden"] = "read"
        except Exception as e:  # the vault's error type
            report["forbidden"] = getattr(e, "code", type(e).__name__)
        report["repr"] = repr(secret)
    finally:
        await vault.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
