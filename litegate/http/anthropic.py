"""The Anthropic face's routes: POST /v1/messages and /v1/messages/count_tokens (any query string,
e.g. Claude Code's `?beta=true`), and the Anthropic shape of GET /v1/models.

The same four steps as the OpenAI face: decode (surfaces.anthropic), admit, run the core, write
through the face. Two things are this face's own:
- a model whose deployments are Anthropic gets the client's body natively (core.gateway.Native):
  cache_control, signatures, server tools and betas survive; keys, limits and usage still apply;
- Anthropic's server web search (`web_search_20250305`) on any other model is run by litegate's
  own search backend, and shown as server_tool_use / web_search_tool_result blocks.
"""

from __future__ import annotations

import msgspec
import orjson
import structlog
from aiohttp import web

from litegate.config import Config
from litegate.core import gateway
from litegate.core.services import Call, Plan
from litegate.errors import BadRequest
from litegate.http import edge
from litegate.http.appkeys import CALL, SERVICES
from litegate.surfaces import anthropic as face
from litegate.surfaces.base import decode
from litegate.wire import StreamOptions

log = structlog.get_logger("litegate.http")
OLLAMA_DEFAULT_NUM_CTX = 4096  # what an Ollama without OLLAMA_CONTEXT_LENGTH may use on a small machine


async def messages(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    mreq = decode(face.decoder, raw)
    chat, search = face.to_chat(mreq)
    call: Call = request[CALL]
    native = _anthropic_only(call.cfg, mreq.model)
    if search is not None:
        _search_allowed(call.cfg, mreq, native)
        if native:
            chat.web_search_options = None  # Anthropic runs its own server tool
    estimate = face.estimate(mreq)
    call, plan = await edge.admit(request, "chat", mreq.model, chat, stream=mreq.stream)
    call.extra_headers["request-id"] = call.request_id  # where Anthropic's SDKs read the id
    _warn_small_context(call, plan, estimate)
    svc = request.app[SERVICES]
    body = gateway.Native(_native_body(call.cfg, plan, raw), request.headers, mreq.model)
    if mreq.stream:
        writer = face.MessagesWriter(mreq.model, input_estimate=estimate)
        return await edge.stream(request, call, gateway.messages_events(svc, call, plan, chat, body), writer)
    if plan.server_tools:  # the tool loop: build the reply from its events, search blocks included
        builder = face.MessageBuilder(mreq.model, input_estimate=estimate)
        looped = msgspec.structs.replace(chat, stream=True, stream_options=StreamOptions(include_usage=True))
        async for ev in gateway.chat_events(svc, call, plan, looped):
            builder.feed(ev)
        return edge.reply(call, builder.result())
    result = await gateway.messages(svc, call, plan, chat, body)
    if isinstance(result, bytes):
        return edge.reply(call, result)
    return edge.reply(call, face.from_completion(result, mreq.model, input_estimate=estimate))


async def count_tokens(request: web.Request) -> web.Response:
    raw = await request.read()
    mreq = decode(face.decoder, raw)
    chat, _ = face.to_chat(mreq)  # the same validation as a real request
    chat.web_search_options = None  # counting runs no search
    call, plan = await edge.admit(request, "count_tokens", mreq.model, chat)
    call.extra_headers["request-id"] = call.request_id
    body = gateway.Native(_native_body(call.cfg, plan, raw), request.headers, mreq.model)
    n = await gateway.count_tokens(request.app[SERVICES], call, plan, chat, body, face.estimate(mreq))
    return edge.reply(call, {"input_tokens": n})


# ---------------------------------------------------------------- helpers
def _providers(cfg: Config, name: str) -> set[str]:
    """The providers of every deployment a model name can reach: its group, then its fallbacks."""
    groups = cfg.groups()
    return {d.provider for n in (name, *cfg.router.fallbacks.get(name, ())) for d in groups.get(n, ())}


def _anthropic_only(cfg: Config, requested: str) -> bool:
    """Every deployment the name can reach (fallbacks included) is Anthropic: the request goes natively."""
    name = cfg.resolve_name(requested)
    if name not in cfg.groups():
        return False  # unknown (the plan says so) or a virtual model: its rules decide later
    return _providers(cfg, name) == {"anthropic"}


def _search_allowed(cfg: Config, mreq: face.MessagesRequest, native: bool) -> None:
    if native or cfg.web_search is not None:
        return
    i = next(i for i, t in enumerate(mreq.tools or ()) if (t.type or "").startswith("web_search_"))
    raise BadRequest(f"tools[{i}]: {mreq.tools[i].type} needs web search, which is not configured on this "
                     "gateway (add a web_search block: Serper or SearXNG)", param=f"tools[{i}].type")


def _native_body(cfg: Config, plan: Plan, raw: bytes) -> dict:
    """The client's body as JSON, only when some deployment of the plan speaks Anthropic."""
    return orjson.loads(raw) if "anthropic" in _providers(cfg, plan.model) else {}


def _warn_small_context(call: Call, plan: Plan, estimate: int) -> None:
    """Claude Code sends 20-40k-token prompts; an Ollama num_ctx below that cuts them silently."""
    for d in call.cfg.groups().get(plan.model, ()):
        if d.provider != "ollama":
            continue
        num_ctx = d.options.get("num_ctx")
        if estimate > (num_ctx or OLLAMA_DEFAULT_NUM_CTX):
            where = f"options.num_ctx={num_ctx}" if num_ctx else "no options.num_ctx"
            log.warning("prompt_exceeds_num_ctx", request_id=call.request_id, deployment=d.id,
                        prompt_tokens_estimate=estimate, num_ctx=num_ctx)
            call.extra_headers["x-litegate-warning"] = (
                f"prompt ~{estimate} tokens, deployment {d.id} has {where}: Ollama may cut the prompt; "
                "set options.num_ctx in its config")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
