"""The /ui dashboard: sign-in and sign-out, the page shells, their static assets and security headers.

The pages are plain HTML shells; static/app.js fills them from the admin JSON API (admin.py),
which accepts the session cookie as an admin principal (api.auth_middleware). One JSON route lives
here because the admin API has no key-by-model breakdown: /ui/api/key-models, which models each
key used. Sessions and the sign-in throttle are in sessions.py. No build step: what is in static/
is what the browser gets.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import structlog
from aiohttp import web

from litegate.core import auth
from litegate.http.appkeys import CALL, PRINCIPAL, SERVICES
from litegate.errors import BadRequest, GatewayError, NotFound, RateLimited, Unauthorized
from litegate.http.middleware import ERROR_PAGE
from litegate.http.sessions import (
    COOKIE, LOGIN_PATH, SESSIONS, THROTTLE, LoginThrottle, Sessions, came_over_https, client_address,
)
from litegate.usage import queries

STATIC = Path(__file__).with_name("static")
LOGIN_NEXT = web.RequestKey("login_next", str)
TEMPLATES = web.AppKey("dashboard_templates", dict)
PAGES = {"overview": "Overview", "requests": "Requests", "live": "Live", "backends": "Backends", "keys": "Keys",
         "config": "Config"}
_ASSETS = {"app.js": "text/javascript", "charts.js": "text/javascript", "ui.js": "text/javascript",
           "keys.js": "text/javascript", "requests.js": "text/javascript", "app.css": "text/css",
           "favicon.svg": "image/svg+xml"}
_SLOT = re.compile(r"\{\{(\w+)\}\}")
_SPANS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# Referrer-Policy same-origin: no referrer ever goes to another site, and our own POSTs keep the
# Origin header that the cross-site check in api.py reads (no-referrer would make it "null").
SECURITY_HEADERS = {"content-security-policy": CSP, "x-frame-options": "DENY", "referrer-policy": "same-origin",
                    "x-content-type-options": "nosniff", "cross-origin-opener-policy": "same-origin"}

log = structlog.get_logger("litegate.http.dashboard")


# ---------------------------------------------------------------- pages
async def page(request: web.Request) -> web.Response:
    """A page shell (admin only): the nav, who is signed in or the open-access badge, and the session's
    CSRF token for the page's POSTs; static/app.js fills in the data."""
    name = request.match_info.get("page", "overview")
    if name not in PAGES:
        raise NotFound(f"no dashboard page {name!r}")
    principal = request[PRINCIPAL]
    auth.require_admin(principal)
    cfg = request[CALL].cfg
    found = await request.app[SESSIONS].resolve(cfg, request.cookies.get(COOKIE)) if cfg.auth.keys else None
    csrf = found[0].csrf if found else ""
    if cfg.auth.keys:
        who = (f'<span class="who">signed in as <b>{html.escape(principal.name)}</b></span>'
               '<button type="button" id="logout" class="link">Sign out</button>')
    else:
        who = '<span class="badge warn" id="access">open access — no keys configured</span>'
    nav = "".join(f'<a href="{_href(p)}"{" aria-current=page" if p == name else ""}>{t}</a>' for p, t in PAGES.items())
    body = _render(request, "dashboard.html", {"nav": nav, "who": who}, page=name, title=PAGES[name], csrf=csrf,
                   access="keys" if cfg.auth.keys else "open")
    return _html(body)


async def slash(request: web.Request) -> web.Response:
    return _see_other("/ui")


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"location": location, "cache-control": "no-store"})


def _href(page_name: str) -> str:
    return "/ui" if page_name == "overview" else f"/ui/{page_name}"


def _render(request: web.Request, template: str, markup: dict[str, str], **values: str) -> str:
    """Fill every {{name}} slot in one pass: `markup` is HTML built here, `values` are escaped."""
    filled = {**{k: html.escape(v) for k, v in values.items()}, **markup}
    return _SLOT.sub(lambda m: filled[m.group(1)], request.app[TEMPLATES][template])


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html",
                        headers={"cache-control": "no-store", **(headers or {})})


# ---------------------------------------------------------------- sign in / out
async def login_page(request: web.Request) -> web.Response:
    cfg = request[CALL].cfg
    nxt = _safe_next(request.query.get("next"))
    if not cfg.auth.keys or await request.app[SESSIONS].resolve(cfg, request.cookies.get(COOKIE)):
        return _see_other(nxt)
    return _login_form(request, nxt)


def _login_form(request: web.Request, nxt: str, error: str = "", status: int = 200,
                headers: dict[str, str] | None = None) -> web.Response:
    if not any(k.admin and not k.revoked for k in request[CALL].cfg.auth.keys):
        error = error or 'No admin key is configured: add "admin": true to a key in auth.keys.'
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = _render(request, "login.html", {"error": message}, next=nxt)
    return _html(body, status, headers)


