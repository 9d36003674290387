"""Live state of every deployment: in-flight requests and their queue, recent latency,
consecutive failures and cooldown, and (for Ollama) which models are loaded.

State is keyed by deployment id, so it survives a config reload. The router reads a snapshot
(`view()`); the gateway takes a Lease per attempt and reports how it went.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from litegate import upstream
from litegate.config import Config, Deployment
from litegate.errors import GatewayError, RateLimited
from litegate.providers import PROVIDERS
from litegate.core.router import DeploymentState

log = structlog.get_logger("litegate.core.backends")
_WINDOW = 50


@dataclass
class _Live:
    in_flight: int = 0
    waiters: deque = field(default_factory=deque)
    latencies: deque = field(default_factory=lambda: deque(maxlen=_WINDOW))
    _p50: float | None = None  # of `latencies`, worked out when read after a change (None: stale)
    failures: int = 0
    cooling_until: float = 0.0
    last_error: str | None = None
    requests: int = 0
    errors: int = 0
    loaded: bool | None = None

    @property
    def p50_ms(self) -> float | None:
        if self._p50 is None and self.latencies:
            ordered = sorted(self.latencies)
            self._p50 = ordered[len(ordered) // 2]
        return self._p50


class Lease:
    """One slot on a deployment; release exactly once."""

    __slots__ = ("_backends", "_id", "_released")

    def __init__(self, backends: "Backends", dep_id: str) -> None:
        self._backends, self._id, self._released = backends, dep_id, False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._backends._release(self._id)


class Backends:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._live: dict[str, _Live] = {}
        self._caps: dict[str, tuple[int | None, int]] = {}
        self.loaded_models: dict[str, dict[str, Any]] = {}  # api_base -> {"ok", "models", "checked_at"}
        # Set by the app when state is shared: (deployment id, until as unix time, error) -> the others.
        self.on_cooldown: Callable[[str, float, str | None], None] | None = None

    def _get(self, dep_id: str) -> _Live:
        live = self._live.get(dep_id)
        if live is None:
            live = self._live[dep_id] = _Live()
        return live

    def view(self) -> Mapping[str, DeploymentState]:
        """What the router sees; built per deployment on demand (most requests look at one or two)."""
        return _View(self._live)

    # ------------------------------------------------------------ concurrency
    async def acquire(self, d: Deployment, timeout: float) -> Lease:
        """A slot on `d`, waiting in its bounded queue; RateLimited when the queue is full or too slow."""
        live = self._get(d.id)
        self._caps[d.id] = (d.max_parallel, d.max_queue)
        if d.max_parallel is None or live.in_flight < d.max_parallel:
            live.in_flight += 1
            return Lease(self, d.id)
        if len(live.waiters) >= d.max_queue:
            raise RateLimited(f"deployment {d.id} is at capacity ({live.in_flight} running, {len(live.waiters)} "
                              f"queued)", retry_after=1, code="deployment_at_capacity")
        fut = asyncio.get_running_loop().create_future()
        live.waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except BaseException as e:
            if fut.done() and not fut.cancelled():
                self._release(d.id)  # a slot was handed to us just as we gave up: pass it on
            else:
                fut.cancel()
                _discard(live.waiters, fut)
            if isinstance(e, asyncio.TimeoutError):
                raise RateLimited(f"deployment {d.id} had no free slot within {timeout:g}s", retry_after=1,
                                  code="deployment_at_capacity") from None
            raise
        return Lease(self, d.id)

    def _release(self, dep_id: str) -> None:
        live = self._get(dep_id)
        while live.waiters:
            fut = live.waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes to the next waiter; in_flight unchanged
                return
        live.in_flight = max(0, live.in_flight - 1)

    # ------------------------------------------------------------ outcomes
    def succeeded(self, d: Deployment, latency_ms: float) -> None:
        live = self._get(d.id)
        live.requests += 1
        live.failures = 0
        live.latencies.append(latency_ms)
        live._p50 = None  # sorted again only when the router or the dashboard asks

    def failed(self, cfg: Config, d: Deployment, err: GatewayError) -> None:
        """Count a deployment-level failure; enough in a row cool the deployment down."""
        live = self._get(d.id)
        live.requests += 1
        live.errors += 1
        live.last_error = err.code or err.type
        if not err.retryable or err.code == "deployment_at_capacity":
            return
        live.failures += 1
        if live.failures >= cfg.router.cooldown.failures:
            live.failures = 0
            live.cooling_until = self.clock() + cfg.router.cooldown.cooldown_s
            log.warning("deployment_cooldown", deployment=d.id, seconds=cfg.router.cooldown.cooldown_s,
                        error=live.last_error)
            if self.on_cooldown is not None:
                self.on_cooldown(d.id, time.time() + cfg.router.cooldown.cooldown_s, live.last_error)

    def cool(self, dep_id: str, until: float, error: str | None) -> None:
        """A cooldown another instance saw (shared state), honoured here until the same moment."""
        live = self._get(dep_id)
        local_until = self.clock() + (until - time.time())
        if local_until > live.cooling_until + 0.5:  # news, not the echo of one already known here
            live.cooling_until = local_until
            live.last_error = error or live.last_error
            log.info("deployment_cooldown_shared", deployment=dep_id, seconds=round(until - time.time(), 1),
                     error=error)

    # ------------------------------------------------------------ Ollama: loaded models
    async def poll_loaded(self, session: Any, cfg: Config) -> None:
        """Ask every backend that can tell (Ollama /api/ps) which models are loaded right now."""
        by_base: dict[str, list[Deployment]] = {}
        for d in cfg.models:
            p = PROVIDERS[d.provider]
            if p.loaded_path:
                by_base.setdefault(_base(d), []).append(d)
        await asyncio.gather(*(self._poll_one(session, base, deps) for base, deps in by_base.items()))

    async def _poll_one(self, session: Any, base: str, deps: list[Deployment]) -> None:
        p = PROVIDERS[deps[0].provider]
        try:
            models = p.parse_loaded(await upstream.probe(session, base + p.loaded_path, timeout_s=2.0))
        except (GatewayError, ValueError) as e:
            self.loaded_models[base] = {"ok": False, "error": str(e), "models": [], "checked_at": time.time()}
            for d in deps:
                self._get(d.id).loaded = None
            return
        self.loaded_models[base] = {"ok": True, "models": models, "checked_at": time.time()}
        names = {m["name"] for m in models}
        for d in deps:
            self._get(d.id).loaded = p.loaded_name(d.model) in names

    # ------------------------------------------------------------ report
    def report(self, cfg: Config) -> list[dict[str, Any]]:
        now, wall = self.clock(), time.time()
        out = []
        for d in cfg.models:
            live = self._get(d.id)
            cooling = live.cooling_until > now
            server = self.loaded_models.get(_base(d))
            down = server is not None and not server["ok"]  # its Ollama did not answer the last poll
            out.append({
                "id": d.id, "name": d.name, "provider": d.provider, "model": d.model,
                "state": "down" if down else "cooling_down" if cooling else "healthy",
                "server": _base(d) if server is not None else None,
                "cooling_until": wall + (live.cooling_until - now) if cooling else None,
                "in_flight": live.in_flight, "queued": len(live.waiters), "max_parallel": d.max_parallel,
                "p50_ms": round(live.p50_ms, 1) if live.p50_ms is not None else None,
                "requests": live.requests, "errors": live.errors, "last_error": live.last_error,
                "loaded": live.loaded,
            })
        return out


class _View(Mapping):
    __slots__ = ("_live",)

    def __init__(self, live: dict[str, _Live]) -> None:
        self._live = live

    def __getitem__(self, key: str) -> DeploymentState:
        v = self._live[key]
        return DeploymentState(v.in_flight, v.cooling_until, v.p50_ms, v.loaded)

    def get(self, key: str, default: Any = None) -> Any:
        v = self._live.get(key)
        return default if v is None else DeploymentState(v.in_flight, v.cooling_until, v.p50_ms, v.loaded)

    def __iter__(self):
        return iter(self._live)

    def __len__(self) -> int:
        return len(self._live)


def _base(d: Deployment) -> str:
    return (d.api_base or PROVIDERS[d.provider].default_api_base).rstrip("/")


def _discard(waiters: deque, fut: asyncio.Future) -> None:
    try:
        waiters.remove(fut)
    except ValueError:
        pass

