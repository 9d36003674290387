"""The /ui dashboard over HTTP: sign-in and its cookie, sessions, CSRF, the routes that need a
session, open access without keys, security headers, and the key-by-model breakdown."""

from __future__ import annotations

import asyncio
import json
import re
from html.parser import HTMLParser

import pytest
from aiohttp.test_utils import TestClient

from litegate.http import admin, appkeys, sessions
from litegate.http.app import create_app
from litegate.config import ConfigHolder, from_dict
from tests.conftest import ollama_config

ENV = {"K_ADMIN": "sk-admin", "K_LAPTOP": "sk-laptop", "K_OPS": "sk-ops"}
USER = [{"role": "user", "content": "one two three"}]
PAGES = ["/ui", "/ui/live", "/ui/backends", "/ui/keys", "/ui/config"]
ADMIN_GETS = ["/admin/usage", "/admin/timeseries", "/admin/errors", "/admin/limits", "/admin/live",
              "/admin/backends", "/admin/config", "/ui/api/key-models"]


def keys() -> dict:
    return {"auth": {"keys": [{"name": "admin", "key_env": "K_ADMIN", "admin": True},
                              {"name": "ops", "key_env": "K_OPS", "admin": True},
                              {"name": "laptop", "key_env": "K_LAPTOP"}]}}


class CountingHolder(ConfigHolder):
    """The real holder, counting the reloads that reach it."""

    calls = 0

    def reload(self):
        self.calls += 1
        return super().reload()


@pytest.fixture
def dash(aiohttp_client, tmp_path):
    """Build a litegate with the dashboard from a config dict; returns (client, reloads, holder)."""

    async def make(doc: dict, env: dict | None = None):
        path = tmp_path / "litegate.json"
        path.write_text(json.dumps({**doc, "usage": {"path": str(tmp_path / "usage")}}))
        cfg = from_dict(json.loads(path.read_text()), source=str(path), env=env if env is not None else ENV)
        holder = CountingHolder(str(path), cfg, env=env if env is not None else ENV)
        client: TestClient = await aiohttp_client(create_app(holder))
        return client, holder, holder

    return make


async def sign_in(client: TestClient, key: str = "sk-admin", headers: dict | None = None, **form):
    resp = await client.post("/ui/login", data={"key": key, **form}, headers=headers or {}, allow_redirects=False)
    await resp.read()
    return resp


def set_cookie(resp) -> str:
    return "; ".join(v for k, v in resp.headers.items() if k.lower() == "set-cookie")


async def csrf_token(client: TestClient) -> str:
    page = await (await client.get("/ui")).text()
    return re.search(r'<meta name="csrf-token" content="([^"]*)">', page).group(1)


def forget_cookies(client: TestClient) -> None:
    client.session.cookie_jar.clear()


async def test_sign_in_sets_a_strict_httponly_session_cookie(ollama, dash):
    """A right admin key opens a session: 303 to /ui with an HttpOnly, SameSite=Strict, Path=/ cookie
    (not Secure over plain http), after which the pages and the admin API answer."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    resp = await sign_in(client)
    assert resp.status == 303 and resp.headers["location"] == "/ui"
    cookie = set_cookie(resp)
    assert cookie.startswith(f"{sessions.COOKIE}=")
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags and "max-age=43200" in flags
    assert "sk-admin" not in cookie
    page = await client.get("/ui", allow_redirects=False)
    assert page.status == 200 and "signed in as <b>admin</b>" in await page.text()
    assert (await client.get("/admin/usage")).status == 200


async def test_cookie_is_secure_when_the_request_came_over_https(ollama, dash):
    """Behind `tailscale serve` (a trusted proxy saying X-Forwarded-Proto: https) the session cookie is
    marked Secure."""
    client, _, _ = await dash(ollama_config(ollama, server={"trusted_proxies": ["127.0.0.1", "::1"]}, **keys()))
    resp = await sign_in(client, headers={"x-forwarded-proto": "https"})
    assert resp.status == 303
    assert "secure" in [part.strip().lower() for part in set_cookie(resp).split(";")]


async def test_wrong_or_non_admin_key_is_refused_without_a_cookie(ollama, dash):
    """A wrong key, a non-admin key and an empty key all get the form again with a 401 and no cookie;
    the page never echoes what was typed."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    for key in ("sk-wrong-guess", "sk-laptop", ""):
        resp = await client.post("/ui/login", data={"key": key}, allow_redirects=False)
        body = await resp.text()
        assert resp.status == 401, key
        assert not set_cookie(resp) and "not an admin key" in body
        assert not key or key not in body
    assert (await client.get("/ui", allow_redirects=False)).status == 303