async def login(request: web.Request) -> web.Response:
    """The sign-in form posts an admin key here; a match opens a session and sets its cookie."""
    cfg = request[CALL].cfg
    try:
        form = await request.post()
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the sign-in form is not valid UTF-8 form data") from None
    nxt = _safe_next(str(form.get("next", "")))
    if not cfg.auth.keys:
        return _see_other(nxt)
    request[LOGIN_NEXT] = nxt
    client = client_address(request, cfg)
    throttle = request.app[THROTTLE]
    wait = throttle.retry_after(client)
    if wait:
        log.warning("dashboard_login_throttled", client=client, retry_after_s=wait)
        raise RateLimited(f"Too many failed attempts: try again in {wait} s.", retry_after=wait)
    key = _admin_key(cfg, str(form.get("key", "")).strip())
    if key is None:
        throttle.failed(client)
        log.warning("dashboard_login_failed", client=client)
        raise Unauthorized("That is not an admin key of this gateway.")
    throttle.succeeded(client)
    store = request.app[SESSIONS]
    token, _ = await store.open(key)
    log.info("dashboard_login", key=key.name, client=client)
    resp = _see_other(nxt)
    resp.set_cookie(COOKIE, token, max_age=int(store.ttl_s), path="/", httponly=True, samesite="Strict",
                    secure=True if came_over_https(request, cfg) else None)
    return resp


def error_page(request: web.Request, err: GatewayError) -> web.Response | None:
    """The sign-in form shows its own refusals (wrong key, too many tries) on the form itself."""
    if request.path != LOGIN_PATH or request.method != "POST":
        return None
    return _login_form(request, request.get(LOGIN_NEXT, "/ui"), err.message, err.status, err.headers())


def _admin_key(cfg: Any, presented: str):
    """The admin key presented, compared in constant time by auth.authenticate; None otherwise."""
    if not presented:
        return None
    try:
        principal = auth.authenticate(cfg, f"Bearer {presented}")
    except Unauthorized:
        return None
    return principal.key if principal.admin else None


async def logout(request: web.Request) -> web.Response:
    """Ends the session (the middleware has checked its CSRF token) and clears the cookie."""
    auth.require_admin(request[PRINCIPAL])
    await request.app[SESSIONS].close(request.cookies.get(COOKIE))
    log.info("dashboard_logout", key=request[PRINCIPAL].name)
    resp = web.json_response({"ok": True}, headers={"cache-control": "no-store"})
    resp.del_cookie(COOKIE, path="/", httponly=True, samesite="Strict")
    return resp


def _safe_next(value: str | None) -> str:
    """Only a dashboard path: never another site (`//host`, `https://...`), never the sign-in page, and
    never a control character (CR/LF would split the Location header)."""
    if not value or not value.startswith("/ui") or value.startswith("//") or "\\" in value \
            or not value.isprintable():
        return "/ui"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path == LOGIN_PATH:
        return "/ui"
    return value


# ---------------------------------------------------------------- static files
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _ASSETS:
        raise NotFound(f"no dashboard asset {name!r}")
    return web.FileResponse(STATIC / name, headers={"content-type": _ASSETS[name], "cache-control": "no-cache"})


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/ui" or request.path.startswith(("/ui/", "/admin/")):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith(("/admin/", "/ui/api/")):
            response.headers.setdefault("cache-control", "no-store")


# ---------------------------------------------------------------- key x model breakdown
async def key_models(request: web.Request) -> web.Response:
    """Which models each key used in a span (1h, 24h, 7d, 30d): requests, tokens, errors, cost."""
    auth.require_admin(request[PRINCIPAL])
    span = request.query.get("since", "7d")
    if span not in _SPANS:
        raise BadRequest(f"since must be one of {list(_SPANS)}", param="since")
    since = time.time() - _SPANS[span]
    store = request.app[SERVICES].usage
    keys = [] if store is None else await store.query(_by_key_and_model, since)
    return web.Response(body=msgspec.json.encode({"since": since, "keys": keys}), content_type="application/json")


def _by_key_and_model(conn: Any, since: float) -> list[dict[str, Any]]:
    """Runs on the usage store's reader thread: its rows since a moment, summed per key and model."""
    sums: dict[str, dict[str, dict[str, Any]]] = {}
    for row in queries.rows(conn, since):
        m = sums.setdefault(row.key, {}).setdefault(
            row.model, {"model": row.model, "requests": 0, "errors": 0, "tokens": 0, "cost": 0.0})
        m["requests"] += 1
        m["errors"] += row.status >= 400 or row.error_code is not None
        m["tokens"] += row.prompt_tokens + row.completion_tokens
        m["cost"] += row.cost
    out = []
    for key, models in sums.items():
        ranked = sorted(models.values(), key=lambda m: (-m["requests"], -m["tokens"], m["model"]))
        out.append({"key": key, "requests": sum(m["requests"] for m in ranked),
                    "tokens": sum(m["tokens"] for m in ranked), "cost": sum(m["cost"] for m in ranked),
                    "models": ranked})
    return sorted(out, key=lambda k: (-k["requests"], k["key"]))


# ---------------------------------------------------------------- wiring
def add_routes(app: web.Application, sessions: Sessions | None = None, throttle: LoginThrottle | None = None) -> None:
    app[SESSIONS] = sessions or Sessions()
    app[THROTTLE] = throttle or LoginThrottle()
    app[TEMPLATES] = {name: (STATIC / name).read_text(encoding="utf-8") for name in ("dashboard.html", "login.html")}
    app[ERROR_PAGE] = error_page
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/ui", page)
    app.router.add_get("/ui/", slash)
    app.router.add_get(LOGIN_PATH, login_page)
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_post("/ui/logout", logout)
    app.router.add_get("/ui/static/{name}", static)
    app.router.add_get("/ui/api/key-models", key_models)
    app.router.add_get("/ui/{page}", page)
