"""The Anthropic face's routes: POST /v1/messages and /v1/messages/count_tokens (any query string,
e.g. Claude Code's `?beta=true`), and the Anthropic shape of GET /v1/models.

The same four steps as the OpenAI face: decode (surfaces.anthropic), admit, run the core, write
through the face. Two things are this face's own:
- a deployment that speaks Messages itself (a "anthropic" row in its Provider.passthrough) gets the
  client's own body: cache_control, signatures, server tools and betas survive; keys, limits and
  usage still apply;
- Anthropic's server web search (`web_search_20250305`) on a translated model is run by litegate's
  own search backend, and shown as server_tool_use / web_search_tool_result blocks.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from litegate.config import Config
from litegate.core import gateway
from litegate.core.services import Call, Plan
from litegate.errors import BadRequest
from litegate.http import edge
from litegate.http.appkeys import CALL, SERVICES
from litegate.providers import PROVIDERS, NativeRequest
from litegate.surfaces import anthropic as face
from litegate.surfaces.base import decode

log = structlog.get_logger("litegate.http")


async def messages(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    mreq = decode(face.decoder, raw)
    chat, search = face.to_chat(mreq)
    call: Call = request[CALL]
    native = gateway.natively(call.cfg, mreq.model, "anthropic")
    if search is not None:
        _search_allowed(call.cfg, mreq, native)
        if native:
            chat.web_search_options = None  # the backend runs its own server tool
    estimate = face.estimate(mreq)
    call, plan = await edge.admit(request, "chat", mreq.model, chat, stream=mreq.stream)
    call.extra_headers["request-id"] = call.request_id  # where Anthropic's SDKs read the id
    _warn_small_context(call, plan, estimate)
    svc = request.app[SERVICES]
    own = NativeRequest("anthropic", raw, mreq.model, headers=request.headers)
    if mreq.stream:
        writer = face.MessagesWriter(mreq.model, input_estimate=estimate)
        return await edge.stream(request, call, gateway.chat_events(svc, call, plan, chat, own), writer)
    if plan.server_tools:  # the tool loop: build the reply from its events, search blocks included
        builder = face.MessageBuilder(mreq.model, input_estimate=estimate)
        await gateway.replay(svc, call, plan, chat, builder.feed)
        return edge.reply(call, builder.result())
    result = await gateway.chat(svc, call, plan, chat, own)
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
    own = NativeRequest("anthropic.count_tokens", raw, mreq.model, headers=request.headers)
    n = await gateway.count_tokens(request.app[SERVICES], call, plan, chat, own, face.estimate(mreq))
    return edge.reply(call, {"input_tokens": n})


# ---------------------------------------------------------------- helpers
def _search_allowed(cfg: Config, mreq: face.MessagesRequest, native: bool) -> None:
    if native or cfg.web_search is not None:
        return
    i = next(i for i, t in enumerate(mreq.tools or ()) if (t.type or "").startswith("web_search_"))
    raise BadRequest(f"tools[{i}]: {mreq.tools[i].type} needs web search, which is not configured on this "
                     "gateway (add a web_search block: Serper or SearXNG)", param=f"tools[{i}].type")


def _warn_small_context(call: Call, plan: Plan, estimate: int) -> None:
    """Claude Code sends 20-40k-token prompts; a backend whose window is an option (Ollama's num_ctx)
    cuts a prompt longer than it silently."""
    for d in call.cfg.groups().get(plan.model, ()):
        option = PROVIDERS[d.provider].context_option
        if not option:
            continue
        window = d.options.get(option)
        if estimate > (window or PROVIDERS[d.provider].context_window):
            where = f"options.{option}={window}" if window else f"no options.{option}"
            log.warning("prompt_exceeds_context_option", request_id=call.request_id, deployment=d.id,
                        prompt_tokens_estimate=estimate, option=option, window=window)
            call.extra_headers["x-litegate-warning"] = (
                f"prompt ~{estimate} tokens, deployment {d.id} has {where}: the backend may cut the prompt; "
                f"set options.{option} in its config")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
