"""The inbound OpenAI surface: routes, the SSE writer and the request middlewares.

This module is the one place that turns errors into responses (`error_middleware`): every
GatewayError, aiohttp HTTP exception and unexpected exception leaves as the OpenAI error JSON.
`context_middleware` times each request and writes the one canonical log line.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from urllib.parse import urlsplit
from contextlib import aclosing
from typing import Any

import msgspec
import structlog
from aiohttp import web

from . import __version__, accounting, auth, gateway, router, sessions
from .chunks import sse
from .config import Config, ConfigHolder
from .errors import (
    BadRequest, Forbidden, GatewayError, InternalError, MethodNotAllowed, NotFound, PayloadTooLarge, Unauthorized,
)
from .gateway import Call, Services
from .wire import (
    Model, ModelList, chat_request_decoder, completion_request_decoder, embeddings_request_decoder, encoder,
)

HOLDER = web.AppKey("holder", ConfigHolder)
SERVICES = web.AppKey("services", Services)
STARTED = web.AppKey("started", float)
CALL = web.RequestKey("call", Call)
PRINCIPAL = web.RequestKey("principal", auth.Principal)
log = structlog.get_logger("litegate.api")

_SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                "x-accel-buffering": "no"}


# ---------------------------------------------------------------- middlewares
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # a client's own id is kept only if it is this tame


@web.middleware
async def context_middleware(request: web.Request, handler) -> web.StreamResponse:
    given = request.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else "req_" + os.urandom(16).hex()
    call = Call(cfg=request.app[HOLDER].current, request_id=request_id, headers=request.headers)
    request[CALL] = call
    status, error_code = 500, None
    svc = request.app[SERVICES]
    svc.metrics.in_flight += 1
    svc.live[id(call)] = call  # by object: a client may reuse its own x-request-id
    try:
        resp = await handler(request)
        status = resp.status
        error_code = getattr(resp, "error_code", None) or call.stream_error
        if not resp.prepared:
            resp.headers["x-request-id"] = request_id
            resp.headers.update(call.extra_headers)
        return resp
    except asyncio.CancelledError:
        status, error_code = 499, "client_disconnected"  # nginx's code for a client that went away
        raise
    finally:
        svc.metrics.in_flight -= 1
        svc.live.pop(id(call), None)
        if call.endpoint is not None:
            accounting.finish(svc, call, status, error_code)
        _access_log(request, call, status, error_code)


_QUIET = ("/health", "/ui/static/", "/admin/live")  # probes and the dashboard's 2-second poll


def _access_log(request: web.Request, call: Call, status: int, error_code: str | None) -> None:
    if request.path.startswith(_QUIET):
        return
    usage = call.usage
    log.info("request", request_id=call.request_id, method=request.method, path=request.path, status=status,
             model=call.model or None, deployment=call.deployment, route=call.route,
             tried=call.tried or None, key=call.key, error=error_code,
             prompt_tokens=usage.prompt_tokens if usage else None,
             completion_tokens=usage.completion_tokens if usage else None,
             duration_ms=round((time.perf_counter() - call.started) * 1000, 1),
             ttft_ms=round(call.first_token_s * 1000, 1) if call.first_token_s is not None else None,
             upstream_ms=round(call.upstream_s * 1000, 1))


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as e:
        return error_response(e)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[HOLDER].current.server.max_body_mb
        return error_response(PayloadTooLarge(f"request body is larger than server.max_body_mb ({limit:g} MB)"))
    except web.HTTPNotFound:
        return error_response(NotFound(f"no route for {request.method} {request.path}"))
    except web.HTTPMethodNotAllowed:
        return error_response(MethodNotAllowed(f"{request.method} is not allowed on {request.path}"))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_response(GatewayError(e.reason, status=e.status, error_type="invalid_request_error"))
    except Exception:
        log.exception("unhandled_error", path=request.path)
        return error_response(InternalError("litegate hit an internal error; see its log"))


def error_response(err: GatewayError) -> web.Response:
    resp = web.Response(body=err.to_json(), status=err.status, content_type="application/json",
                        headers=err.headers())
    resp.error_code = err.code or err.type  # type: ignore[attr-defined]
    return resp


# ---------------------------------------------------------------- helpers
def _decode(decoder: msgspec.json.Decoder, raw: bytes) -> Any:
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as e:
        text = str(e)
        param = text.rsplit("`$.", 1)[1].rstrip("`") if "`$." in text else _missing_field(text)
        raise BadRequest(f"Invalid request: {text}", param=param) from None
    except msgspec.DecodeError as e:
        raise BadRequest(f"Invalid JSON body: {e}") from None


def _missing_field(text: str) -> str | None:
    if "missing required field" in text and "`" in text:
        return text.split("`")[1]
    return None


def _json(request: web.Request, call: Call, obj: Any, status: int = 200) -> web.Response:
    headers = {"x-request-id": call.request_id, "x-litegate-overhead-ms": f"{call.overhead_ms():.2f}",
               **call.extra_headers}
    if call.deployment:
        headers["x-litegate-model"] = call.deployment
        headers["x-litegate-route"] = call.route or "direct"
    return web.Response(body=encoder.encode(obj), status=status, content_type="application/json", headers=headers)


async def _stream(request: web.Request, call: Call, gen) -> web.StreamResponse:
    """Write SSE bytes as they come; before the first byte an error is still a JSON response."""
    resp: web.StreamResponse | None = None
    async with aclosing(gen):
        try:
            async for data in gen:
                if resp is None:
                    resp = web.StreamResponse(headers=_stream_headers(call))
                    await resp.prepare(request)
                await resp.write(data)
        except GatewayError as e:
            if resp is None:
                raise
            call.stream_error = e.code or e.type
            log.warning("stream_failed", request_id=call.request_id, deployment=call.deployment, error=e.code)
            await resp.write(sse(e.to_json()))
    assert resp is not None
    await resp.write_eof()
    return resp


def _stream_headers(call: Call) -> dict[str, str]:
    headers = {**_SSE_HEADERS, **call.extra_headers}
    headers["x-request-id"] = call.request_id
    headers["x-litegate-overhead-ms"] = f"{call.overhead_ms():.2f}"
    if call.deployment:
        headers["x-litegate-model"] = call.deployment
        headers["x-litegate-route"] = call.route or "direct"
    return headers


def _authorize(request: web.Request, call: Call, model: str) -> None:
    principal = request.get(PRINCIPAL, auth.ANONYMOUS)
    call.model = model
    name, _ = router.resolve(call.cfg, model)
    auth.check_model(principal, model, name)


# ---------------------------------------------------------------- auth
PUBLIC_PATHS = frozenset({"/health", "/health/backends", "/metrics"})  # the latter two check admin themselves


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    path = request.path
    if request.method not in sessions.SAFE_METHODS and sessions.accepts_cookie(path):
        _same_origin(request)
    if path not in PUBLIC_PATHS and not sessions.is_public(path):
        call: Call = request[CALL]
        try:
            principal = _session_principal(request, call) or auth.authenticate(
                call.cfg, request.headers.get("authorization"), request.headers.get("x-api-key"))
        except Unauthorized:
            if sessions.is_page(path) and request.method in ("GET", "HEAD"):
                return sessions.to_sign_in(request.path_qs)
            raise
        request[PRINCIPAL] = principal
        call.key = principal.name
    return await handler(request)


def _same_origin(request: web.Request) -> None:
    """A browser posting to /ui or /admin from another site's page is refused, keys or not (the open,
    key-less loopback mode has no session token to check, but browsers always say where they come from)."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise Forbidden(f"cross-site {request.method} from {origin} refused", code="csrf_failed")


