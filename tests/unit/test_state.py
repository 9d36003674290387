"""state/: the pure pieces of shared state (no Redis here): the local backend, Pending sums and
their merge after a failed send, team usage summaries, the seed payload, and the limits mirror."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from litegate.config import Budget, Key, from_dict
from litegate.core.limits import Limits, limited
from litegate.core.metrics import Metrics
from litegate.errors import RateLimited
from litegate.state import STATE_BACKENDS, LocalState, Seed, Spent, backend_for, make
from litegate.state.layout import Layout, Pending, hour_of, usage_fields
from litegate.state.team import hours_from_points, seed_payload, summarise

NOON = time.mktime((2026, 6, 15, 12, 0, 0, 0, 0, -1))
MODELS = [{"name": "m", "provider": "ollama", "model": "x"}]


def test_backend_is_chosen_from_the_table_by_the_config():
    """No `state` section: the local backend (today's behaviour); a `state` section: redis."""
    assert set(STATE_BACKENDS) == {"local", "redis"}
    assert backend_for(from_dict({"models": MODELS}, env={})) == "local"
    cfg = from_dict({"models": MODELS, "state": {"redis_url": "redis://127.0.0.1:1/0"}}, env={})
    assert backend_for(cfg) == "redis"
    assert isinstance(make(from_dict({"models": MODELS}, env={}), Limits(), Metrics()), LocalState)


def test_state_password_comes_from_the_named_variable_and_is_never_shown():
    """password_env names a variable: a missing one is a config error naming it; the value is redacted."""
    from litegate.config import ConfigError, redacted

    doc = {"models": MODELS, "state": {"redis_url": "redis://mini-1:6379/0", "password_env": "REDIS_PW"}}
    with pytest.raises(ConfigError, match="REDIS_PW is not set"):
        from_dict(doc, env={})
    cfg = from_dict(doc, env={"REDIS_PW": "s3cret"})
    assert cfg.state.password == "s3cret" and "password" not in redacted(cfg)["state"]


async def test_local_backend_is_the_in_memory_limits():
    """The local backend admits and settles on Limits, exactly as without a state section."""
    limits = Limits(clock=lambda: NOON)
    local = LocalState(limits)
    key = Key(name="k", rpm=1)
    admission = await local.admit(key, "r1")
    assert admission.lease is None and admission.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(RateLimited):
        await local.admit(key, "r2")
    local.settle(Spent(at=NOON, key="k", admitted="k", lease=None, model="m", prompt=2, completion=3))
    assert limits.snapshot(SimpleNamespace(auth=SimpleNamespace(keys=(key,))))[0]["tokens_today"] == 5
    assert (await local.admit(None, "r3")).headers == {} and await local.get("session", "x") is None


def test_limits_mirror_records_and_takes_the_teams_budget_sums():
    """record() counts a request the shared store admitted; observe() takes the team's budget sums,
    so counting here alone after an outage starts from them."""
    limits = Limits(clock=lambda: NOON)
    key = Key(name="k", rpm=2, budget=Budget(tokens_per_day=100))
    limits.record(key)
    limits.observe("k", 100, 100, 0.0)
    with pytest.raises(RateLimited, match="used its 100 tokens for today"):
        limits.admit(key)
    assert limited(key) and not limited(Key(name="free"))


def test_pending_merges_back_what_a_failed_send_took():
    """A send that fails puts its counts back, summed with what arrived meanwhile, nothing lost."""
    layout = Layout("p:", "mac-a")
    p = Pending()
    p.tpm["t"] = 5
    p.add_usage("u", {"r": 1, "p": 3})
    p.releases.append(("c", "lease-1"))
    p.cool["dep"] = (30.0, "old")
    batch = p.take()
    assert not p
    p.tpm["t"] = 2
    p.add_usage("u", {"r": 1})
    p.cool["dep"] = (60.0, "new")
    p.merge(batch)
    assert p.tpm == {"t": 7} and p.usage == {"u": {"r": 2, "p": 3}} and p.releases == [("c", "lease-1")]
    assert p.cool["dep"] == (60.0, "new")  # the newer cooldown wins
    payload = p.payload(layout)
    assert payload["inst"] == ["p:instances", "mac-a"] and payload["rel"] == [["c", "lease-1"]]


def test_drop_counts_keeps_releases_and_cooldowns():
    """Re-publishing from SQLite replaces budgets and usage, never concurrency releases or cooldowns."""
    p = Pending(releases=[("c", "l")], tpm={"t": 1}, day={"d": 4}, month={("m", "c"): [4, 0.5]},
                usage={"u": {"r": 1}}, cool={"x": (1.0, "")})
    dropped = p.drop_counts()
    assert dropped.day == {"d": 4} and dropped.usage == {"u": {"r": 1}}
    assert p.releases and p.tpm and p.cool and not p.day and not p.month and not p.usage


def test_team_summary_per_instance_and_in_total():
    """Hourly counters of every instance sum per instance and in total, grouped by key if asked."""
    a = [{b"r": b"2", b"p": b"6", b"$": b"0.5", f"key\tfriend\tr".encode(): b"2"},
         {b"r": b"1", f"key\tlaptop\tr".encode(): b"1"}]
    b = [{b"r": b"3", b"e": b"1", f"key\tfriend\tr".encode(): b"3"}]
    out = summarise({"mac-a": a, "mac-b": b}, None)
    assert [(n, rows[0]["requests"]) for n, rows in out["instances"].items()] == [("mac-a", 3), ("mac-b", 3)]
    assert out["total"][0]["requests"] == 6 and out["total"][0]["errors"] == 1 and out["total"][0]["cost"] == 0.5
    by_key = summarise({"mac-a": a, "mac-b": b}, "key")
    assert [(r["group"], r["requests"]) for r in by_key["total"]] == [("friend", 5), ("laptop", 1)]


def test_seed_payload_holds_own_sums_for_today_this_month_and_each_hour():
    """The seed carries the key's day and month sums and this instance's hourly counters from SQLite."""
    layout = Layout("p:", "mac-a")
    pts = [SimpleNamespace(t=3600, series=None, requests=2, errors=0, prompt_tokens=6, completion_tokens=6,
                           cached_tokens=0, cost=0.0)]
    by_key = [SimpleNamespace(**{**vars(pts[0]), "series": "friend"})]
    hours = hours_from_points(pts, by_key, [])
    assert hours == {3600: {"r": 2, "p": 6, "c": 6, "key\tfriend\tr": 2, "key\tfriend\tp": 6, "key\tfriend\tc": 6}}
    payload = seed_payload(layout, Seed(day={"friend": (12, 0.0)}, month={"friend": (30, 0.25)}, hours=hours), NOON)
    assert payload["day"][0][:2] == ["p:day:friend:2026-06-15", 12]
    assert payload["mon"][0][:4] == ["p:mon:friend:2026-06", "p:cost:friend:2026-06", 30, 0.25]
    assert payload["use"][0][0] == "p:use:mac-a:3600"


def test_usage_fields_count_in_total_per_key_and_per_model():
    """One request's counters land in the total and under its key and its model."""
    f = usage_fields("friend", "llama", 1, 0, 3, 4, 0, 0.0)
    assert f == {"r": 1, "key\tfriend\tr": 1, "model\tllama\tr": 1, "p": 3, "key\tfriend\tp": 3,
                 "model\tllama\tp": 3, "c": 4, "key\tfriend\tc": 4, "model\tllama\tc": 4}
    assert hour_of(7199.9) == 3600


def test_tally_is_the_log_before_start_plus_every_request_since():
    """What an instance publishes: the log's counts from before it started plus this run's, summed per
    key and hour; hours older than Redis keeps and past days are dropped from the snapshot."""
    from litegate.state.team import Tally

    tally = Tally()
    tally.add_budget("friend", "2026-06-15", "2026-06", 6, 0.01)  # a request of this run, tallied at once
    tally.add_usage(hour_of(NOON), {"r": 1})
    tally.add_usage(hour_of(NOON) - 40 * 86400, {"r": 9})  # beyond what Redis keeps
    tally.absorb(Seed(day={"friend": (12, 0.0)}, month={"friend": (30, 0.5)}, hours={hour_of(NOON): {"r": 2}}), NOON)
    snap = tally.snapshot(NOON)
    assert snap.day == {"friend": (18, 0.0)} and snap.month == {"friend": (36, 0.51)}
    assert snap.hours == {hour_of(NOON): {"r": 3}}
    assert tally.snapshot(NOON + 86400).day == {}  # the next day starts at zero
