"""The plan: the one place a request's model name is resolved, made once and then frozen.

`make()` turns what the client asked for into the model name whose deployments (and fallbacks)
the attempts walk: aliases, the key's right to that name, a virtual model's rules (asking the
classifier model when a rule needs a label), the prompt-size estimate that context windows
need, and the server-side tools the model is given.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import time
import structlog

from litegate.config import Classifier, Config
from litegate.core import auth, router, rules
from litegate.core.attempts import complete
from litegate.core.services import Call, Plan, Services
from litegate.errors import BadRequest, GatewayError, ModelNotFound, clip
from litegate.wire import ChatRequest, Message

log = structlog.get_logger("litegate.plan")
MAX_MODEL_NAME = 256


def resolve(cfg: Config, principal: auth.Principal, requested: str) -> tuple[str, str]:
    """(resolved name, route label), refusing a key that may not use it; no I/O."""
    try:
        name, route = router.resolve(cfg, requested)
    except ModelNotFound as e:
        e.message = f"{e.message}. {suggest(requested, [n for n, _ in visible_models(cfg, principal)])}"
        raise
    auth.check_model(principal, requested, name)
    return name, route


async def make(svc: Services, call: Call, principal: auth.Principal, requested: str,
               req: ChatRequest | None = None) -> Plan:
    cfg = call.cfg
    # What the client sent is recorded (log line, usage row, metric label) only this long; no config
    # names a model longer, so such a name ends in a 404 that quotes it clipped too (router.resolve).
    call.model = clip(requested, MAX_MODEL_NAME)
    resolved, route = resolve(cfg, principal, requested)
    vroute = cfg.router.routes.get(resolved)
    if vroute is None:
        tokens = rules.estimate_tokens(req) if req is not None and cfg.has_context_windows else 0
        return Plan(requested, resolved, resolved, route, tokens, _server_tools(cfg, resolved, req))
    if req is None:
        return Plan(requested, resolved, vroute.default, "default")
    feats = rules.features(req, call.key, call.headers)
    label = None
    if vroute.classifier is not None and rules.needs_label(vroute):
        label = await classify(svc, cfg, vroute.classifier, feats.text)
    decision = rules.decide(vroute, feats, label)
    return Plan(requested, resolved, decision.model, decision.rule, feats.tokens,
                _server_tools(cfg, decision.model, req))


def suggest(name: str, names: list[str]) -> str:
    """'Did you mean ...' from the names the caller may use, nearest first; else the list (or its start)."""
    lowered = {n.lower(): n for n in names}
    near = [lowered[n] for n in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)]
    if near:
        return "Did you mean " + " or ".join(repr(n) for n in near) + "?"
    shown = sorted(names)[:12]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    return ("Models here: " + ", ".join(shown) + more + " (GET /v1/models)") if names else "No models are configured."


def _server_tools(cfg: Config, model: str, req: ChatRequest | None) -> tuple[str, ...]:
    """The model's server tools, plus web_search when the client asks for it (web_search_options)."""
    if req is None:
        return ()
    names = list(cfg.groups()[model][0].server_tools)
    if req.web_search_options is not None:
        if cfg.web_search is None:
            raise BadRequest("web_search_options: web search is not configured on this gateway",
                             param="web_search_options")
        if "web_search" not in names:
            names.append("web_search")
    return tuple(names)


async def classify(svc: Services, cfg: Config, c: Classifier, text: str) -> str | None:
    """Ask the classifier model for one label; cached; its default on timeout, error or nonsense."""
    key = hashlib.sha256(f"{c.model}\0{','.join(c.labels)}\0{text}".encode()).hexdigest()
    hit = svc.labels.get(key)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    label = c.default or None
    instructions = c.instructions or (
        "Classify the user's message. Answer with exactly one of these labels and nothing else: "
        + ", ".join(c.labels) + ".")
    req = ChatRequest(model=c.model, messages=[Message("system", instructions), Message("user", text[:4000])],
                      max_tokens=16, temperature=0.0)
    plan = Plan(c.model, c.model, c.model, "classifier")
    try:
        reply = await asyncio.wait_for(complete(  # the classifier is itself one small model call
            svc, Call(cfg=cfg), plan, req), c.timeout_s)
        answer = (reply.choices[0].message.content or "").lower()
        label = next((lb for lb in c.labels if lb in answer), label)
        svc.labels.put(key, (label, time.monotonic() + c.cache_s))
    except (GatewayError, asyncio.TimeoutError) as e:
        log.warning("classifier_failed", model=c.model, error=getattr(e, "code", None) or type(e).__name__)
    return label


def visible_models(cfg: Config, principal: auth.Principal) -> list[tuple[str, str]]:
    """(name, owner) for every name the principal may send as `model`: models, virtual models, aliases."""
    groups = cfg.groups()

    def owner(name: str) -> str:
        return groups[name][0].provider if name in groups else "litegate"

    out = [(name, deps[0].provider) for name, deps in groups.items() if principal.may_use(name)]
    out += [(name, "litegate") for name in cfg.router.routes if principal.may_use(name)]
    out += [(alias, owner(target)) for alias, target in cfg.router.aliases.items()
            if ("*" not in alias and "?" not in alias)  # patterns (claude-*) are no model a client can pick
            and (principal.may_use(alias) or principal.may_use(target))]
    return out
