"""A drop-in for skills written against the ``AgentVault`` vault SDK (the "ASS seed" skills).

Only the import line of such a skill changes::

    from latchkey.compat import AgentVault

    vault = AgentVault(agent_key=os.environ["AGENT_VAULT_KEY"], base_url=os.environ["AGENT_VAULT_URL"])
    secret = await vault.get_secret("skills/weather/api-key")          # .value
    token = await vault.request_token(scope="secrets:read:skills/weather/*",
                                      ttl_seconds=600, description="weather skill")  # .value

``get_secret`` reads through a single-use Latchkey lease and waits for an approval when the
secret needs one; ``request_token`` mints a Latchkey scoped token (scopes in Latchkey's
``secrets:<action>:<glob>`` syntax). Everything else is on ``vault.client``, an
``AsyncLatchkey``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _core as core
from ._async import AsyncLatchkey
from ._models import ScopedToken, Secret

__all__ = ["AgentVault"]


class AgentVault:
    """``AgentVault(agent_key=…, base_url=…)`` over ``AsyncLatchkey``. ``agent_key`` is a
    Latchkey agent key or scoped token (default ``LATCHKEY_TOKEN``), ``base_url`` the
    daemon's address (default ``LATCHKEY_ADDR``)."""

    def __init__(
        self,
        agent_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = core.DEFAULT_TIMEOUT,
        wait: float = core.DEFAULT_WAIT,
        **_ignored: Any,
    ) -> None:
        self._client = AsyncLatchkey(base_url, agent_key, timeout=timeout)
        self._wait = wait

    @property
    def client(self) -> AsyncLatchkey:
        """The underlying ``AsyncLatchkey``."""
        return self._client

    def __repr__(self) -> str:
        return f"AgentVault({self._client!r})"

    async def get_secret(
        self, path: str, *, reason: str = "", wait: float | None = None, **_ignored: Any
    ) -> Secret:
        """The secret (``.value``; ``.entries`` for an env_bundle), masked in ``repr``."""
        return await self._client.get_secret(
            path, reason=reason, wait=self._wait if wait is None else wait
        )

    async def request_token(
        self,
        scope: str | Sequence[str] | None = None,
        ttl_seconds: int | None = 600,
        description: str | None = None,
        *,
        scopes: Sequence[str] | None = None,
        session_id: str | None = None,
        task_id: str | None = None,
    ) -> ScopedToken:
        """A scoped token for a sub-agent (``.value`` is the bearer token)."""
        wanted: list[str] = []
        if scope is not None:
            wanted += [scope] if isinstance(scope, str) else list(scope)
        if scopes is not None:
            wanted += list(scopes)
        if not wanted:
            raise ValueError("request_token needs a scope")
        return await self._client.request_token(
            wanted,
            ttl_seconds=ttl_seconds,
            description=description,
            session_id=session_id,
            task_id=task_id,
        )

    async def close(self) -> None:
        await self._client.aclose()

    aclose = close

    async def __aenter__(self) -> AgentVault:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