async def test_sign_in_attempts_are_rate_limited_per_client(ollama, dash):
    """Five failed sign-ins in a minute from one address: the sixth attempt is a 429 with retry-after even
    with the right key; another address (forwarded by a trusted proxy) is unaffected, and the first may try
    again once the minute has passed."""
    client, _, _ = await dash(ollama_config(ollama, server={"trusted_proxies": ["127.0.0.0/8", "::1"]}, **keys()))
    now = [1000.0]
    client.server.app[sessions.THROTTLE].clock = lambda: now[0]
    for _ in range(5):
        assert (await sign_in(client, "sk-wrong")).status == 401
    refused = await sign_in(client, "sk-admin")
    assert refused.status == 429 and 1 <= int(refused.headers["retry-after"]) <= 61
    assert not set_cookie(refused)
    elsewhere = await sign_in(client, "sk-admin", headers={"x-forwarded-for": "100.64.0.7"})
    assert elsewhere.status == 303  # through a loopback proxy, the forwarded address is the client
    now[0] += 61
    assert (await sign_in(client, "sk-admin")).status == 303


async def test_forwarded_headers_count_only_from_trusted_proxies(ollama, dash):
    """Without server.trusted_proxies a client cannot dodge the sign-in throttle with a made-up
    X-Forwarded-For, nor get a Secure cookie over plain HTTP by claiming X-Forwarded-Proto: https
    (loopback peers are not trusted by default)."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    client.server.app[sessions.THROTTLE].clock = lambda: 1000.0
    for i in range(5):
        assert (await sign_in(client, "sk-wrong", headers={"x-forwarded-for": f"100.64.0.{i}"})).status == 401
    refused = await sign_in(client, "sk-admin", headers={"x-forwarded-for": "100.64.0.99"})
    assert refused.status == 429
    client.server.app[sessions.THROTTLE].clock = lambda: 2000.0
    resp = await sign_in(client, headers={"x-forwarded-proto": "https"})
    assert resp.status == 303 and "secure" not in [p.strip().lower() for p in set_cookie(resp).split(";")]


async def test_sign_out_ends_the_session(ollama, dash):
    """Signing out (with the CSRF token) forgets the session server-side: the old cookie value, replayed,
    gets neither the admin API nor a page."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    resp = await sign_in(client)
    token = re.search(rf"{sessions.COOKIE}=([^;]+)", set_cookie(resp)).group(1)
    csrf = await csrf_token(client)
    out = await client.post("/ui/logout", headers={"x-csrf-token": csrf})
    assert out.status == 200
    assert re.search(rf'{sessions.COOKIE}=(""|);', set_cookie(out)) and "max-age=0" in set_cookie(out).lower()
    forget_cookies(client)
    replay = {"cookie": f"{sessions.COOKIE}={token}"}
    assert (await client.get("/admin/usage", headers=replay)).status == 401
    page = await client.get("/ui", headers=replay, allow_redirects=False)
    assert page.status == 303 and page.headers["location"].startswith("/ui/login")


@pytest.mark.parametrize("path", PAGES + ADMIN_GETS + ["POST /admin/reload", "POST /ui/logout"])
async def test_every_dashboard_and_admin_route_refuses_without_a_session(ollama, dash, path):
    """Without a session (none, a forged one) a page redirects to the sign-in form and every data route is a
    401; a non-admin key gets 403. With a session the same route answers, so the refusal is not a 404."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    method, _, path = path.rpartition(" ")
    method = method or "GET"

    async def call(**headers):
        resp = await client.request(method, path, headers=headers, allow_redirects=False)
        await resp.read()
        return resp

    for headers in ({}, {"cookie": f"{sessions.COOKIE}=forged-token"}):
        resp = await call(**headers)
        if path in PAGES:
            assert resp.status == 303 and resp.headers["location"].startswith("/ui/login?next=%2Fui")
        else:
            assert resp.status == 401 and (await resp.json())["error"]["type"] == "invalid_request_error"
            assert "rows" not in await resp.text()
    assert (await call(authorization="Bearer sk-laptop")).status == 403
    await sign_in(client)
    csrf = await csrf_token(client)
    assert (await call(**{"x-csrf-token": csrf})).status == 200


async def test_dot_segments_do_not_reach_a_page_without_a_session(ollama, dash):
    """A raw path that walks out of the public /ui/static/ or /ui/login with dot segments (plain or
    percent-encoded) never serves a page or data without a session."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    for target in ("/ui/static/../keys", "/ui/static/%2e%2e/keys", "/ui/static/..%2fkeys", "/ui/login/../config",
                   "/ui/static/../../admin/config", "/ui/static/%2E%2E/%2E%2E/admin/usage"):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        raw = await reader.read()
        writer.close()
        status = int(raw.split(b" ", 2)[1])
        assert status in (303, 401, 404), (target, raw[:300])
        assert b"csrf-token" not in raw and b'"rows"' not in raw and b'"config"' not in raw, target


