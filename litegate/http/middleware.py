"""The middleware stack every request passes: its record and log line, the one error path, auth.

`error_middleware` is the one place that turns errors into responses: every GatewayError, aiohttp
HTTP exception and unexpected exception leaves in the shape of the face the request came in on
(surfaces.surface_for), a redirect as a redirect, and a dashboard page's error as that page.
`context_middleware` creates the request's Call and writes the one canonical log line.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from litegate.core import accounting, auth
from litegate.core.services import Call
from litegate.errors import (
    Forbidden, GatewayError, InternalError, MethodNotAllowed, NotFound, PayloadTooLarge, SeeOther, ShuttingDown,
    Unauthorized, clip,
)
from litegate.log import info as log_info
from litegate.http import sessions
from litegate.http.appkeys import CALL, HOLDER, IN_FLIGHT, PRINCIPAL, SERVICES
from litegate.http.body import body_middleware
from litegate.surfaces import surface_for

log = structlog.get_logger("litegate.api")
# A page of the dashboard may render its own errors (the sign-in form shows "wrong key" itself).
ERROR_PAGE = web.AppKey("error_page", Callable[[web.Request, GatewayError], "web.Response | None"])
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # a client's own id is kept only if it is this tame
_QUIET = ("/health", "/ui/static/", "/admin/live")  # probes and the dashboard's 2-second poll
_MAX_MESSAGE = 2000


@web.middleware
async def context_middleware(request: web.Request, handler) -> web.StreamResponse:
    given = request.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else f"req_{random.getrandbits(128):032x}"  # unique, not secret
    call = Call(cfg=request.app[HOLDER].current, request_id=request_id, headers=request.headers,
                face=surface_for(request.path).name)
    request[CALL] = call
    status, error_code = 500, None
    svc = request.app[SERVICES]
    svc.metrics.in_flight += 1
    svc.live[id(call)] = call  # by object: a client may reuse its own x-request-id
    task = asyncio.current_task()
    in_flight = request.app[IN_FLIGHT]
    in_flight.add(task)
    try:
        resp = await handler(request)
        status = call.status or resp.status
        error_code = getattr(resp, "error_code", None) or call.stream_error
        if not resp.prepared:
            resp.headers["x-request-id"] = request_id
            resp.headers.update(call.extra_headers)
        return resp
    except asyncio.CancelledError:
        status, error_code = 499, "client_disconnected"  # nginx's code for a client that went away
        raise
    finally:
        in_flight.discard(task)
        svc.metrics.in_flight -= 1
        svc.live.pop(id(call), None)
        if call.endpoint is not None:
            accounting.finish(svc, call, status, error_code)
        _access_log(request, call, status, error_code)


def _access_log(request: web.Request, call: Call, status: int, error_code: str | None) -> None:
    if request.path.startswith(_QUIET):
        return
    usage = call.usage
    log_info(log, "request", {
        "request_id": call.request_id, "method": request.method, "path": clip(request.path, 256), "status": status,
        "face": call.face, "model": clip(call.model) if call.model else None, "deployment": call.deployment,
        "route": call.route, "tried": call.tried or None, "key": call.key, "error": error_code,
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
        "duration_ms": round((time.perf_counter() - call.started) * 1000, 1),
        "ttft_ms": round(call.first_token_s * 1000, 1) if call.first_token_s is not None else None,
        "upstream_ms": round(call.upstream_s * 1000, 1)})


def cut_in_flight(app: web.Application) -> int:
    """The shutdown grace ran out: end what is still running (error_middleware answers 503, a begun
    stream gets its face's error frame in edge.stream); return how many were cut."""
    app[SERVICES].cut = True
    tasks = list(app[IN_FLIGHT])
    for task in tasks:
        task.cancel()
    return len(tasks)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except asyncio.CancelledError:
        if not request.app[SERVICES].cut or request.transport is None or request.transport.is_closing():
            raise  # the client went away
        asyncio.current_task().uncancel()
        return error_response(request, ShuttingDown("litegate is shutting down and could not finish this "
                                                    "request within server.shutdown_grace_s"))
    except GatewayError as e:
        if e.close_connection:
            return await _answer_and_close(request, error_response(request, e))
        return error_response(request, e)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[HOLDER].current.server.max_body_mb
        return await _answer_and_close(request, error_response(request, PayloadTooLarge(
            f"request body is larger than server.max_body_mb ({limit:g} MB)")))
    except web.HTTPNotFound:
        return error_response(request, NotFound(f"no route for {request.method} {request.path}"))
    except web.HTTPMethodNotAllowed:
        return error_response(request, MethodNotAllowed(f"{request.method} is not allowed on {request.path}"))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_response(request, GatewayError(e.reason, status=e.status, error_type="invalid_request_error"))
    except Exception:
        log.exception("unhandled_error", path=request.path)
        return error_response(request, InternalError("litegate hit an internal error; see its log"))


def error_response(request: web.Request, err: GatewayError) -> web.Response:
    if isinstance(err, SeeOther):
        return web.Response(status=err.status, headers=err.headers())
    if len(err.message) > _MAX_MESSAGE:  # a message quoting what a client sent stays small
        err.message = clip(err.message, _MAX_MESSAGE)
    page = request.app.get(ERROR_PAGE)
    resp = page(request, err) if page is not None and sessions.is_page(request.path) else None
    if resp is None:
        status, body = surface_for(request.path).render_error(err)
        resp = web.Response(body=body, status=status, content_type="application/json", headers=err.headers())
    resp.error_code = err.code or err.type  # type: ignore[attr-defined]
    return resp


async def _answer_and_close(request: web.Request, resp: web.Response) -> web.Response:
    """Send the answer, then close the connection: the rest of the body (too big, too slow, undecodable)
    is never read, not even by aiohttp's lingering read after a reply."""
    resp.headers["x-request-id"] = request[CALL].request_id
    resp.force_close()
    await resp.prepare(request)
    await resp.write_eof()
    request.protocol.force_close()
    return resp


# ---------------------------------------------------------------- auth
# /health/backends and /metrics check admin themselves; "/" and /api/version are the Ollama face's
# reachability probes (Enchanted's HEAD /, Copilot's and Open WebUI's version check), which say nothing.
PUBLIC_PATHS = frozenset({"/health", "/health/backends", "/metrics", "/", "/api/version"})
# Headers a reverse proxy adds (`tailscale serve`, Caddy, nginx): the request did not start on this machine.
UNAUTHENTICATED = "unauthenticated"  # the key name a missing or wrong key's request is accounted under
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip", "tailscale-user-login")


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    path = request.path
    if request.method not in sessions.SAFE_METHODS and sessions.accepts_cookie(path):
        _same_origin(request)
    call: Call = request[CALL]
    if path != "/health" and not call.cfg.auth.keys and any(h in request.headers for h in PROXY_HEADERS):
        # No keys is safe only on loopback; a proxy on this machine (tailscale serve) makes every tailnet
        # request look local, so what came through one is refused until keys exist.
        raise Forbidden("this request came through a proxy (it carries forwarded headers) and litegate has no "
                        "keys: anyone who can reach the proxy could use it. Add auth.keys to the config (README, "
                        "'Keys'; `litegate keys new NAME` makes one) and reload", code="keys_required")
    if path not in PUBLIC_PATHS and not sessions.is_public(path):
        try:
            # Trusted networks stand in for a key on model routes only, never on the dashboard or admin API.
            # The client's address: the peer's, or the one a proxy in server.trusted_proxies forwarded.
            remote = None if sessions.accepts_cookie(path) else sessions.client_address(request, call.cfg)
            principal = await _session_principal(request, call) or auth.authenticate(
                call.cfg, request.headers.get("authorization"), request.headers.get("x-api-key"), remote)
        except Unauthorized as e:
            if sessions.is_page(path) and request.method in ("GET", "HEAD"):
                raise SeeOther(sessions.sign_in_location(request.path_qs)) from None
            hint = surface_for(path).missing_key_hint
            if hint and e.message == auth.MISSING_KEY:
                e.message += hint.format(remote=sessions.client_address(request, call.cfg))
            if request.method == "POST" and not sessions.accepts_cookie(path) and \
                    request.match_info.http_exception is None:
                call.endpoint = request.match_info.route.resource.canonical  # a refused model request counts
                call.key = UNAUTHENTICATED
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


async def _session_principal(request: web.Request, call: Call) -> auth.Principal | None:
    """A dashboard session cookie stands for its admin key on /ui and /admin routes (a bearer key wins).

    A cookie rides along on any request the browser makes, so an unsafe method must also carry the
    session's CSRF token in a header, which another site's page cannot read or set."""
    store = request.app.get(sessions.SESSIONS)
    if store is None or not call.cfg.auth.keys or not sessions.accepts_cookie(request.path):
        return None
    if request.headers.get("authorization") or request.headers.get("x-api-key"):
        return None
    found = await store.resolve(call.cfg, request.cookies.get(sessions.COOKIE))
    if found is None:
        return None
    session, key = found
    if request.method not in sessions.SAFE_METHODS and not session.csrf_ok(request.headers.get(sessions.CSRF_HEADER)):
        raise Forbidden(f"a signed-in {request.method} needs the session's {sessions.CSRF_HEADER} header",
                        code="csrf_failed")
    return auth.Principal(key.name, key.models, key.admin, key)


MIDDLEWARES: tuple[Callable[..., Awaitable[web.StreamResponse]], ...] = (
    context_middleware, error_middleware, auth_middleware, body_middleware)
