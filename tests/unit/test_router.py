"""core/router.py: a requested name -> the ordered attempts (aliases, fallbacks, retries,
cooldown, context windows, strategies, loaded Ollama models)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from litegate.config import Config, from_dict
from litegate.core.router import Attempt, DeploymentState, attempts, chain, resolve
from litegate.errors import BadRequest, ModelNotFound


def dep(name: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": "ollama", "model": model, "api_base": "http://127.0.0.1:1", **extra}


def config(models: list[dict[str, Any]], **router: Any) -> Config:
    return from_dict({"models": models, "router": {"num_retries": 0, "ollama_poll_s": 0, **router}}, env={})


def walk(cfg: Config, name: str = "m", route: str = "direct", seed: int = 0, **kw: Any) -> list[Attempt]:
    return list(attempts(cfg, name, route, random.Random(seed), **kw))


def states(cfg: Config, **by_model: DeploymentState) -> dict[str, DeploymentState]:
    """Live state keyed by deployment id, given per backend model name (ids come from the config)."""
    out = {d.id: by_model[d.model] for d in cfg.models if d.model in by_model}
    assert len(out) == len(by_model), "every named model must be a deployment of the config"
    return out


def ids(tried: list[Attempt]) -> list[str]:
    return [a.deployment.model for a in tried]


# ---------------------------------------------------------------- resolve and chain
FALLBACK_CFG = config(
    [dep("m", "a"), dep("fb1", "b"), dep("fb2", "c"), dep("d", "x")],
    aliases={"gpt-4o": "m"}, fallbacks={"m": ["fb1", "fb2"]},
    routes={"auto": {"rules": [{"model": "fb1", "when": {"has_tools": True}}], "default": "m"}},
)


@pytest.mark.parametrize("requested, expected", [
    ("m", ("m", "direct")),
    ("gpt-4o", ("m", "alias:gpt-4o")),
    ("auto", ("auto", "direct")),
])
def test_resolve_names(requested, expected):
    """resolve: a model or a virtual model is itself ("direct"); an alias resolves to its target ("alias:<name>")."""
    assert resolve(FALLBACK_CFG, requested) == expected


def test_resolve_unknown_names_the_model():
    """resolve: an unknown model is ModelNotFound (404, param model) whose message names what the client sent."""
    with pytest.raises(ModelNotFound) as e:
        resolve(FALLBACK_CFG, "no-such-model")
    assert e.value.status == 404 and e.value.param == "model" and e.value.code == "model_not_found"
    assert "'no-such-model'" in e.value.message


def test_chain_lists_fallbacks_in_order():
    """chain: the chosen model first with its route, then each fallback in config order as "fallback:<name>"."""
    assert chain(FALLBACK_CFG, "m", "alias:gpt-4o") == [
        ("m", "alias:gpt-4o"), ("fb1", "fallback:fb1"), ("fb2", "fallback:fb2")]
    assert chain(FALLBACK_CFG, "d", "direct") == [("d", "direct")]


def test_attempts_walk_fallbacks_in_order_after_retries():
    """attempts: every retry on the model first (retry 0, 1, ...), then each fallback in order, its retries from 0."""
    cfg = config([dep("m", "a"), dep("fb1", "b"), dep("fb2", "c")], num_retries=1, fallbacks={"m": ["fb1", "fb2"]})
    got = [(a.deployment.model, a.route, a.retry) for a in walk(cfg)]
    assert got == [("a", "direct", 0), ("a", "direct", 1), ("b", "fallback:fb1", 0), ("b", "fallback:fb1", 1),
                   ("c", "fallback:fb2", 0), ("c", "fallback:fb2", 1)]


# ---------------------------------------------------------------- retries
def test_retries_pick_untried_deployments_first():
    """Retries within a group go to deployments not tried yet, so three retries on three deployments hit each once."""
    cfg = config([dep("m", "a"), dep("m", "b"), dep("m", "c")], num_retries=2)
    for seed in range(20):
        assert sorted(ids(walk(cfg, seed=seed))) == ["a", "b", "c"], seed


def test_retries_reuse_a_deployment_once_all_are_tried():
    """With more retries than deployments, the group is tried whole first, then tried again."""
    cfg = config([dep("m", "a"), dep("m", "b")], num_retries=3)
    got = ids(walk(cfg, seed=3))
    assert len(got) == 4 and sorted(got[:2]) == ["a", "b"]


# ---------------------------------------------------------------- cooldown
def test_cooling_deployment_is_skipped():
    """A deployment cooling down (cooling_until > now) is passed over while another in the group is warm."""
    cfg = config([dep("m", "a"), dep("m", "b")], num_retries=3)
    state = states(cfg, a=DeploymentState(cooling_until=200.0))
    assert ids(walk(cfg, state=state, now=100.0)) == ["b"] * 4


def test_cooldown_over_makes_a_deployment_usable_again():
    """At now >= cooling_until the deployment is warm again and gets tried."""
    cfg = config([dep("m", "a"), dep("m", "b")], num_retries=1)
    state = states(cfg, a=DeploymentState(cooling_until=100.0))
    assert sorted(ids(walk(cfg, state=state, now=100.0))) == ["a", "b"]


def test_all_cooling_picks_the_one_that_recovers_first():
    """When every deployment of a group is cooling, the one whose cooldown ends first is tried (least bad), not none."""
    cfg = config([dep("m", "a"), dep("m", "b"), dep("m", "c")], num_retries=1)
    state = states(cfg, a=DeploymentState(cooling_until=300.0), b=DeploymentState(cooling_until=150.0),
                   c=DeploymentState(cooling_until=900.0))
    assert ids(walk(cfg, state=state, now=100.0)) == ["b", "b"]


def test_cooling_primary_still_comes_before_fallback():
    """A cooling group is still tried (its least-bad deployment) before the fallbacks, which keep their order."""
    cfg = config([dep("m", "a"), dep("fb", "b")], fallbacks={"m": ["fb"]})
    state = states(cfg, a=DeploymentState(cooling_until=500.0))
    assert [(a.deployment.model, a.route) for a in walk(cfg, state=state, now=1.0)] == [
        ("a", "direct"), ("b", "fallback:fb")]


# ---------------------------------------------------------------- context windows
def test_context_window_skips_small_deployment_in_group():
    """A deployment whose context_window is below the prompt estimate is passed over; one that fits is used."""
    cfg = config([dep("m", "small", context_window=1000), dep("m", "big", context_window=100_000)], num_retries=2)
    assert ids(walk(cfg, tokens=5000)) == ["big"] * 3
    assert "small" in ids(walk(cfg, tokens=1000))  # exactly the window still fits


def test_context_skip_becomes_context_route():
    """When the model's deployments are all too small, the first fallback that fits is routed as "context:<name>"."""
    cfg = config([dep("m", "a", context_window=1000), dep("fb1", "b", context_window=2000),
                  dep("fb2", "c", context_window=50_000), dep("fb3", "d")],
                 fallbacks={"m": ["fb1", "fb2", "fb3"]})
    got = [(a.deployment.model, a.route) for a in walk(cfg, tokens=4000)]
    assert got == [("c", "context:fb2"), ("d", "context:fb3")]