async def test_reload_needs_the_csrf_token(ollama, dash):
    """A cookie-authenticated POST /admin/reload without the session's X-CSRF-Token (or with a wrong one)
    is a 403 and does not reload; with it the reload runs. A bearer-key POST needs no token."""
    client, reloads, _ = await dash(ollama_config(ollama, **keys()))
    await sign_in(client)
    csrf = await csrf_token(client)
    for headers in ({}, {"x-csrf-token": "not-the-token"}, {"x-csrf-token": ""}):
        resp = await client.post("/admin/reload", headers=headers)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
    assert reloads.calls == 0
    ok = await client.post("/admin/reload", headers={"x-csrf-token": csrf})
    assert ok.status == 200 and (await ok.json())["ok"] is True and reloads.calls == 1
    forget_cookies(client)
    assert (await client.post("/admin/reload", headers={"authorization": "Bearer sk-ops"})).status == 200


async def test_session_expires_after_twelve_hours(ollama, dash):
    """A session lasts 12 hours from sign-in; after that the cookie is worth nothing."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    now = [5000.0]
    client.server.app[sessions.SESSIONS].clock = lambda: now[0]
    await sign_in(client)
    now[0] += 12 * 3600 - 1
    assert (await client.get("/admin/live")).status == 200
    now[0] += 2
    assert (await client.get("/admin/live")).status == 401


async def test_revoking_or_rotating_the_key_ends_its_sessions(ollama, dash, monkeypatch, tmp_path):
    """A reload that revokes the admin key, or gives it a new secret, ends the sessions it opened."""
    env = dict(ENV)
    doc = ollama_config(ollama, **keys())
    client, _, holder = await dash(doc, env)
    await sign_in(client)
    assert (await client.get("/admin/config")).status == 200
    env["K_ADMIN"] = "sk-admin-rotated"  # the holder reads this mapping on reload
    holder.reload()
    assert (await client.get("/admin/config")).status == 401
    assert (await sign_in(client, "sk-admin-rotated")).status == 303
    assert (await client.get("/admin/config")).status == 200
    doc["auth"]["keys"][0]["revoked"] = True
    (tmp_path / "litegate.json").write_text(json.dumps({**doc, "usage": {"path": str(tmp_path / "usage")}}))
    holder.reload()
    assert (await client.get("/admin/config")).status == 401


async def test_open_access_on_loopback_without_keys(ollama, dash):
    """With no auth.keys (only allowed on loopback) the dashboard opens without signing in and says so."""
    client, reloads, _ = await dash(ollama_config(ollama), env={})
    page = await client.get("/ui", allow_redirects=False)
    body = await page.text()
    assert page.status == 200 and "open access — no keys configured" in body and 'id="logout"' not in body
    login = await client.get("/ui/login", allow_redirects=False)
    assert login.status == 303 and login.headers["location"] == "/ui"
    assert (await client.get("/admin/usage")).status == 200
    assert (await client.post("/admin/reload")).status == 200 and reloads.calls == 1


async def test_security_headers_on_every_ui_response(ollama, dash):
    """Every /ui response (page, sign-in form, redirect, asset, API) forbids framing, inline scripts and
    referrers; pages are not cached."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    anonymous = [await client.get(p, allow_redirects=False) for p in ("/ui", "/ui/login", "/ui/static/app.js")]
    await sign_in(client)
    signed_in = [await client.get(p, allow_redirects=False) for p in ("/ui", "/ui/keys", "/ui/api/key-models")]
    for resp in anonymous + signed_in:
        csp = resp.headers["content-security-policy"]
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        assert directives["script-src"] == ["'self'"] and directives["frame-ancestors"] == ["'none'"], resp.url
        assert directives["default-src"] == ["'none'"] and "'unsafe-inline'" not in csp
        assert resp.headers["x-frame-options"] == "DENY" and resp.headers["referrer-policy"] == "same-origin"
        assert resp.headers["x-content-type-options"] == "nosniff"
    assert signed_in[0].headers["cache-control"] == "no-store"


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        self.problems += [f"{tag}[{n}]" for n in names if n == "style" or n.startswith("on")]


