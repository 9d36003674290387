"""Per-key limits and budgets, enforced from memory (restored from the usage store at start).

Requests and tokens per minute are rolling 60-second windows; concurrency is a counter; token
and cost budgets run per calendar day and month in the server's local time. State is keyed by
key name, so it survives a config reload (new limits apply at once to the running counts).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from litegate.config import Config, Key
from litegate.errors import RateLimited

_MINUTE = 60.0


def day_of(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(t))


def month_of(t: float) -> str:
    return time.strftime("%Y-%m", time.localtime(t))


def start_of_day(t: float) -> float:
    lt = time.localtime(t)
    return time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))


def start_of_month(t: float) -> float:
    lt = time.localtime(t)
    return time.mktime((lt.tm_year, lt.tm_mon, 1, 0, 0, 0, 0, 0, -1))


def next_day(t: float) -> float:
    lt = time.localtime(t)
    return time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday + 1, 0, 0, 0, 0, 0, -1))


def next_month(t: float) -> float:
    lt = time.localtime(t)
    return time.mktime((lt.tm_year, lt.tm_mon + 1, 1, 0, 0, 0, 0, 0, -1))


def limited(key: Key) -> bool:
    """Whether any limit or budget applies to the key (what fail-closed shared state refuses)."""
    b = key.budget
    return any(v is not None for v in (key.rpm, key.tpm, key.max_concurrent, b.tokens_per_day, b.tokens_per_month,
                                       b.cost_per_month))


def refusal(key: Key, limit: str, now: float, retry_after: float = 1.0, running: int = 0) -> RateLimited:
    """The 429 for a limit a key reached, worded and timed the same whether local or shared counts found
    it: `retry_after` is a rate limit's; a budget's is the start of the next day or month after `now`."""
    b, name = key.budget, key.name
    if limit == "rpm":
        return RateLimited(f"key '{name}' is over its {key.rpm} requests per minute", retry_after=retry_after,
                           code="rate_limit_requests")
    if limit == "tpm":
        return RateLimited(f"key '{name}' is over its {key.tpm} tokens per minute", retry_after=retry_after,
                           code="rate_limit_tokens")
    if limit == "concurrency":
        return RateLimited(f"key '{name}' already has {running} requests running (its limit)",
                           retry_after=retry_after, code="concurrency_limit")
    what = {"day_tokens": f"used its {b.tokens_per_day} tokens for today",
            "month_tokens": f"used its {b.tokens_per_month} tokens for this month",
            "month_cost": f"spent its ${b.cost_per_month or 0:g} for this month"}[limit]
    retry_after = (next_day(now) if limit == "day_tokens" else next_month(now)) - now
    return RateLimited(f"key '{name}' has {what}", retry_after=retry_after, code="budget_exceeded",
                       error_type="insufficient_quota")


def rate_headers(key: Key, requests: int, minute_tokens: int) -> dict[str, str]:
    """x-ratelimit-* for an admitted request, from the key's counts in the last minute (local or shared)."""
    out = {}
    if key.rpm is not None:
        out["x-ratelimit-limit-requests"] = str(key.rpm)
        out["x-ratelimit-remaining-requests"] = str(max(0, key.rpm - requests))
    if key.tpm is not None:
        out["x-ratelimit-limit-tokens"] = str(key.tpm)
        out["x-ratelimit-remaining-tokens"] = str(max(0, key.tpm - minute_tokens))
    return out


@dataclass
class _State:
    requests: deque = field(default_factory=deque)  # request start times in the last minute
    tokens: deque = field(default_factory=deque)  # (time, tokens) in the last minute
    minute_tokens: int = 0
    concurrent: int = 0
    day: str = ""
    day_tokens: int = 0
    day_searches: int = 0
    month: str = ""
    month_tokens: int = 0
    month_cost: float = 0.0