def test_no_context_skip_keeps_fallback_route():
    """Without a context skip a fallback keeps its "fallback:<name>" label."""
    cfg = config([dep("m", "a", context_window=8000), dep("fb", "b")], fallbacks={"m": ["fb"]})
    assert [a.route for a in walk(cfg, tokens=10)] == ["direct", "fallback:fb"]


def test_nothing_fits_is_400_naming_the_model():
    """No deployment of the model or its fallbacks fits the prompt: 400 context_length_exceeded naming the model."""
    cfg = config([dep("m", "a", context_window=1000), dep("fb", "b", context_window=2000)], fallbacks={"m": ["fb"]})
    with pytest.raises(BadRequest) as e:
        walk(cfg, tokens=5000)
    assert e.value.status == 400 and e.value.code == "context_length_exceeded" and e.value.param == "messages"
    assert "'m'" in e.value.message and "5000" in e.value.message


# ---------------------------------------------------------------- strategies
class RecordingRng(random.Random):
    """A Random whose choices() records what it was offered and takes the last candidate."""

    def __init__(self) -> None:
        super().__init__(0)
        self.offered: list[tuple[list[str], list[float]]] = []

    def choices(self, population, weights=None, **kw):  # type: ignore[override]
        self.offered.append(([d.model for d in population], list(weights)))
        return [population[-1]]


def first_pick(cfg: Config, rng: random.Random, **kw: Any) -> str:
    return next(attempts(cfg, "m", "direct", rng, **kw)).deployment.model


def test_weighted_passes_weights_to_the_draw():
    """weighted (the default): the draw is over every fresh deployment with its configured weight."""
    cfg = config([dep("m", "a", weight=3), dep("m", "b", weight=1)])
    rng = RecordingRng()
    assert first_pick(cfg, rng) == "b"
    assert rng.offered == [(["a", "b"], [3, 1])]


def test_weighted_shares_traffic_by_weight():
    """weighted: over many draws a 3:1 weighting gives the heavier deployment about three quarters."""
    cfg = config([dep("m", "a", weight=3), dep("m", "b", weight=1)])
    rng = random.Random(7)
    counts = Counter(first_pick(cfg, rng) for _ in range(2000))
    assert 0.70 < counts["a"] / 2000 < 0.80