def _session_principal(request: web.Request, call: Call) -> auth.Principal | None:
    """A dashboard session cookie stands for its admin key on /ui and /admin routes (a bearer key wins).

    A cookie rides along on any request the browser makes, so an unsafe method must also carry the
    session's CSRF token in a header, which another site's page cannot read or set."""
    store = request.app.get(sessions.SESSIONS)
    if store is None or not call.cfg.auth.keys or not sessions.accepts_cookie(request.path):
        return None
    if request.headers.get("authorization") or request.headers.get("x-api-key"):
        return None
    found = store.resolve(call.cfg, request.cookies.get(sessions.COOKIE))
    if found is None:
        return None
    session, key = found
    if request.method not in sessions.SAFE_METHODS and not session.csrf_ok(request.headers.get(sessions.CSRF_HEADER)):
        raise Forbidden(f"a signed-in {request.method} needs the session's {sessions.CSRF_HEADER} header",
                        code="csrf_failed")
    return auth.Principal(key.name, key.models, key.admin, key)


def _admit(request: web.Request, call: Call, endpoint: str, stream: bool) -> None:
    """A model request starts counting: its key's limits first (429 when one is reached)."""
    call.endpoint, call.stream = endpoint, stream
    key = request.get(PRINCIPAL, auth.ANONYMOUS).key
    if key is not None:
        limits = request.app[SERVICES].limits
        limits.admit(key)
        call.admitted = key
        call.extra_headers = limits.headers(key)


# ---------------------------------------------------------------- handlers
async def chat_completions(request: web.Request) -> web.StreamResponse:
    call: Call = request[CALL]
    req = _decode(chat_request_decoder, await request.read())
    if not req.messages:
        raise BadRequest("messages must contain at least one message", param="messages")
    _authorize(request, call, req.model)
    _admit(request, call, "chat", req.stream)
    svc = request.app[SERVICES]
    if req.stream:
        return await _stream(request, call, gateway.chat_stream(svc, call, req))
    return _json(request, call, await gateway.chat(svc, call, req))


