"""What the Ollama face tells clients about models: a ModelCard per name a principal may use.

Cards come from config (every name a client may send: models, virtual models, aliases), with the
context window requests will actually get (`context_window`, else an Ollama model's `num_ctx`).
For /api/show of a local model the real Ollama is asked too, so its details, model_info and
capabilities are the model's own; if it cannot be reached the config's card still answers.
/api/ps lists what the Ollamas say is loaded, under the names litegate serves it by.
"""

from __future__ import annotations

from typing import Any

import orjson

from litegate import upstream
from litegate.config import Config, Deployment, Timeouts
from litegate.core.auth import Principal
from litegate.core.plan import visible_models
from litegate.core.services import Services
from litegate.errors import GatewayError
from litegate.providers import PROVIDERS, UpstreamRequest
from litegate.surfaces.ollama.models import ModelCard, Running, tagged

_SHOW_TIMEOUTS = Timeouts(connect_s=2, first_token_s=3, total_s=5)


def names_for(cfg: Config, principal: Principal) -> list[str]:
    """Every name the principal may send as `model`, as /v1/models lists them."""
    return [name for name, _ in visible_models(cfg, principal)]


def first_deployment(cfg: Config, name: str) -> Deployment | None:
    """The deployment that stands for a name: its group's first, a virtual model's default's first."""
    name = cfg.resolve_name(name)
    route = cfg.router.routes.get(name)
    if route is not None:
        name = cfg.resolve_name(route.default)
    deps = cfg.groups().get(name)
    return deps[0] if deps else None


def context_of(d: Deployment) -> int | None:
    """The window requests get: the configured one, else the num_ctx litegate sends to Ollama."""
    if d.context_window:
        return d.context_window
    num_ctx = d.options.get("num_ctx") if d.provider == "ollama" else None
    return num_ctx if isinstance(num_ctx, int) and num_ctx > 0 else None


def card(cfg: Config, name: str) -> ModelCard:
    d = first_deployment(cfg, name)
    modified = int(cfg.loaded_at * 1e9)
    if d is None:
        return ModelCard(name, modified_at_ns=modified)
    routed = cfg.resolve_name(name) in cfg.router.routes
    return ModelCard(name, "" if routed else d.provider, "" if routed else d.model, d.capabilities, context_of(d),
                     modified_at_ns=modified)


def cards(cfg: Config, principal: Principal) -> list[ModelCard]:
    return [card(cfg, name) for name in names_for(cfg, principal)]


def api_base(d: Deployment) -> str:
    return (d.api_base or PROVIDERS[d.provider].default_api_base).rstrip("/")


async def show_card(svc: Services, cfg: Config, name: str) -> ModelCard:
    """The config's card, completed by the real Ollama's own /api/show for a local model."""
    base = card(cfg, name)
    d = first_deployment(cfg, name)
    if d is None or d.provider != "ollama" or not base.provider:
        return base
    ureq = UpstreamRequest("POST", api_base(d) + "/api/show", orjson.dumps({"model": d.model}),
                           {"content-type": "application/json"})
    try:
        doc: Any = orjson.loads(await upstream.send(svc.pool, ureq, _SHOW_TIMEOUTS,
                                                    PROVIDERS["ollama"].parse_error, d.id))
    except (GatewayError, orjson.JSONDecodeError):  # unreachable or not Ollama's answer: what config knows still answers
        return base
    if not isinstance(doc, dict):
        return base
    info = doc.get("model_info") if isinstance(doc.get("model_info"), dict) else {}
    details = doc.get("details") if isinstance(doc.get("details"), dict) else {}
    caps = base.capabilities or tuple(c for c in doc.get("capabilities") or () if isinstance(c, str))
    return ModelCard(base.name, base.provider, base.model, caps, base.context_length, base.modified_at_ns,
                     details=details, model_info=info, template=str(doc.get("template") or ""),
                     parameters=str(doc.get("parameters") or ""))


async def running(svc: Services, cfg: Config, principal: Principal) -> list[Running]:
    """Loaded Ollama models under each name litegate serves them by (a poll now when polling is off)."""
    if cfg.router.ollama_poll_s <= 0 or not svc.backends.loaded_models:
        await svc.backends.poll_loaded(svc.session, cfg)
    out = []
    for name in names_for(cfg, principal):
        d = first_deployment(cfg, name)
        if d is None or d.provider != "ollama" or cfg.resolve_name(name) != name:
            continue  # aliases and virtual models would list the same loaded model twice
        state = svc.backends.loaded_models.get(api_base(d)) or {}
        for m in state.get("models") or ():
            if m.get("name") in (d.model, tagged(d.model)):
                out.append(Running(card(cfg, name), str(m.get("expires_at") or ""), int(m.get("size") or 0),
                                   int(m.get("size_vram") or 0), int(m.get("context_length") or 0) or None))
    return out
