"""Running one server-side tool call (web_search, fetch_url) for the tool loop.

Every outcome is text for the model: results clearly delimited as untrusted data, or a short
error ("web_search failed: ...") so the model can answer anyway. Nothing here raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from litegate.config import Config
from litegate.tools.cache import SearchCache
from litegate.tools.errors import ToolError
from litegate.tools.fetch_page import fetch_url
from litegate.tools.render import render_page, render_results
from litegate.tools.search import SEARCH_BACKENDS, SearchResult

WEB_SEARCH = {"type": "function", "function": {
    "name": "web_search",
    "description": "Search the web for current or factual information you do not know. Returns numbered results "
                   "(title, link, snippet). Cite the links you use.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string", "description": "The search query"}},
                   "required": ["query"]}}}
FETCH_URL = {"type": "function", "function": {
    "name": "fetch_url",
    "description": "Read one web page (an http or https link, e.g. from web_search results) as plain text.",
    "parameters": {"type": "object", "properties": {"url": {"type": "string", "description": "The page's URL"}},
                   "required": ["url"]}}}
DEFINITIONS = {"web_search": WEB_SEARCH, "fetch_url": FETCH_URL}


@dataclass
class Outcome:
    text: str
    ok: bool
    sources: list[tuple[str, str]] = field(default_factory=list)  # (url, title)
    results: list[tuple[str, str, str]] = field(default_factory=list)  # (url, title, snippet), for faces that show them


@dataclass
class Kit:
    """What running tools needs, handed in by the gateway (the loop owns no state)."""

    session: Any  # aiohttp.ClientSession (search backends may live on the LAN)
    fetcher: Any  # guarded session: fetch_url never reaches private addresses unless allowed
    cfg: Config
    cache: SearchCache
    allow_search: Callable[[], bool]  # counts against per-key and global daily limits
    count: Callable[[str, str], None]  # (tool, outcome) for metrics


async def execute(kit: Kit, name: str, arguments: str) -> Outcome:
    try:
        args = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        return Outcome(f"{name} failed: the arguments were not a JSON object", False)
    try:
        if name == "web_search":
            outcome = await _search(kit, str(args.get("query") or "").strip())
        else:
            outcome = await _fetch(kit, str(args.get("url") or "").strip())
    except ToolError as e:
        kit.count(name, e.code)
        return Outcome(f"{name} failed: {e.message}", False)
    kit.count(name, "ok")
    return outcome


async def _search(kit: Kit, query: str) -> Outcome:
    ws = kit.cfg.web_search
    if ws is None:
        raise ToolError("web search is not configured on this gateway", code="unsupported")
    if not query:
        raise ToolError("the query was empty", code="bad_request")
    label = f"{ws.provider}:{ws.api_base or ''}:{ws.gl or ''}:{ws.hl or ''}"
    results = await kit.cache.lookup(label, query, ws.max_results, ttl_s=ws.cache_ttl_s)
    if results is None:
        if not kit.allow_search():
            raise ToolError("the daily search limit is reached; answer from what you know", code="quota")
        results = await _backend_search(kit, query)
        await kit.cache.remember(label, query, ws.max_results, results, ttl_s=ws.cache_ttl_s)
    sources = [(r.url, r.title) for r in results if r.url]
    return Outcome(render_results(query, results, max_chars=ws.max_chars), True, sources,
                   [(r.url, r.title, r.snippet) for r in results if r.url])


async def _backend_search(kit: Kit, query: str) -> list[SearchResult]:
    ws = kit.cfg.web_search
    timeout = ws.timeout_s
    backend = SEARCH_BACKENDS[ws.provider]
    coro = backend.search(kit.session, api_base=ws.api_base or backend.default_api_base, api_key=ws.api_key,
                          query=query, num=ws.max_results, gl=ws.gl, hl=ws.hl, timeout_s=timeout)
    try:
        return await asyncio.wait_for(coro, timeout + 1)
    except asyncio.TimeoutError:
        raise ToolError(f"the search backend did not answer within {timeout:g}s", code="timeout") from None


async def _fetch(kit: Kit, url: str) -> Outcome:
    f = kit.cfg.fetch_url
    if not url:
        raise ToolError("the url was empty", code="bad_request")
    title, text = await fetch_url(kit.fetcher, url, max_bytes=int(f.max_mb * (1 << 20)), timeout_s=f.timeout_s,
                                  allow_private=f.allow_private, max_chars=f.max_chars)
    return Outcome(render_page(url, title, text, f.max_chars), True, [(url, title or url)])
