"""The OpenAI face's routes: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models.

Each handler is the same four steps every face takes: decode the body (surfaces), admit it
(plan + key limits, edge.admit), run the core (gateway), and write the answer through the
face (a whole reply, or edge.stream with the face's StreamWriter).
"""

from __future__ import annotations

from aiohttp import web

from litegate.config import Config
from litegate.core import gateway
from litegate.core import plan as planning
from litegate.core.auth import Principal
from litegate.errors import BadRequest, NotFound, clip
from litegate.http import edge
from litegate.http.appkeys import CALL, SERVICES
from litegate.surfaces import anthropic as anthropic_face
from litegate.surfaces import openai as face
from litegate.surfaces.base import decode
from litegate.wire import chat_request_decoder, completion_request_decoder, embeddings_request_decoder


async def chat_completions(request: web.Request) -> web.StreamResponse:
    req = decode(chat_request_decoder, await request.read())
    if not req.messages:
        raise BadRequest("messages must contain at least one message", param="messages")
    call, plan = await edge.admit(request, "chat", req.model, req, stream=req.stream)
    svc = request.app[SERVICES]
    reasoning = call.cfg.server.reasoning_content
    if req.stream:
        writer = face.ChunkWriter(req.model, include_usage=req.include_usage, reasoning=reasoning)
        return await edge.stream(request, call, gateway.chat_events(svc, call, plan, req), writer)
    result = await gateway.chat(svc, call, plan, req)
    return edge.reply(call, face.chat_reply(result, req.model, reasoning=reasoning))


async def completions(request: web.Request) -> web.StreamResponse:
    req = decode(completion_request_decoder, await request.read())
    call, plan = await edge.admit(request, "completions", req.model, stream=req.stream)
    svc = request.app[SERVICES]
    if req.stream:
        writer = face.CompletionWriter(req.model, include_usage=req.include_usage)
        return await edge.stream(request, call, gateway.completion_events(svc, call, plan, req), writer)
    return edge.reply(call, face.text_reply(await gateway.completion(svc, call, plan, req), req.model))


async def embeddings(request: web.Request) -> web.Response:
    req = decode(embeddings_request_decoder, await request.read())
    if isinstance(req.input, list) and not req.input:
        raise BadRequest("input must not be empty", param="input")
    call, plan = await edge.admit(request, "embeddings", req.model)
    vectors = await gateway.embed(request.app[SERVICES], call, plan, req)
    return edge.reply(call, face.embeddings_reply(vectors, req.model, req.encoding_format))


def models_for(cfg: Config, principal: Principal) -> list[face.Model]:
    created = int(cfg.loaded_at)
    return [face.Model(name, created, owner) for name, owner in planning.visible_models(cfg, principal)]


async def list_models(request: web.Request) -> web.Response:
    call = request[CALL]
    models = models_for(call.cfg, edge.principal_of(request))
    if "anthropic-version" in request.headers:  # Anthropic's SDKs (Claude Code's model discovery)
        return edge.reply(call, anthropic_face.model_list([(m.id, m.created) for m in models]))
    return edge.reply(call, face.ModelList(models))


async def get_model(request: web.Request) -> web.Response:
    call = request[CALL]
    model_id = request.match_info["model"]
    for m in models_for(call.cfg, edge.principal_of(request)):
        if m.id == model_id:
            return edge.reply(call, m)
    raise NotFound(f"The model '{clip(model_id)}' does not exist on this gateway", param="model", code="model_not_found")


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_post(f"{prefix}/completions", completions)
        app.router.add_post(f"{prefix}/embeddings", embeddings)
        app.router.add_get(f"{prefix}/models", list_models)
        app.router.add_get(prefix + "/models/{model:.+}", get_model)