class Limits:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._keys: dict[str, _State] = {}
        self.global_searches: tuple[str, int] = ("", 0)

    def _get(self, name: str) -> _State:
        st = self._keys.get(name)
        if st is None:
            st = self._keys[name] = _State()
        now = self.clock()
        self._roll(st, now)
        return st

    def _roll(self, st: _State, now: float) -> None:
        while st.requests and st.requests[0] <= now - _MINUTE:
            st.requests.popleft()
        while st.tokens and st.tokens[0][0] <= now - _MINUTE:
            st.minute_tokens -= st.tokens.popleft()[1]
        if st.day != day_of(now):
            st.day, st.day_tokens, st.day_searches = day_of(now), 0, 0
        if st.month != month_of(now):
            st.month, st.month_tokens, st.month_cost = month_of(now), 0, 0.0

    def restore(self, day: Mapping[str, Any], month: Mapping[str, Any]) -> None:
        """Seed today's and this month's sums (KeySums from the usage store) after a restart."""
        for name, sums in day.items():
            self._get(name).day_tokens = sums.tokens
        for name, sums in month.items():
            st = self._get(name)
            st.month_tokens, st.month_cost = sums.tokens, sums.cost

    def admit(self, key: Key) -> None:
        """Count a request in, or RateLimited (with retry-after) naming the limit that was hit."""
        st, now = self._get(key.name), self.clock()
        if key.rpm is not None and len(st.requests) >= key.rpm:
            raise refusal(key, "rpm", now, st.requests[0] + _MINUTE - now)
        if key.tpm is not None and st.minute_tokens >= key.tpm:
            raise refusal(key, "tpm", now, st.tokens[0][0] + _MINUTE - now)
        if key.max_concurrent is not None and st.concurrent >= key.max_concurrent:
            raise refusal(key, "concurrency", now, running=st.concurrent)
        self._check_budget(key, st, now)
        st.requests.append(now)
        st.concurrent += 1

    def record(self, key: Key) -> None:
        """Count a request in without checking (the shared store admitted it): keeps the mirror true."""
        st = self._get(key.name)
        st.requests.append(self.clock())
        st.concurrent += 1

    def observe(self, name: str, day_tokens: int, month_tokens: int, month_cost: float) -> None:
        """The team's budget sums as the shared store last reported them (this instance's included)."""
        st = self._get(name)
        st.day_tokens, st.month_tokens, st.month_cost = day_tokens, month_tokens, month_cost

    def _check_budget(self, key: Key, st: _State, now: float) -> None:
        b = key.budget
        if b.tokens_per_day is not None and st.day_tokens >= b.tokens_per_day:
            raise refusal(key, "day_tokens", now)
        if b.tokens_per_month is not None and st.month_tokens >= b.tokens_per_month:
            raise refusal(key, "month_tokens", now)
        if b.cost_per_month is not None and st.month_cost >= b.cost_per_month:
            raise refusal(key, "month_cost", now)

    def settle(self, name: str, tokens: int, cost: float) -> None:
        """The request ended: release its concurrency slot and count what it used."""
        st, now = self._get(name), self.clock()
        st.concurrent = max(0, st.concurrent - 1)
        if tokens:
            st.tokens.append((now, tokens))
            st.minute_tokens += tokens
            st.day_tokens += tokens
            st.month_tokens += tokens
        st.month_cost += cost

    def allow_search(self, name: str | None, per_key: int | None, per_day_global: int | None) -> bool:
        """Count one web search against the key's and the gateway's daily limits, if both allow it."""
        now = self.clock()
        day, used = self.global_searches
        used = used if day == day_of(now) else 0
        st = self._get(name or "anonymous")
        if per_day_global is not None and used >= per_day_global:
            return False
        if per_key is not None and st.day_searches >= per_key:
            return False
        self.global_searches = (day_of(now), used + 1)
        st.day_searches += 1
        return True

    def headers(self, key: Key) -> dict[str, str]:
        st = self._get(key.name)
        return rate_headers(key, len(st.requests), st.minute_tokens)

    def snapshot(self, cfg: Config) -> list[dict[str, Any]]:
        """Every configured key's current counts against its limits (admin API, dashboard)."""
        out = []
        for key in cfg.auth.keys:
            st = self._get(key.name)
            b = key.budget
            out.append({
                "name": key.name, "admin": key.admin, "revoked": key.revoked, "models": list(key.models),
                "requests_last_minute": len(st.requests), "rpm": key.rpm,
                "tokens_last_minute": st.minute_tokens, "tpm": key.tpm,
                "concurrent": st.concurrent, "max_concurrent": key.max_concurrent,
                "tokens_today": st.day_tokens, "tokens_per_day": b.tokens_per_day,
                "tokens_this_month": st.month_tokens, "tokens_per_month": b.tokens_per_month,
                "cost_this_month": round(st.month_cost, 6), "cost_per_month": b.cost_per_month,
                "searches_today": st.day_searches, "searches_per_day": key.searches_per_day,
            })
        return out
