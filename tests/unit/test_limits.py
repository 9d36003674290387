"""core/limits.py: per-key rpm, tpm, concurrency, day/month token and cost budgets, rate-limit
headers and web-search allowances, on an injected clock (no sleeps)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from litegate.config import Budget, Key
from litegate.core.limits import Limits
from litegate.errors import RateLimited

NOON = time.mktime((2026, 6, 15, 12, 0, 0, 0, 0, -1))  # local time: a day and a month away from any boundary


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = NOON) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def at(self, *local: int) -> None:
        """Jump to a local date and time (year, month, day[, hour, minute, second])."""
        y, mo, d, *hms = local
        h, mi, s = (list(hms) + [0, 0, 0])[:3]
        self.t = time.mktime((y, mo, d, h, mi, s, 0, 0, -1))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limits(clock: Clock) -> Limits:
    return Limits(clock)


def refused(limits: Limits, key: Key) -> RateLimited:
    with pytest.raises(RateLimited) as e:
        limits.admit(key)
    assert e.value.status == 429
    return e.value


# ---------------------------------------------------------------- per minute
def test_rpm_is_a_rolling_minute(limits, clock):
    """rpm: the (rpm+1)th request within 60 s is refused until the oldest one is a minute old."""
    key = Key("k", rpm=2)
    limits.admit(key)
    clock.t += 10
    limits.admit(key)
    clock.t += 10
    err = refused(limits, key)
    assert err.code == "rate_limit_requests" and "'k'" in err.message and "2 requests per minute" in err.message
    assert err.retry_after == pytest.approx(40) and err.headers() == {"retry-after": "40"}
    clock.t = NOON + 60  # the first request leaves the window
    limits.admit(key)
    refused(limits, key)


def test_tpm_counts_settled_tokens_for_a_minute(limits, clock):
    """tpm: tokens settled in the last minute refuse new requests once they reach tpm; they age out after 60 s."""
    key = Key("k", tpm=100)
    limits.admit(key)
    limits.settle("k", 99, 0.0)
    limits.admit(key)  # 99 < 100
    limits.settle("k", 1, 0.0)
    clock.t += 15
    err = refused(limits, key)
    assert err.code == "rate_limit_tokens" and "100 tokens per minute" in err.message
    assert err.retry_after == pytest.approx(45)
    clock.t = NOON + 60
    limits.admit(key)


def test_concurrency_is_released_by_settle(limits):
    """max_concurrent: requests running at once are capped; settle() frees a slot."""
    key = Key("k", max_concurrent=2)
    limits.admit(key)
    limits.admit(key)
    err = refused(limits, key)
    assert err.code == "concurrency_limit" and "2 requests running" in err.message
    limits.settle("k", 0, 0.0)
    limits.admit(key)


def test_limits_are_per_key(limits):
    """One key at its limit does not hold back another key."""
    a, b = Key("a", rpm=1), Key("b", rpm=1)
    limits.admit(a)
    refused(limits, a)
    limits.admit(b)


def test_no_limits_admits_everything(limits):
    """A key without limits is never refused (and gets no rate-limit headers)."""
    key = Key("free")
    for _ in range(500):
        limits.admit(key)
    assert limits.headers(key) == {}


# ---------------------------------------------------------------- budgets
def test_day_token_budget_resets_at_local_midnight(limits, clock):
    """tokens_per_day: spent -> 429 insufficient_quota until local midnight (retry-after says so); then fresh."""
    key = Key("k", budget=Budget(tokens_per_day=1000))
    limits.settle("k", 600, 0.0)
    limits.admit(key)
    limits.settle("k", 400, 0.0)
    err = refused(limits, key)
    assert (err.code, err.type) == ("budget_exceeded", "insufficient_quota") and "1000 tokens for today" in err.message
    assert err.retry_after == pytest.approx(12 * 3600)
    clock.at(2026, 6, 15, 23, 59, 59)
    refused(limits, key)
    clock.at(2026, 6, 16, 0, 0, 1)
    limits.admit(key)


def test_month_token_budget_resets_on_the_first(limits, clock):
    """tokens_per_month: counts across days; spent -> refused until the 1st of next month."""
    key = Key("k", budget=Budget(tokens_per_month=1000))
    limits.settle("k", 600, 0.0)
    clock.at(2026, 6, 20, 9)
    limits.settle("k", 400, 0.0)
    err = refused(limits, key)
    assert err.code == "budget_exceeded" and "1000 tokens for this month" in err.message
    assert err.retry_after == pytest.approx(time.mktime((2026, 7, 1, 0, 0, 0, 0, 0, -1)) - clock.t)
    clock.at(2026, 7, 1, 0, 0, 1)
    limits.admit(key)


def test_month_cost_budget(limits, clock):
    """cost_per_month: settled cost adds up; at the budget the key is refused, naming the amount."""
    key = Key("k", budget=Budget(cost_per_month=2.5))
    limits.settle("k", 0, 1.25)
    limits.admit(key)
    limits.settle("k", 10, 1.25)
    err = refused(limits, key)
    assert err.code == "budget_exceeded" and "$2.5" in err.message
    clock.at(2026, 7, 2)
    limits.admit(key)


def test_restore_seeds_day_and_month_sums(limits):
    """restore: today's and this month's sums from the usage store count against budgets after a restart."""
    day = {"k": SimpleNamespace(tokens=1000, cost=0.0)}
    month = {"k": SimpleNamespace(tokens=1500, cost=3.0), "m": SimpleNamespace(tokens=0, cost=9.0)}
    limits.restore(day, month)
    refused(limits, Key("k", budget=Budget(tokens_per_day=1000)))
    limits.admit(Key("k", budget=Budget(tokens_per_day=1001, tokens_per_month=1501)))
    assert refused(limits, Key("m", budget=Budget(cost_per_month=9.0))).code == "budget_exceeded"


# ---------------------------------------------------------------- headers
def test_headers_show_limits_and_what_remains(limits, clock):
    """headers: x-ratelimit-limit/remaining for requests and tokens, counting this minute only."""
    key = Key("k", rpm=10, tpm=1000)
    for _ in range(3):
        limits.admit(key)
    limits.settle("k", 250, 0.0)
    assert limits.headers(key) == {
        "x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "7",
        "x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "750"}
    clock.t += 61
    assert limits.headers(key)["x-ratelimit-remaining-requests"] == "10"
    assert limits.headers(key)["x-ratelimit-remaining-tokens"] == "1000"


def test_headers_remaining_tokens_never_negative(limits):
    """headers: one answer larger than tpm shows 0 tokens remaining, not a negative number."""
    key = Key("k", tpm=100)
    limits.settle("k", 450, 0.0)
    assert limits.headers(key)["x-ratelimit-remaining-tokens"] == "0"


# ---------------------------------------------------------------- web searches
def test_search_per_key_daily_allowance(limits, clock):
    """allow_search: each key has its own daily allowance; the next day it is fresh."""
    assert [limits.allow_search("a", 2, None) for _ in range(3)] == [True, True, False]
    assert limits.allow_search("b", 2, None) is True
    clock.at(2026, 6, 16, 8)
    assert limits.allow_search("a", 2, None) is True


def test_search_global_daily_allowance(limits, clock):
    """allow_search: the gateway-wide daily cap counts every key's searches (anonymous too) and resets daily."""
    assert limits.allow_search("a", None, 3) and limits.allow_search(None, None, 3)
    assert limits.allow_search("b", None, 3)
    assert limits.allow_search("c", None, 3) is False
    clock.at(2026, 6, 16)
    assert limits.allow_search("c", None, 3) is True


def test_refused_search_is_not_counted(limits):
    """allow_search: a search refused by the global cap does not use up the key's own allowance."""
    assert limits.allow_search("a", 1, 0) is False
    assert limits.allow_search("a", 1, None) is True


def test_snapshot_reports_counts(limits):
    """snapshot: every configured key with its counts against its limits (admin API, dashboard)."""
    from litegate.config import from_dict
    cfg = from_dict({"models": [{"name": "m", "provider": "ollama", "model": "m"}],
                     "auth": {"keys": [{"name": "k", "key_env": "K", "rpm": 5}]}}, env={"K": "sk"})
    key = cfg.auth.keys[0]
    limits.admit(key)
    limits.settle("k", 42, 0.5)
    row, = limits.snapshot(cfg)
    assert (row["name"], row["requests_last_minute"], row["rpm"], row["tokens_today"], row["cost_this_month"],
            row["concurrent"]) == ("k", 1, 5, 42, 0.5, 0)