async def test_pages_have_no_inline_script_or_style(ollama, dash):
    """The CSP allows no inline code or style, so the markup must have none: scripts load from /ui/static."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    login = await (await client.get("/ui/login")).text()
    await sign_in(client)
    for body in [login] + [await (await client.get(p)).text() for p in PAGES]:
        parser = _Inline()
        parser.feed(body)
        assert parser.problems == []
        assert "{{" not in body  # every template slot was filled
    js = await client.get("/ui/static/app.js")
    assert js.status == 200 and js.content_type == "text/javascript"
    assert ".innerHTML" not in await js.text()


async def test_static_serves_only_known_assets(ollama, dash):
    """/ui/static serves the dashboard's own files and nothing else from the package."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    for name in ("app.js", "charts.js", "app.css", "favicon.svg"):
        assert (await client.get(f"/ui/static/{name}")).status == 200, name
    for name in ("dashboard.html", "login.html", "..%2Fdashboard.py", "nope.js"):
        assert (await client.get(f"/ui/static/{name}")).status == 404, name


async def test_sign_in_redirects_only_within_the_dashboard(ollama, dash):
    """`next` after sign-in may name a dashboard page, never another site or the sign-in form itself."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    cases = {"/ui/keys?range=30d": "/ui/keys?range=30d", "//evil.example/ui": "/ui", "https://evil.example": "/ui",
             "/admin/config": "/ui", "/ui/login": "/ui", "/ui\\@evil.example": "/ui"}
    for nxt, expected in cases.items():
        forget_cookies(client)
        resp = await sign_in(client, next=nxt)
        assert resp.headers["location"] == expected, nxt
    forget_cookies(client)
    page = await client.get("/ui/login?next=%2Fui%2Flive")
    assert 'name="next" value="/ui/live"' in await page.text()


async def test_key_models_breakdown_matches_usage(ollama, dash):
    """/ui/api/key-models ranks each key's models by requests; its sums agree with /admin/usage by key."""
    client, _, _ = await dash(ollama_config(ollama, **keys()))
    for secret, model in [("sk-laptop", "llama")] * 3 + [("sk-laptop", "thinking"), ("sk-ops", "thinking"),
                                                          ("sk-ops", "crash")]:
        await (await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                                 json={"model": model, "messages": USER})).read()
    await client.server.app[appkeys.SERVICES].usage.flush()
    await sign_in(client)
    body = await (await client.get("/ui/api/key-models?since=7d")).json()
    laptop = next(k for k in body["keys"] if k["key"] == "laptop")
    assert [(m["model"], m["requests"]) for m in laptop["models"]] == [("llama", 3), ("thinking", 1)]
    ops = next(k for k in body["keys"] if k["key"] == "ops")
    assert {m["model"]: m["errors"] for m in ops["models"]} == {"crash": 1, "thinking": 0}
    assert [k["key"] for k in body["keys"]] == ["laptop", "ops"]
    by_key = {r["group"]: r for r in (await (await client.get("/admin/usage?since=7d&group_by=key")).json())["rows"]}
    for k in body["keys"]:
        row = by_key[k["key"]]
        assert k["requests"] == row["requests"] and k["tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    bad = await client.get("/ui/api/key-models?since=1y")
    assert bad.status == 400 and (await bad.json())["error"]["param"] == "since"


async def test_a_failed_reload_is_an_error_and_keeps_the_old_config(ollama, dash, tmp_path):
    """POST /admin/reload with a broken file answers 400 naming the fault (not 200 {"ok": false}), and the
    running config is the old one."""
    client, holder, _ = await dash(ollama_config(ollama))
    before = holder.current
    (tmp_path / "litegate.json").write_text('{"models": [{"name": "x"}]}')
    resp = await client.post("/admin/reload")
    body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "invalid_config"
    assert "$.models[0]" in body["error"]["message"] and holder.current is before
