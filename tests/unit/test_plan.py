"""core/plan.py, its parts that need no I/O: a name resolved under a key's rights, the names a
key may see, the server-side tools a model is given, and plans that need no classifier."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from litegate.config import Config, from_dict
from litegate.core import plan
from litegate.core.auth import ANONYMOUS, Principal
from litegate.core.services import Call
from litegate.errors import BadRequest, Forbidden, ModelNotFound
from litegate.wire import ChatRequest, chat_request_decoder


def config(**extra: Any) -> Config:
    doc = {"models": [
        {"name": "llama", "provider": "ollama", "model": "llama3.1:8b"},
        {"name": "gpt", "provider": "openai", "model": "gpt-4o", "api_key_env": "OPENAI_KEY"},
        {"name": "claude", "provider": "anthropic", "model": "claude-x", "api_key_env": "ANTHROPIC_KEY",
         "server_tools": ["fetch_url"]},
    ], "router": {"aliases": {"fast": "llama", "smart": "auto"},
                  "routes": {"auto": {"rules": [{"name": "tools", "model": "gpt", "when": {"has_tools": True}}],
                                      "default": "llama"}}}}
    doc.update(extra)
    return from_dict(doc, env={"OPENAI_KEY": "sk-o", "ANTHROPIC_KEY": "sk-a", "SERPER_KEY": "sk-s"})


CFG = config()
SEARCH = {"web_search": {"provider": "serper", "api_key_env": "SERPER_KEY"}}


def request(**extra: Any) -> ChatRequest:
    body = {"model": "x", "messages": [{"role": "user", "content": "hello there"}], **extra}
    return chat_request_decoder.decode(msgspec.json.encode(body))


# ---------------------------------------------------------------- resolve with key rights
@pytest.mark.parametrize("models, requested, expected", [
    (("*",), "fast", ("llama", "alias:fast")),
    (("llama",), "llama", ("llama", "direct")),
    (("llama",), "fast", ("llama", "alias:fast")),   # the key may use what the alias resolves to
    (("fast",), "fast", ("llama", "alias:fast")),    # or the alias itself
    (("gp*",), "gpt", ("gpt", "direct")),            # patterns
    (("auto",), "smart", ("auto", "alias:smart")),
])
def test_resolve_allowed(models, requested, expected):
    """resolve: a key may call a model by a name it is given (pattern or exact) or by what that name resolves to."""
    assert plan.resolve(CFG, Principal("k", models), requested) == expected


@pytest.mark.parametrize("models, requested", [
    (("llama",), "gpt"),
    (("gpt",), "fast"),
    (("llama*",), "claude"),
    (("fast",), "llama"),  # an alias's right does not open the model under its own name
])
def test_resolve_forbidden_names_key_and_model(models, requested):
    """resolve: a key asking for a model it may not use gets 403 model_not_allowed naming the key and the model."""
    with pytest.raises(Forbidden) as e:
        plan.resolve(CFG, Principal("team-a", models), requested)
    assert (e.value.status, e.value.code, e.value.param) == (403, "model_not_allowed", "model")
    assert "'team-a'" in e.value.message and f"'{requested}'" in e.value.message


def test_resolve_unknown_model_is_404_even_for_a_restricted_key():
    """resolve: an unknown name is ModelNotFound naming it, for any key."""
    with pytest.raises(ModelNotFound, match="'nope'"):
        plan.resolve(CFG, Principal("k", ("llama",)), "nope")


# ---------------------------------------------------------------- visible models
def test_visible_models_for_an_open_gateway():
    """visible_models: every model (owned by its provider), virtual model (litegate) and alias (its target's owner)."""
    assert sorted(plan.visible_models(CFG, ANONYMOUS)) == sorted([
        ("llama", "ollama"), ("gpt", "openai"), ("claude", "anthropic"), ("auto", "litegate"),
        ("fast", "ollama"), ("smart", "litegate")])


@pytest.mark.parametrize("models, visible", [
    (("llama",), ["fast", "llama"]),
    (("fast",), ["fast"]),
    (("g*", "auto"), ["auto", "gpt", "smart"]),
    (("nothing",), []),
])
def test_visible_models_follow_key_rights(models, visible):
    """visible_models: a key sees exactly the names it may send; an alias shows when it or its target is allowed."""
    assert sorted(name for name, _ in plan.visible_models(CFG, Principal("k", models))) == visible


# ---------------------------------------------------------------- server-side tools, and plans without I/O
async def make(cfg: Config, requested: str, req: ChatRequest | None, principal: Principal = ANONYMOUS):
    """plan.make for plans that need no classifier: no Services are touched, so None stands in."""
    return await plan.make(None, Call(cfg=cfg), principal, requested, req)  # type: ignore[arg-type]


async def test_web_search_options_without_web_search_is_400():
    """A request with web_search_options on a gateway without web_search: 400 naming the field, not a 500."""
    with pytest.raises(BadRequest) as e:
        await make(CFG, "llama", request(web_search_options={}))
    assert (e.value.status, e.value.param) == (400, "web_search_options")
    assert "web_search_options" in e.value.message and "not configured" in e.value.message


@pytest.mark.parametrize("requested, body, tools", [
    ("llama", {}, ()),
    ("claude", {}, ("fetch_url",)),
    ("llama", {"web_search_options": {}}, ("web_search",)),
    ("claude", {"web_search_options": {"search_context_size": "low"}}, ("fetch_url", "web_search")),
])
async def test_server_tools(requested, body, tools):
    """The plan's server tools: the model's own, plus web_search once when the client sends web_search_options."""
    cfg = config(**SEARCH)
    assert (await make(cfg, requested, request(**body))).server_tools == tools


async def test_web_search_not_added_twice():
    """A model that already has web_search keeps one, when web_search_options asks for it too."""
    cfg = config(**SEARCH, models=[{"name": "m", "provider": "ollama", "model": "m", "server_tools": ["web_search"]}],
                 router={})
    assert (await make(cfg, "m", request(web_search_options={}))).server_tools == ("web_search",)


async def test_plan_for_a_virtual_model_follows_its_rules():
    """make: a virtual model's rules choose the model (route "rule:<name>") or its default, through an alias too."""
    p = await make(CFG, "smart", request(tools=[{"type": "function", "function": {"name": "f"}}]))
    assert (p.requested, p.resolved, p.model, p.route) == ("smart", "auto", "gpt", "rule:tools")
    p = await make(CFG, "auto", request())
    assert (p.model, p.route) == ("llama", "default") and p.tokens > 0
    p = await make(CFG, "auto", None)  # a call with no chat body (e.g. embeddings) takes the default
    assert (p.model, p.route) == ("llama", "default")


async def test_plan_estimates_tokens_only_for_context_windows():
    """make: the prompt is estimated only when some deployment has a context_window (else 0: no work)."""
    assert (await make(CFG, "llama", request())).tokens == 0
    windowed = config(models=[{"name": "llama", "provider": "ollama", "model": "l", "context_window": 8192}], router={})
    assert (await make(windowed, "llama", request())).tokens > 0


async def test_plan_refuses_a_key_before_anything_else():
    """make: a key without the right to the model is refused (403), even when the request is otherwise bad."""
    with pytest.raises(Forbidden):
        await make(CFG, "gpt", request(web_search_options={}), Principal("k", ("llama",)))
