"""Which deployment answers, and how the gateway walks its attempts.

`plan()` turns a client's `model` into a model name and a route label (aliases, and for a
virtual model its rules, asking the classifier model when a rule needs a label).
`with_targets()` walks router.attempts: a slot on the deployment (bounded queue), the attempt,
success or failure reported to Backends (latency, cooldown), backoff before the next try.
Also home of the per-request Call and the long-lived Services every request shares.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from . import router, rules, upstream
from .backends import Backends
from .config import Classifier, Config, Deployment, Key
from .limits import Limits
from .metrics import Metrics
from .errors import GatewayError
from .providers import PROVIDERS, Provider
from .wire import ChatRequest, Message, Usage

T = TypeVar("T")
log = structlog.get_logger("litegate.targets")


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

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Services:
    """Long-lived collaborators, built once by the app and shared by every request."""

    session: Any  # aiohttp.ClientSession for backends
    fetcher: Any  # guarded aiohttp.ClientSession for client URLs
    memo: Memo = field(default_factory=Memo)
    labels: Memo = field(default_factory=lambda: Memo(4096))
    backends: Backends = field(default_factory=Backends)
    rng: random.Random = field(default_factory=random.Random)
    limits: Limits = field(default_factory=Limits)
    metrics: Metrics = field(default_factory=Metrics)
    usage: Any = None  # usage.UsageStore, or None when usage.enabled is false
    search_cache: Any = None  # tools.SearchCache
    live: dict[int, "Call"] = field(default_factory=dict)  # requests in flight, for the dashboard
    open_fetcher: Any = None  # unguarded session, for owners who allow private addresses

    def fetcher_for(self, allow_private: bool) -> Any:
        return self.open_fetcher if allow_private and self.open_fetcher is not None else self.fetcher


@dataclass
class Call:
    """One client request as the gateway sees it; read by the access log at the end."""

    cfg: Config
    request_id: str = ""
    started: float = field(default_factory=time.perf_counter)
    model: str = ""
    deployment: str | None = None
    route: str | None = None
    tried: list[str] = field(default_factory=list)
    usage: Usage | None = None
    upstream_s: float = 0.0
    upstream_since: float | None = None
    first_token_s: float | None = None
    images: dict[str, str] = field(default_factory=dict)
    key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stream_error: str | None = None
    tokens: int = 0
    stream: bool = False
    target: Deployment | None = None
    admitted: Key | None = None  # the key whose limits counted this request in
    server_tool_calls: int = 0
    endpoint: str | None = None  # chat | completions | embeddings, for model requests
    extra_headers: dict[str, str] = field(default_factory=dict)

    def overhead_ms(self) -> float:
        now = time.perf_counter()
        waiting = self.upstream_s + (now - self.upstream_since if self.upstream_since else 0.0)
        return max(0.0, (now - self.started - waiting) * 1000)

    async def waiting(self, aw: Awaitable[T]) -> T:
        """Await backend I/O, counting its time as upstream (not litegate's overhead)."""
        self.upstream_since = t0 = time.perf_counter()
        try:
            return await aw
        finally:
            self.upstream_s += time.perf_counter() - t0
            self.upstream_since = None


# ---------------------------------------------------------------- planning
async def plan(svc: Services, call: Call, requested: str, req: ChatRequest | None = None) -> tuple[str, str]:
    """(model name, route label) for this request; virtual models decide by their rules."""
    name, route = router.resolve(call.cfg, requested)
    vroute = call.cfg.router.routes.get(name)
    if vroute is None:
        if req is not None and call.cfg.has_context_windows:
            call.tokens = rules.estimate_tokens(req)
        return name, route
    if req is None:
        return vroute.default, "default"
    feats = rules.features(req, call.key, call.headers)
    call.tokens = feats.tokens
    label = None
    if vroute.classifier is not None and rules.needs_label(vroute):
        label = await classify(svc, call, vroute.classifier, feats.text)
    decision = rules.decide(vroute, feats, label)
    return decision.model, decision.rule


async def classify(svc: Services, call: Call, c: Classifier, text: str) -> str | None:
    """Ask the classifier model for one label; cached; its default on timeout, error or nonsense."""
    key = hashlib.sha256(f"{c.model}\0{','.join(c.labels)}\0{text}".encode()).hexdigest()
    hit = svc.labels.get(key)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    label = c.default or None
    try:
        answer = await asyncio.wait_for(_ask(svc, call.cfg, c, text), c.timeout_s)
        label = next((lb for lb in c.labels if lb in answer.lower()), label)
        svc.labels.put(key, (label, time.monotonic() + c.cache_s))
    except (GatewayError, asyncio.TimeoutError) as e:
        log.warning("classifier_failed", model=c.model, error=getattr(e, "code", None) or type(e).__name__)
    return label


async def _ask(svc: Services, cfg: Config, c: Classifier, text: str) -> str:
    instructions = c.instructions or (
        "Classify the user's message. Answer with exactly one of these labels and nothing else: "
        + ", ".join(c.labels) + ".")
    req = ChatRequest(model=c.model, messages=[Message("system", instructions), Message("user", text[:4000])],
                      max_tokens=16, temperature=0.0)
    sub = Call(cfg=cfg)

    async def attempt(d: Deployment, p: Provider) -> str:
        body = await upstream.send(svc.session, p.build_chat(req, d, {}), d.timeouts, p.parse_error, d.id)
        return p.parse_chat(body, d).choices[0].message.content or ""

    return await with_targets(svc, sub, c.model, "classifier", attempt)


# ---------------------------------------------------------------- attempts
async def with_targets(svc: Services, call: Call, name: str, route: str,
                       attempt: Callable[[Deployment, Provider], Awaitable[T]], *,
                       hold: AsyncExitStack | None = None) -> T:
    """Try attempts in order until one succeeds; `hold` keeps the deployment slot until it closes."""
    last: GatewayError | None = None
    cfg = call.cfg
    for att in router.attempts(cfg, name, route, svc.rng, state=svc.backends.view(), now=svc.backends.clock(),
                               tokens=call.tokens):
        if last is not None:
            await asyncio.sleep(_backoff(cfg, att.retry, last))
        d = att.deployment
        call.target, call.deployment = d, d.id
        call.route = att.route if att.retry == 0 else f"{att.route}+retry"
        t0 = time.perf_counter()
        try:
            lease = await svc.backends.acquire(d, d.timeouts.first_token_s)
        except GatewayError as e:
            call.tried.append(d.id)
            last = e
            continue
        try:
            result = await attempt(d, PROVIDERS[d.provider])
        except GatewayError as e:
            lease.release()
            svc.backends.failed(cfg, d, e)
            call.tried.append(d.id)
            if not (e.retryable or e.code == "context_length_exceeded"):  # a bigger model may take it
                raise
            last = e
            continue
        except BaseException:
            lease.release()
            raise
        svc.backends.succeeded(d, (time.perf_counter() - t0) * 1000)
        if hold is None:
            lease.release()
        else:
            hold.callback(lease.release)
        return result
    assert last is not None
    if len(call.tried) > 1:
        last.message = f"{last.message} (tried: {', '.join(call.tried)})"
    raise last


def _backoff(cfg: Config, retry: int, err: GatewayError) -> float:
    base = cfg.router.retry_backoff_s * (2 ** max(0, retry - 1)) if retry else 0.0
    return min(max(base, err.retry_after or 0.0), 10.0)
