"""The Ollama face's routes: Ollama's native API on litegate's address (ollama.md §8).

GET/HEAD / and /api/version answer reachability probes; /api/tags, /api/show and /api/ps describe
the models the caller may use; /api/chat and /api/generate answer (NDJSON streams by default):
per attempt, a deployment that speaks Ollama's API itself (an "ollama" row in its
Provider.passthrough) gets the client's own body and its lines go back as they came (only the
model's name set back to the client's), any other gets the translated ChatRequest; an empty
request loads or unloads the model. /api/embed and /api/embeddings embed; /api/pull, push,
create, copy and delete are relayed ("ollama.api" rows) to such a server for admin keys. Names
are `name:tag` here: `gpt:latest` means the configured `gpt`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial

import msgspec
import orjson
from aiohttp import web

from litegate.config import Config, Timeouts
from litegate.core import gateway
from litegate.core import plan as planning
from litegate.errors import BadRequest, Forbidden, ModelNotFound
from litegate.http import edge, ollama_catalog as catalog
from litegate.http.appkeys import CALL, SERVICES
from litegate.providers import NativeRequest
from litegate.surfaces.ollama import models, reply, request as face
from litegate.surfaces.ollama.stream import ChatStreamWriter, GenerateStreamWriter, RelayWriter
from litegate.surfaces.ollama.timing import Timing

_NDJSON = "application/x-ndjson"


def _name(cfg: Config, requested: str) -> str:
    """The configured name a client's spelling means (`gpt:latest` -> `gpt`)."""
    groups, routes, aliases = cfg.groups(), cfg.router.routes, cfg.router.aliases
    return models.untagged(requested, lambda n: n in groups or n in routes or n in aliases)


def _timing(request: web.Request) -> Timing:
    return Timing(int(request[CALL].started * 1e9))  # both on the monotonic perf_counter clock


