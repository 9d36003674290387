"""The state seam: what a state backend offers the app, and what a finished request hands it.

Two backends implement it (litegate.state.STATE_BACKENDS): `local` keeps everything in this
process (litegate's behaviour without a `state` section), `redis` shares it with other instances.
The app owns one backend (Services.state); nothing here is a module global.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from litegate.config import Config, Key

# A cooldown another instance saw: (deployment id, until as a unix time, last error). Handed in by
# the app so that this layer never imports core.backends.
CooldownSink = Callable[[str, float, "str | None"], None]


@dataclass(frozen=True, slots=True)
class Admission:
    """A request counted in: its shared concurrency lease (None when counted locally) and the
    x-ratelimit-* headers for the answer."""

    lease: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Spent:
    """What a finished model request used, for limits, budgets and team usage."""

    at: float  # unix time the request arrived (the usage row's time)
    key: str  # the principal's name ("anonymous" without keys)
    admitted: str | None  # the key whose limits counted it in, if any
    lease: str | None
    model: str
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    cost: float = 0.0
    error: bool = False


@dataclass(frozen=True, slots=True)
class Seed:
    """This instance's own counts (from its SQLite log, or its Tally), as published to Redis.

    day/month: key name -> (tokens, cost) since the start of today / this month (local time).
    hours: hour start (unix, UTC-aligned) -> {field: value}, the same fields `settle` counts.
    """

    day: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    month: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    hours: Mapping[int, Mapping[str, float]] = field(default_factory=dict)


SeedSource = Callable[[float], Awaitable[Seed]]  # the log's sums of requests that arrived before a moment


class StateBackend(Protocol):
    kind: str  # "local" | "redis"

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def admit(self, key: Key | None, request_id: str) -> Admission:
        """Count a model request in (RateLimited at a limit); with key None only shared news is read."""

    def settle(self, spent: Spent) -> None:
        """The request ended: release its slot and count what it used (never blocks on I/O)."""

    async def snapshot(self, cfg: Config) -> list[dict[str, Any]]:
        """Each configured key's counts against its limits (the team's when shared)."""

    def status(self) -> dict[str, Any]:
        """For /admin/backends, /metrics and the dashboard: shared or not, reachable or not."""

    async def team_usage(self, since: float, until: float | None, group_by: str | None) -> dict[str, Any] | None:
        """Every instance's usage per instance and in total (None when nothing is shared)."""

    def cooled(self, dep_id: str, until: float, error: str | None) -> None:
        """This instance cooled a deployment down until `until` (unix time): tell the others."""

    async def get(self, space: str, name: str) -> bytes | None:
        """A shared value (session, search result, stored response) or None (also when nothing is shared)."""

    async def put(self, space: str, name: str, value: bytes, ttl_s: float) -> None: ...

    async def delete(self, space: str, name: str) -> bool:
        """True when there was a value to delete."""
