"""What the Ollama face tells clients about models: a ModelCard per name a principal may use.

Cards come from config (every name a client may send: models, virtual models, aliases), with the
context window requests will actually get (`context_window`, else an option such as Ollama's
`num_ctx`, else the provider's usual size). For /api/show of a model whose backend speaks Ollama's
API (an "ollama.api" pass-through row) that backend is asked too, so its details, model_info and
capabilities are the model's own; if it cannot be reached the config's card still answers.
/api/ps lists what the backends say is loaded, under the names litegate serves it by.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from litegate.config import Config, Deployment, Timeouts
from litegate.core import gateway
from litegate.core.auth import Principal
from litegate.core.plan import visible_models
from litegate.core.services import Services
from litegate.errors import BadRequest, GatewayError
from litegate.providers import PROVIDERS, NativeRequest
from litegate.providers.base import api_base
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
    """The window requests get: the configured one, else the option litegate sends (Ollama's num_ctx)."""
    if d.context_window:
        return d.context_window
    option = PROVIDERS[d.provider].context_option
    window = d.options.get(option) if option else None
    return window if isinstance(window, int) and window > 0 else None


def card(cfg: Config, name: str) -> ModelCard:
    d = first_deployment(cfg, name)
    modified = int(cfg.loaded_at * 1e9)
    if d is None or cfg.resolve_name(name) in cfg.router.routes:  # no one model stands behind a routed name
        return ModelCard(name, modified_at_ns=modified)
    p = PROVIDERS[d.provider]
    usual = 0 if p.context_option else p.context_window  # a window set by an option is that option's
    return ModelCard(name, d.model, d.capabilities, context_of(d), usual_context=usual, vision=p.vision,
                     modified_at_ns=modified)


def api_target(cfg: Config, name: str) -> tuple[Deployment, bool]:
    """Where a model management request about `name` goes (Ollama's API, relayed as it is), and whether
    `name` is a litegate name it serves: else the first server that takes such requests at all."""
    d = first_deployment(cfg, name) if name else None
    if d is not None and gateway.passthrough(d, "ollama.api"):
        return d, True
    for d in cfg.models:
        if gateway.passthrough(d, "ollama.api"):
            return d, False
    raise BadRequest("no Ollama server is configured: model management goes to an Ollama backend")


def cards(cfg: Config, principal: Principal) -> list[ModelCard]:
    return [card(cfg, name) for name in names_for(cfg, principal)]


async def show_card(svc: Services, cfg: Config, name: str) -> ModelCard:
    """The config's card, completed by the backend's own /api/show when it speaks Ollama's API."""
    base = card(cfg, name)
    d = first_deployment(cfg, name)
    if d is None or not base.model:
        return base
    try:
        doc: Any = orjson.loads(await gateway.relayed(
            svc, d, NativeRequest("ollama.api", orjson.dumps({"model": d.model}), path="/api/show"),
            timeouts=_SHOW_TIMEOUTS) or b"null")
    except (GatewayError, orjson.JSONDecodeError):  # unreachable or not Ollama's answer: config's card answers
        return base
    if not isinstance(doc, dict):
        return base
    info = doc.get("model_info") if isinstance(doc.get("model_info"), dict) else {}
    details = doc.get("details") if isinstance(doc.get("details"), dict) else {}
    caps = base.capabilities or tuple(c for c in doc.get("capabilities") or () if isinstance(c, str))
    return replace(base, capabilities=caps, details=details, model_info=info,
                   template=str(doc.get("template") or ""), parameters=str(doc.get("parameters") or ""))


async def running(svc: Services, cfg: Config, principal: Principal) -> list[Running]:
    """Loaded Ollama models under each name litegate serves them by (a poll now when polling is off)."""
    if cfg.router.ollama_poll_s <= 0 or not svc.backends.loaded_models:
        await svc.backends.poll_loaded(svc.session, cfg)
    out = []
    for name in names_for(cfg, principal):
        d = first_deployment(cfg, name)
        if d is None or cfg.resolve_name(name) != name:
            continue  # aliases and virtual models would list the same loaded model twice
        p = PROVIDERS[d.provider]
        if not p.loaded_path:
            continue  # the backend does not say what it has loaded
        state = svc.backends.loaded_models.get(api_base(d, p.default_api_base)) or {}
        for m in state.get("models") or ():
            if m.get("name") in (d.model, tagged(d.model)):
                out.append(Running(card(cfg, name), str(m.get("expires_at") or ""), int(m.get("size") or 0),
                                   int(m.get("size_vram") or 0), int(m.get("context_length") or 0) or None))
    return out
