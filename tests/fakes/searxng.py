"""Fake SearXNG (``GET|POST /search``) for the test-suite.

Build it with :func:`make_app` and serve it with ``aiohttp_server``/``TestServer``. Like a real
instance, the output format comes from ``format`` (default ``html``) and must be listed in the
instance's formats: ``make_app(formats=("html",))`` is a default install, where
``format=json`` gets **403 Forbidden** (an HTML page). ``format=html`` gets a small HTML page.
``make_app(api_key="k")`` stands for an authenticating reverse proxy: without
``Authorization: Bearer k`` -> 401. JSON replies carry ``query``, ``number_of_results``,
``results`` (``url``, ``title``, ``content``, ``engine``, ``engines``, ``score``, ``category``,
``positions``, ``parsed_url``, ``publishedDate``), ``answers``, ``corrections``, ``infoboxes``,
``suggestions`` and ``unresponsive_engines``.

Behaviour by ``q`` (case-insensitive substring, first match wins):

============  =================================================================
fail500       500 HTML "Internal Server Error"
slow          waits for ``app[GATE]``, then the default answer
garbage       200 ``application/json`` whose body is truncated, not JSON
quota         429 "Too Many Requests" (the limiter / bot detection)
unresponsive  no results; ``unresponsive_engines`` [["google","timeout"],["bing","CAPTCHA"]]
empty         no results, nothing unresponsive
inject        default results, result 2's ``content`` is serper.INJECTION
rich          answers (a plain string, as older releases send, and an object
              ``{"answer", "url", "template", "engine"}``, plus a structured one without
              ``answer``), an infobox, corrections, suggestions, then the default results
sparse        results with ``content`` null, ``content`` missing, ``url`` missing, an ISO
              ``publishedDate``
(default)     3 results: "Result i for <q>", ``https://example.com/<slug>/i``,
              content "Snippet i about <q>.", ``publishedDate`` null
============  =================================================================

Every request is recorded in ``app[REQUESTS]`` as ``{"path", "method", "query", "form", "headers"}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from .serper import INJECTION, slug

REQUESTS: web.AppKey[list[dict[str, Any]]] = web.AppKey("requests", list)
GATE = web.AppKey("gate", asyncio.Event)
FORMATS: web.AppKey[tuple[str, ...]] = web.AppKey("formats", tuple)
API_KEY: web.AppKey[str | None] = web.AppKey("api_key")

_PAGE = "<!doctype html>\n<html><head><title>{t}</title></head><body><h1>{t}</h1><p>{p}</p></body></html>"


def make_app(*, formats: Sequence[str] = ("html", "json"), api_key: str | None = None) -> web.Application:
    app = web.Application()
    app[REQUESTS] = []
    app[GATE] = asyncio.Event()
    app[FORMATS] = tuple(formats)
    app[API_KEY] = api_key
    app.router.add_route("GET", "/search", search)
    app.router.add_route("POST", "/search", search)
    return app


def _html(status: int, title: str, text: str) -> web.Response:
    return web.Response(status=status, text=_PAGE.format(t=title, p=text), content_type="text/html")


async def search(request: web.Request) -> web.StreamResponse:
    app = request.app
    form = dict(await request.post()) if request.method == "POST" else {}
    app[REQUESTS].append({"path": request.path, "method": request.method, "query": dict(request.query),
                          "form": form, "headers": dict(request.headers)})
    if app[API_KEY] is not None and request.headers.get("Authorization") != f"Bearer {app[API_KEY]}":
        return _html(401, "401 Unauthorized", "Authentication required.")
    params = {**request.query, **form}
    fmt = str(params.get("format", "html"))
    if fmt not in app[FORMATS]:
        return _html(403, "403 Forbidden", "You don't have the permission to access the requested resource.")
    q = str(params.get("q", ""))
    if fmt == "html":
        return _html(200, f"{q} - SearXNG", "results as HTML")
    if fmt != "json":
        return _html(400, "400 Bad Request", f"format {fmt} is not implemented by this fake")
    return await _scenario(app, q)


async def _scenario(app: web.Application, q: str) -> web.StreamResponse:
    low = q.lower()
    if "fail500" in low:
        return _html(500, "500 Internal Server Error", "The server encountered an internal error.")
    if "garbage" in low:
        return web.Response(body=b'{"query": "' + q.encode() + b'", "results": [', content_type="application/json")
    if "quota" in low:
        return _html(429, "429 Too Many Requests", "Too many requests")
    if "slow" in low:
        await app[GATE].wait()
    reply = _envelope(q)
    if "unresponsive" in low:
        reply["unresponsive_engines"] = [["google", "timeout"], ["bing", "CAPTCHA"]]
    elif "sparse" in low:
        reply["results"] = _sparse(q)
    elif "empty" not in low:
        reply["results"] = _results(q, injected="inject" in low)
        if "rich" in low:
            reply.update(_rich(q))
    reply["number_of_results"] = len(reply["results"])
    return web.json_response(reply)


def _envelope(q: str) -> dict[str, Any]:
    return {"query": q, "number_of_results": 0, "results": [], "answers": [], "corrections": [],
            "infoboxes": [], "suggestions": [], "unresponsive_engines": []}


def _result(q: str, i: int, **over: Any) -> dict[str, Any]:
    url = f"https://example.com/{slug(q)}/{i}"
    item = {"url": url, "title": f"Result {i} for {q}", "content": f"Snippet {i} about {q}.",
            "engine": "duckduckgo", "engines": ["duckduckgo", "brave"], "score": 4.0 / i,
            "category": "general", "positions": [i], "template": "default.html",
            "parsed_url": ["https", "example.com", f"/{slug(q)}/{i}", "", "", ""], "publishedDate": None,
            "thumbnail": "", "img_src": "", "priority": ""}
    item.update(over)
    return item


def _results(q: str, *, injected: bool = False) -> list[dict[str, Any]]:
    items = [_result(q, i) for i in (1, 2, 3)]
    if injected:
        items[1]["content"] = INJECTION
    return items


def _sparse(q: str) -> list[dict[str, Any]]:
    missing = _result(q, 2)
    del missing["content"]
    no_url = _result(q, 3)
    del no_url["url"]
    return [_result(q, 1, content=None), missing, no_url,
            _result(q, 4, publishedDate="2026-03-03T10:20:00", content="dated")]


def _rich(q: str) -> dict[str, Any]:
    return {
        "answers": [f"plain answer about {q}",
                    {"answer": f"object answer about {q}", "url": "https://example.com/answer",
                     "template": "answer/legacy.html", "engine": "wikipedia"},
                    {"template": "answer/weather.html", "current": {"summary": "sunny"}}],
        "infoboxes": [{"infobox": "Ollama", "id": "https://en.wikipedia.org/wiki/Ollama",
                       "content": "Ollama runs models locally.", "engine": "wikipedia",
                       "urls": [{"title": "Official site", "url": "https://ollama.com/"}], "attributes": []}],
        "corrections": [f"{q} corrected"],
        "suggestions": [f"{q} tutorial"],
    }
