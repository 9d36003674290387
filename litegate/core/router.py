"""Pure routing: (requested model, config snapshot, live state) -> the ordered attempts to make.

A requested name is resolved through aliases (and a virtual route's rules, decided before this
by rules.decide), then tried on its group of deployments, then on each fallback in order.
Within a group: deployments cooling down or too small for the prompt are passed over, loaded
Ollama models are preferred, and the group's strategy (weighted, least_busy, latency) picks
among the rest, untried first. No I/O and no clock of its own: `now` and `state` come in.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from litegate.config import Config, Deployment
from litegate.errors import BadRequest, ModelNotFound, clip


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment: Deployment
    route: str  # why this deployment: "direct", "alias:<name>", "rule:<x>", "fallback:<name>", "context:<name>"
    retry: int  # 0 for the first attempt on a model name, then 1, 2, ...


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """What the gateway knows of a deployment right now (kept by gateway.Backends)."""

    in_flight: int = 0
    cooling_until: float = 0.0
    p50_ms: float | None = None
    loaded: bool | None = None  # Ollama: is the model in /api/ps? None = unknown


NO_STATE = DeploymentState()


def resolve(cfg: Config, requested: str) -> tuple[str, str]:
    """(model or route name, route label) for a client's `model`, or ModelNotFound naming it.

    `name:latest` also means a configured `name`: Ollama clients list models with a tag (litegate's
    Ollama face lists `gpt` as `gpt:latest`) and Copilot then chats with that name on /v1 too."""
    asked = requested
    name = cfg.resolve_name(asked)
    if name not in cfg.groups() and name not in cfg.router.routes and asked.endswith(":latest"):
        asked = asked[: -len(":latest")]
        name = cfg.resolve_name(asked)
    if name not in cfg.groups() and name not in cfg.router.routes:
        raise ModelNotFound(f"The model '{clip(requested)}' does not exist on this gateway", param="model")
    return name, ("direct" if name == asked else f"alias:{asked}")


def chain(cfg: Config, name: str, route: str) -> list[tuple[str, str]]:
    """[(model name, route)]: the chosen model first, then its fallbacks in order."""
    return [(name, route)] + [(fb, f"fallback:{fb}") for fb in cfg.router.fallbacks.get(name, ())]


def _usable(deps: tuple[Deployment, ...], state: Mapping[str, DeploymentState], now: float,
            tokens: int) -> list[Deployment]:
    if len(deps) == 1:  # the usual group: cooling or not, loaded or not, it is the one to try
        d = deps[0]
        return [d] if d.context_window is None or tokens <= d.context_window else []
    fit = [d for d in deps if d.context_window is None or tokens <= d.context_window]
    warm = [d for d in fit if state.get(d.id, NO_STATE).cooling_until <= now]
    if not warm and fit:  # everyone is cooling down: try the one that recovers first
        warm = [min(fit, key=lambda d: state.get(d.id, NO_STATE).cooling_until)]
    loaded = [d for d in warm if state.get(d.id, NO_STATE).loaded]
    return loaded or warm


def pick(candidates: list[Deployment], tried: set[str], strategy: str, state: Mapping[str, DeploymentState],
         rng: random.Random) -> Deployment:
    fresh = [d for d in candidates if d.id not in tried] or candidates
    if len(fresh) == 1:
        return fresh[0]
    if strategy == "least_busy":
        low = min(state.get(d.id, NO_STATE).in_flight / d.weight for d in fresh)
        fresh = [d for d in fresh if state.get(d.id, NO_STATE).in_flight / d.weight == low]
    elif strategy == "latency":
        # Unknown latency counts as 0, so a new deployment gets measured.
        best = min(state.get(d.id, NO_STATE).p50_ms or 0.0 for d in fresh)
        fresh = [d for d in fresh if (state.get(d.id, NO_STATE).p50_ms or 0.0) == best]
    return fresh[0] if len(fresh) == 1 else rng.choices(fresh, weights=[d.weight for d in fresh])[0]


def attempts(cfg: Config, name: str, route: str, rng: random.Random, *, state: Mapping[str, DeploymentState] = {},
             now: float = 0.0, tokens: int = 0) -> Iterator[Attempt]:
    """Every attempt to make for model `name`, in order; a context-too-long skip is a fallback."""
    groups = cfg.groups()
    skipped_for_context = yielded = False
    for model, why in chain(cfg, name, route):
        candidates = _usable(groups[model], state, now, tokens)
        if not candidates:
            skipped_for_context = True
            continue
        if skipped_for_context and why.startswith("fallback:"):
            why = f"context:{model}"
        tried: set[str] = set()
        for retry in range(1 + cfg.router.num_retries):
            d = pick(candidates, tried, cfg.router.strategy.get(model, "weighted"), state, rng)
            tried.add(d.id)
            yielded = True
            yield Attempt(d, why, retry)
    if skipped_for_context and not yielded:
        raise BadRequest(f"the prompt (~{tokens} tokens) is longer than the context window of every deployment "
                         f"of '{name}' and its fallbacks", param="messages", code="context_length_exceeded")