async def completions(request: web.Request) -> web.StreamResponse:
    call: Call = request[CALL]
    req = _decode(completion_request_decoder, await request.read())
    _authorize(request, call, req.model)
    _admit(request, call, "completions", req.stream)
    svc = request.app[SERVICES]
    if req.stream:
        return await _stream(request, call, gateway.completion_stream(svc, call, req))
    return _json(request, call, await gateway.completion(svc, call, req))


async def embeddings(request: web.Request) -> web.Response:
    call: Call = request[CALL]
    req = _decode(embeddings_request_decoder, await request.read())
    if isinstance(req.input, list) and not req.input:
        raise BadRequest("input must not be empty", param="input")
    _authorize(request, call, req.model)
    _admit(request, call, "embeddings", False)
    return _json(request, call, await gateway.embeddings(request.app[SERVICES], call, req))


def _models(cfg: Config, principal: auth.Principal) -> list[Model]:
    groups = cfg.groups()
    created = int(cfg.loaded_at)

    def owner(name: str) -> str:
        return groups[name][0].provider if name in groups else "litegate"

    out = [Model(name, created, deps[0].provider) for name, deps in groups.items() if principal.may_use(name)]
    out += [Model(name, created, "litegate") for name in cfg.router.routes if principal.may_use(name)]
    out += [Model(alias, created, owner(target)) for alias, target in cfg.router.aliases.items()
            if principal.may_use(alias) or principal.may_use(target)]
    return out


async def list_models(request: web.Request) -> web.Response:
    call: Call = request[CALL]
    return _json(request, call, ModelList(_models(call.cfg, request.get(PRINCIPAL, auth.ANONYMOUS))))


async def get_model(request: web.Request) -> web.Response:
    call: Call = request[CALL]
    model_id = request.match_info["model"]
    for m in _models(call.cfg, request.get(PRINCIPAL, auth.ANONYMOUS)):
        if m.id == model_id:
            return _json(request, call, m)
    raise NotFound(f"The model '{model_id}' does not exist on this gateway", param="model", code="model_not_found")


async def health(request: web.Request) -> web.Response:
    holder = request.app[HOLDER]
    body = {"status": "ok", "version": __version__, "uptime_s": round(time.time() - request.app[STARTED], 1),
            "config_loaded_at": holder.current.loaded_at, "models": len(holder.current.groups())}
    return web.json_response(body, headers={"x-request-id": request[CALL].request_id})


def _admin_key(request: web.Request, call: Call) -> None:
    """For the public paths that still need an admin when keys are configured."""
    auth.require_admin(auth.authenticate(call.cfg, request.headers.get("authorization"),
                                         request.headers.get("x-api-key")))


def backends_body(svc: Services, cfg: Config) -> dict[str, Any]:
    """Each deployment's state and what each Ollama has loaded (/health/backends, /admin/backends)."""
    return {"deployments": svc.backends.report(cfg), "loaded_models": svc.backends.loaded_models}


async def health_backends(request: web.Request) -> web.Response:
    """Each deployment's state, and what each Ollama has loaded (admin only when keys are set)."""
    call: Call = request[CALL]
    _admin_key(request, call)
    return web.json_response(backends_body(request.app[SERVICES], call.cfg),
                             headers={"x-request-id": call.request_id})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; an admin key is needed when keys are configured."""
    call: Call = request[CALL]
    _admin_key(request, call)
    svc = request.app[SERVICES]
    gauges = []
    for d in svc.backends.report(call.cfg):
        labels = (("deployment", d["id"]), ("model", d["name"]))
        gauges += [("litegate_deployment_healthy", labels, 1.0 if d["state"] == "healthy" else 0.0),
                   ("litegate_deployment_in_flight", labels, float(d["in_flight"])),
                   ("litegate_deployment_queued", labels, float(d["queued"]))]
    if svc.usage is not None:
        stats = svc.usage.stats()
        gauges += [("litegate_usage_rows_pending", (), float(stats["rows_pending"])),
                   ("litegate_usage_rows_dropped_total", (), float(stats["rows_dropped"]))]
    return web.Response(text=svc.metrics.render(gauges), content_type="text/plain",
                        headers={"x-request-id": call.request_id})


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_post(f"{prefix}/completions", completions)
        app.router.add_post(f"{prefix}/embeddings", embeddings)
        app.router.add_get(f"{prefix}/models", list_models)
        app.router.add_get(prefix + "/models/{model:.+}", get_model)
    app.router.add_get("/health", health)
    app.router.add_get("/health/backends", health_backends)
    app.router.add_get("/metrics", metrics)
