"""Where state that instances may share lives: the backend seam and its table.

    STATE_BACKENDS = {"local": ..., "redis": ...}   # chosen by the config: a `state` section -> redis
    state = make(cfg, limits, metrics, seed_source=..., on_cooldown=...)   # the app owns the result

`local` (base.py's seam, local.py) is litegate without a `state` section: everything in this
process. `redis` (shared.py) shares per-key limits and budgets, deployment cooldowns, dashboard
sessions, the search cache and team usage through Redis or Valkey. The `redis` library is an
optional extra (`pip install 'litegate[redis]'`), imported only when a config asks for it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from litegate.config import Config
from litegate.core.limits import Limits
from litegate.core.metrics import Metrics
from litegate.state.base import Admission, CooldownSink, Seed, SeedSource, Spent, StateBackend
from litegate.state.local import LocalState

__all__ = ["Admission", "LocalState", "STATE_BACKENDS", "Seed", "SeedSource", "Spent", "StateBackend",
           "backend_for", "make", "missing_library"]


def _local(cfg: Config, limits: Limits, metrics: Metrics, **_: object) -> StateBackend:
    return LocalState(limits)


def _redis(cfg: Config, limits: Limits, metrics: Metrics, *, seed_source: SeedSource | None = None,
           on_cooldown: CooldownSink | None = None) -> StateBackend:
    from litegate.state.shared import RedisState  # the optional library loads only here

    return RedisState(cfg.state, limits, metrics, seed_source=seed_source, on_cooldown=on_cooldown)


STATE_BACKENDS: dict[str, Callable[..., StateBackend]] = {"local": _local, "redis": _redis}


def safe_url(url: str) -> str:
    """A Redis URL without its password, for output (no import of the optional library)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def backend_for(cfg: Config) -> str:
    return "redis" if cfg.state is not None else "local"


def missing_library(cfg: Config) -> str | None:
    """Why this config cannot run here: a `state` section without the redis library installed."""
    if cfg.state is not None and importlib.util.find_spec("redis") is None:
        return ("the config has a `state` section (state shared through Redis) but the `redis` Python library is "
                "not installed: pip install 'litegate[redis]' (or remove the section to keep state in this process)")
    return None


def make(cfg: Config, limits: Limits, metrics: Metrics, *, seed_source: SeedSource | None = None,
         on_cooldown: CooldownSink | None = None) -> StateBackend:
    return STATE_BACKENDS[backend_for(cfg)](cfg, limits, metrics, seed_source=seed_source, on_cooldown=on_cooldown)
