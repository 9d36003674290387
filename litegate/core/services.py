"""What every request shares (Services) and what one request records about itself (Call).

Services are built once by the app and live as long as it does; their state is keyed by
deployment id or key name, so it survives a config reload. A Call is the record of one client
request: who asked, on which face, what plan and attempt served it, what it used, and where its
time went. The access log and accounting read it when the request ends.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from litegate.config import Config, Key
from litegate.core.backends import Backends
from litegate.core.limits import Limits
from litegate.core.metrics import Metrics
from litegate.core.router import Attempt
from litegate.pool import Pool
from litegate.state import LocalState, StateBackend
from litegate.wire import Usage

if TYPE_CHECKING:  # the I/O adapters are handed in by the app; the core only calls them
    from aiohttp import ClientSession

    from litegate.tools import SearchCache
    from litegate.usage import UsageStore

T = TypeVar("T")


class Memo:
    """Bounded map key -> value (tool-call provider state, classifier labels), oldest evicted."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Any] = OrderedDict()

    def put(self, key: str, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def merge(self, key: str, extra: Mapping[str, Any]) -> None:
        """Add provider state under a tool-call id, keeping what earlier events said."""
        self.put(key, {**(self._items.get(key) or {}), **extra})

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Services:
    """Long-lived collaborators, built once by the app and shared by every request."""

    session: ClientSession  # backends' status probes, search APIs
    fetcher: ClientSession  # guarded: client-given URLs, never private addresses
    open_fetcher: ClientSession | None = None  # unguarded, for owners who allow private addresses
    usage: UsageStore | None = None  # None when usage.enabled is false
    pool: Pool = field(default_factory=Pool)  # model calls to backends (upstream.send / open_stream)
    search_cache: SearchCache | None = None
    memo: Memo = field(default_factory=Memo)
    labels: Memo = field(default_factory=lambda: Memo(4096))
    backends: Backends = field(default_factory=Backends)
    rng: random.Random = field(default_factory=random.Random)
    limits: Limits = field(default_factory=Limits)
    metrics: Metrics = field(default_factory=Metrics)
    live: dict[int, Call] = field(default_factory=dict)  # requests in flight, for the dashboard
    cut: bool = False  # the shutdown grace ran out: what is still open is being ended by litegate
    state: StateBackend | None = None  # limits' and cooldowns' home: this process (default) or Redis

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = LocalState(self.limits)

    def fetcher_for(self, allow_private: bool) -> ClientSession:
        return self.open_fetcher if allow_private and self.open_fetcher is not None else self.fetcher


@dataclass(frozen=True, slots=True)
class Plan:
    requested: str  # the client's `model`
    resolved: str  # after aliases: a model, or a virtual model (router.routes)
    model: str  # the model whose group the attempts start on
    route: str  # how it was chosen: direct, alias:<name>, rule:<x>, default
    tokens: int = 0  # prompt estimate, when context windows or rules need it
    server_tools: tuple[str, ...] = ()  # tools litegate runs for the model (web_search, fetch_url)


@dataclass(eq=False)
class Call:
    """One client request as litegate sees it; read by the access log and accounting at the end."""

    cfg: Config  # the snapshot this request uses from start to end, even across a reload
    request_id: str = ""
    face: str = "openai"  # the inbound API it came in on
    headers: Mapping[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    key: str | None = None  # the principal's name
    model: str = ""  # what the client asked for
    endpoint: str | None = None  # chat | completions | embeddings | ...: set when it counts as a model request
    stream: bool = False
    admitted: Key | None = None  # the key whose limits counted this request in
    lease: str | None = None  # its concurrency slot in shared state, released when it ends
    extra_headers: dict[str, str] = field(default_factory=dict)  # rate-limit headers for the response
    plan: Plan | None = None
    attempt: Attempt | None = None  # the attempt serving (or last tried for) this request
    tried: list[str] = field(default_factory=list)  # deployment ids that failed, in order
    usage: Usage | None = None
    upstream_s: float = 0.0  # time spent waiting on backends
    upstream_since: float | None = None
    backoff_s: float = 0.0  # time spent sleeping between attempts (neither ours nor upstream's)
    first_token_s: float | None = None
    server_tool_calls: int = 0
    stream_error: str | None = None
    status: int | None = None  # the status to record when it is not the response's (a stream litegate cut)

    @property
    def deployment(self) -> str | None:
        return self.attempt.deployment.id if self.attempt else None

    @property
    def route(self) -> str | None:
        if self.attempt is None:
            return None
        return self.attempt.route if self.attempt.retry == 0 else f"{self.attempt.route}+retry"

    def overhead_ms(self) -> float:
        now = time.perf_counter()
        waiting = self.upstream_s + self.backoff_s + (now - self.upstream_since if self.upstream_since else 0.0)
        return (now - self.started - waiting) * 1000

    async def waiting(self, aw: Awaitable[T]) -> T:
        """Await backend I/O, counting its time as upstream (not litegate's overhead)."""
        self.upstream_since = t0 = time.perf_counter()
        try:
            return await aw
        finally:
            self.upstream_s += time.perf_counter() - t0
            self.upstream_since = None