# ---------------------------------------------------------------- probes and model info
async def root(request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


async def version(request: web.Request) -> web.Response:
    call = request[CALL]
    return edge.reply(call, models.version(call.cfg.server.ollama_version))


async def tags(request: web.Request) -> web.Response:
    call = request[CALL]
    return edge.reply(call, models.tags(catalog.cards(call.cfg, edge.principal_of(request))))


async def show(request: web.Request) -> web.Response:
    call = request[CALL]
    asked = face.show(await request.read()).model
    name = _name(call.cfg, asked)
    try:
        planning.resolve(call.cfg, edge.principal_of(request), name)
    except ModelNotFound:
        raise ModelNotFound(f"model '{asked}' not found", param="model") from None
    card = await catalog.show_card(request.app[SERVICES], call.cfg, name)
    return edge.reply(call, models.show(card, asked, request.headers.get("user-agent", "")))


async def ps(request: web.Request) -> web.Response:
    call = request[CALL]
    running = await catalog.running(request.app[SERVICES], call.cfg, edge.principal_of(request))
    return edge.reply(call, models.ps(running))


# ---------------------------------------------------------------- chat and generate
async def answer(decode: Callable[[bytes], face.Inbound], request: web.Request) -> web.StreamResponse:
    """/api/chat and /api/generate (`decode` reads the one or the other body)."""
    inbound = decode(await request.read())
    call = request[CALL]
    svc = request.app[SERVICES]
    name = _name(call.cfg, inbound.model)
    req = msgspec.structs.replace(inbound.chat, model=name)
    if inbound.load is not None:  # reaches a real Ollama, so Open WebUI's unload really frees the memory
        planning.resolve(call.cfg, edge.principal_of(request), name)  # 404 / 403 as for an answer
        d = catalog.first_deployment(call.cfg, name)
        own = NativeRequest("ollama", _not_streamed(inbound.raw), inbound.model, request.path)
        body = await gateway.relayed(svc, d, own) if d is not None else None
        return edge.reply(call, body if body is not None else reply.loaded(inbound.kind, inbound.model, inbound.load))
    call, plan = await edge.admit(request, "chat", name, req, stream=inbound.stream)
    own = NativeRequest("ollama", inbound.raw, inbound.model, request.path, required=inbound.native_only)
    timing = _timing(request)
    chat_kind = inbound.kind == "chat"
    if inbound.stream:
        writer = (ChatStreamWriter if chat_kind else GenerateStreamWriter)(inbound.model, timing)
        return await edge.stream(request, call, gateway.chat_events(svc, call, plan, req, own), writer)
    result = await gateway.chat(svc, call, plan, req, own)
    if isinstance(result, bytes):
        return edge.reply(call, result)
    return edge.reply(call, (reply.chat if chat_kind else reply.generate)(inbound.model, result, timing))


def _not_streamed(raw: bytes) -> bytes:
    doc = orjson.loads(raw)
    doc["stream"] = False
    return orjson.dumps(doc)


# ---------------------------------------------------------------- embeddings
async def embed(decode: Callable[[bytes], face.EmbedCall], request: web.Request) -> web.Response:
    """/api/embed and /api/embeddings (`decode` reads the one or the other body)."""
    ec = decode(await request.read())
    call = request[CALL]
    timing = _timing(request)
    name = _name(call.cfg, ec.model)
    if ec.request is None:  # nothing to embed: no backend needed, but the name must still be usable
        planning.resolve(call.cfg, edge.principal_of(request), name)
        vectors, prompt_tokens = [], 0
    else:
        call, plan = await edge.admit(request, "embeddings", name)
        result = await gateway.embed(request.app[SERVICES], call, plan,
                                     msgspec.structs.replace(ec.request, model=name))
        vectors, prompt_tokens = result.vectors, result.prompt_tokens
    if ec.legacy:
        return edge.reply(call, reply.embeddings(vectors))
    return edge.reply(call, reply.embed(ec.model, vectors, prompt_tokens, timing))


# ---------------------------------------------------------------- model management
_STREAMING = frozenset({"/api/pull", "/api/push", "/api/create"})
# Pulling a model downloads gigabytes: progress lines keep coming, the whole can take an hour.
_MANAGE_TIMEOUTS = Timeouts(connect_s=5, first_token_s=300, total_s=6 * 3600)


async def manage(request: web.Request) -> web.StreamResponse:
    """Relayed to an Ollama server for admin keys; refused, Ollama-style, for any other caller
    (except a pull of a name litegate already serves: there is nothing to download)."""
    call = request[CALL]
    principal = edge.principal_of(request)
    raw = await request.read()
    try:
        doc = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not JSON") from None
    doc = doc if isinstance(doc, dict) else {}
    asked = str(doc.get("model") or doc.get("name") or "")
    name = _name(call.cfg, asked) if asked else ""
    stream = request.path in _STREAMING and doc.get("stream") is not False
    if not principal.admin:
        if request.path == "/api/pull" and name in catalog.names_for(call.cfg, principal):
            done = b'{"status":"success"}'
            if stream:
                return web.Response(body=done + b"\n", content_type=_NDJSON)
            return edge.reply(call, done)
        raise Forbidden(f"{request.path} changes the models of an Ollama server; that needs an admin key, "
                        f"and '{principal.name}' is not one", code="admin_required")
    d, own = catalog.api_target(call.cfg, name)
    if own:  # a name litegate serves: the server's own name for it
        for field in ("model", "name"):
            if doc.get(field):
                doc[field] = d.model
        raw = orjson.dumps(doc)
    native = NativeRequest("ollama.api", raw, path=request.path, method=request.method)
    svc = request.app[SERVICES]
    if stream:
        async with AsyncExitStack() as stack:
            lines = await gateway.relayed(svc, d, native, stack, _MANAGE_TIMEOUTS)
            return await edge.stream(request, call, lines, RelayWriter())
    body = await gateway.relayed(svc, d, native, timeouts=_MANAGE_TIMEOUTS)
    return edge.reply(call, body) if body.strip() else web.Response(status=200)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", root)  # add_get answers HEAD too (Enchanted's reachability check)
    app.router.add_get("/api/version", version)
    app.router.add_get("/api/tags", tags)
    app.router.add_post("/api/show", show)
    app.router.add_get("/api/ps", ps)
    app.router.add_post("/api/chat", partial(answer, face.chat))
    app.router.add_post("/api/generate", partial(answer, face.generate))
    app.router.add_post("/api/embed", partial(embed, face.embed))
    app.router.add_post("/api/embeddings", partial(embed, face.embeddings))
    for path in ("/api/pull", "/api/push", "/api/create", "/api/copy"):
        app.router.add_post(path, manage)
    app.router.add_delete("/api/delete", manage)
