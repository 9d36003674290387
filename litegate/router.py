"""Pure routing: (requested model, config snapshot) -> the ordered attempts to make.

A requested name is resolved through aliases, then tried on its group of deployments (weighted
choice, untried first, `num_retries` extra attempts), then on each of its fallbacks in order.
No I/O and no clock: the gateway walks the attempts and decides, on each error, whether to go on.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from .config import Config, Deployment
from .errors import ModelNotFound


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment: Deployment
    route: str  # why this deployment: "direct", "alias:<name>", "fallback:<name>"
    retry: int  # 0 for the first attempt on a model name, then 1, 2, ...


def resolve(cfg: Config, requested: str) -> tuple[str, str]:
    """(model name, route label) for a client's `model`, or ModelNotFound naming it."""
    name = cfg.resolve_name(requested)
    if name not in cfg.groups():
        raise ModelNotFound(f"The model '{requested}' does not exist on this gateway", param="model")
    return name, ("direct" if name == requested else f"alias:{requested}")


def chain(cfg: Config, requested: str) -> list[tuple[str, str]]:
    """[(model name, route)]: the requested model first, then its fallbacks in order."""
    name, route = resolve(cfg, requested)
    out = [(name, route)]
    out += [(fb, f"fallback:{fb}") for fb in cfg.router.fallbacks.get(name, ())]
    return out


def pick(deployments: tuple[Deployment, ...], tried: set[str], rng: random.Random) -> Deployment:
    """Weighted random choice, preferring deployments not yet tried for this request."""
    fresh = [d for d in deployments if d.id not in tried] or list(deployments)
    if len(fresh) == 1:
        return fresh[0]
    return rng.choices(fresh, weights=[d.weight for d in fresh])[0]


def attempts(cfg: Config, requested: str, rng: random.Random) -> Iterator[Attempt]:
    groups = cfg.groups()
    for name, route in chain(cfg, requested):
        tried: set[str] = set()
        for retry in range(1 + cfg.router.num_retries):
            d = pick(groups[name], tried, rng)
            tried.add(d.id)
            yield Attempt(d, route, retry)
