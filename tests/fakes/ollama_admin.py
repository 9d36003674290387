"""Model management and the older embeddings route for the fake Ollama (tests/fakes/ollama.py).

==================  ==========================================================================
POST /api/pull      ``{"model", "stream"?}``: NDJSON progress lines ("pulling manifest", one
                    download line with digest/total/completed, "success") unless ``stream`` is
                    false, then ``{"status": "success"}``; model "missing..." -> 404
                    ``pull model manifest: file does not exist``
DELETE /api/delete  ``{"model"}`` -> 200 empty body; unknown ("missing...") -> 404
POST /api/copy      ``{"source", "destination"}`` -> 200 empty body
POST /api/create    ``{"model", "from"?, ...}`` -> like pull: progress lines or one success object
POST /api/push      ``{"model"}`` -> like pull
POST /api/embeddings  ``{"model", "prompt"}`` -> ``{"embedding": [...]}``; empty prompt -> ``[]``
==================  ==========================================================================

Every request is recorded by the fake's middleware, so tests can see what litegate passed on.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        return _error(400, "invalid JSON")
    if not isinstance(body, dict):
        return _error(400, "missing request body")
    return body


async def _progress(request: web.Request, body: dict[str, Any], lines: list[dict[str, Any]]) -> web.StreamResponse:
    if body.get("stream") is False:
        return web.json_response({"status": "success"})
    resp = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
    await resp.prepare(request)
    for line in [*lines, {"status": "success"}]:
        await resp.write(json.dumps(line).encode() + b"\n")
    await resp.write_eof()
    return resp


def _missing(body: dict[str, Any]) -> bool:
    return str(body.get("model") or body.get("name") or "").startswith("missing")


async def pull(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    if _missing(body):
        return _error(404, "pull model manifest: file does not exist")
    return await _progress(request, body, [
        {"status": "pulling manifest"},
        {"status": "pulling 0123abcd", "digest": "sha256:0123abcd", "total": 100, "completed": 100}])


async def push(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    return await _progress(request, body, [{"status": "retrieving manifest"}])


async def create(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    return await _progress(request, body, [{"status": "using existing layer sha256:0123abcd"}])


async def delete(request: web.Request) -> web.Response:
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    if _missing(body):
        return _error(404, f"model '{body.get('model')}' not found")
    return web.Response(status=200)


async def copy(request: web.Request) -> web.Response:
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    if not body.get("source") or not body.get("destination"):
        return _error(400, "source and destination are required")
    return web.Response(status=200)


async def embeddings(request: web.Request) -> web.Response:
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    prompt = body.get("prompt") or ""
    return web.json_response({"embedding": [len(prompt) / 10, 0.5, -0.25] if prompt else []})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/pull", pull)
    app.router.add_post("/api/push", push)
    app.router.add_post("/api/create", create)
    app.router.add_delete("/api/delete", delete)
    app.router.add_post("/api/copy", copy)
    app.router.add_post("/api/embeddings", embeddings)
