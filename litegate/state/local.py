"""LocalState: everything in this process, as litegate has always done without a `state` section.

Limits and budgets are the in-memory Limits; cooldowns, sessions and the search cache stay in
their own in-process stores (this backend shares nothing, so get/put are no-ops).
"""

from __future__ import annotations

from typing import Any

from litegate.config import Config, Key
from litegate.core.limits import Limits
from litegate.state.base import Admission, Spent


class LocalState:
    kind = "local"

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def admit(self, key: Key | None, request_id: str) -> Admission:
        if key is None:
            return Admission()
        self.limits.admit(key)
        return Admission(None, self.limits.headers(key))

    def settle(self, spent: Spent) -> None:
        if spent.admitted is not None:
            self.limits.settle(spent.admitted, spent.prompt + spent.completion, spent.cost)

    async def snapshot(self, cfg: Config) -> list[dict[str, Any]]:
        return self.limits.snapshot(cfg)

    def status(self) -> dict[str, Any]:
        return {"backend": "local", "shared": False, "up": True}

    async def team_usage(self, since: float, until: float | None, group_by: str | None) -> dict[str, Any] | None:
        return None

    def cooled(self, dep_id: str, until: float, error: str | None) -> None:
        pass

    async def get(self, space: str, name: str) -> bytes | None:
        return None

    async def put(self, space: str, name: str, value: bytes, ttl_s: float) -> None:
        pass

    async def delete(self, space: str, name: str) -> bool:
        return False