@pytest.mark.parametrize("in_flight, weights, expected", [
    ({"a": 2, "b": 0, "c": 1}, (1, 1, 1), "b"),
    ({"a": 2, "b": 3, "c": 5}, (1, 2, 1), "b"),  # per unit of weight: 2, 1.5, 5
], ids=["fewest-in-flight", "in-flight-per-weight"])
def test_least_busy_picks_lowest_load(in_flight, weights, expected):
    """least_busy: the deployment with the fewest requests in flight per unit of weight is picked."""
    cfg = config([dep("m", x, weight=w) for x, w in zip("abc", weights)], strategy={"m": "least_busy"})
    state = states(cfg, **{x: DeploymentState(in_flight=n) for x, n in in_flight.items()})
    assert first_pick(cfg, RecordingRng(), state=state) == expected


def test_least_busy_ties_are_drawn_by_weight():
    """least_busy: deployments tied on load go to the weighted draw, and only they do."""
    cfg = config([dep("m", "a"), dep("m", "b"), dep("m", "c")], strategy={"m": "least_busy"})
    state = states(cfg, a=DeploymentState(in_flight=1))
    rng = RecordingRng()
    first_pick(cfg, rng, state=state)
    assert rng.offered == [(["b", "c"], [1, 1])]


@pytest.mark.parametrize("p50, expected", [
    ({"a": 900.0, "b": 120.0, "c": 400.0}, "b"),
    ({"a": 900.0, "b": 120.0, "c": None}, "c"),  # unknown latency counts as 0: a new deployment gets measured
], ids=["fastest", "unmeasured-first"])
def test_latency_picks_lowest_p50(p50, expected):
    """latency: the deployment with the lowest p50 is picked; one never measured is tried first."""
    cfg = config([dep("m", "a"), dep("m", "b"), dep("m", "c")], strategy={"m": "latency"})
    state = states(cfg, **{x: DeploymentState(p50_ms=v) for x, v in p50.items()})
    assert first_pick(cfg, RecordingRng(), state=state) == expected


def test_strategy_is_per_model():
    """A strategy applies to the model it is configured for; the fallback keeps the weighted default."""
    cfg = config([dep("m", "a"), dep("m", "b"), dep("fb", "c"), dep("fb", "d")],
                 strategy={"m": "latency"}, fallbacks={"m": ["fb"]})
    state = states(cfg, a=DeploymentState(p50_ms=50.0), b=DeploymentState(p50_ms=10.0),
                   c=DeploymentState(p50_ms=10.0), d=DeploymentState(p50_ms=99.0))
    rng = RecordingRng()
    got = list(attempts(cfg, "m", "direct", rng, state=state))
    assert [a.deployment.model for a in got] == ["b", "d"]  # RecordingRng takes the last of the weighted draw
    assert rng.offered == [(["c", "d"], [1, 1])]


# ---------------------------------------------------------------- loaded Ollama models
@pytest.mark.parametrize("loaded", [
    {"a": True, "b": False, "c": False},
    {"a": True, "b": None, "c": None},
], ids=["loaded-over-unloaded", "loaded-over-unknown"])
def test_loaded_models_are_preferred(loaded):
    """A deployment whose model is loaded (Ollama /api/ps) is preferred over unloaded or unknown ones."""
    cfg = config([dep("m", "a"), dep("m", "b"), dep("m", "c")], num_retries=1)
    state = states(cfg, **{x: DeploymentState(loaded=v) for x, v in loaded.items()})
    rng = RecordingRng()  # would take "c", the last candidate, if the loaded one were not preferred
    assert [a.deployment.model for a in attempts(cfg, "m", "direct", rng, state=state)] == ["a", "a"]


def test_no_loaded_model_uses_the_whole_group():
    """When no deployment reports its model loaded, every warm one stays a candidate."""
    cfg = config([dep("m", "a"), dep("m", "b")], num_retries=1)
    state = states(cfg, a=DeploymentState(loaded=False), b=DeploymentState(loaded=False))
    assert sorted(ids(walk(cfg, state=state))) == ["a", "b"]


def test_loaded_but_cooling_is_not_preferred():
    """A loaded deployment that is cooling down is passed over for a warm one (cooldown before preference)."""
    cfg = config([dep("m", "a"), dep("m", "b")], num_retries=1)
    state = states(cfg, a=DeploymentState(loaded=True, cooling_until=50.0))
    assert ids(walk(cfg, state=state, now=10.0)) == ["b", "b"]
