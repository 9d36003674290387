"""Web search backends: Serper (Google results) and SearXNG (self-hosted), one result shape.

Each backend is one async function taking the app's ClientSession and returning SearchResults;
every failure (down, slow, over quota, not JSON, not the expected shape) becomes a ToolError with
a short reason the model can read, and no aiohttp exception escapes. Backend addresses come
from the owner's config, so these calls use the ordinary session, not the guarded fetch one.
Replies are decoded into small view structs holding only the fields used (serper.md §2, §5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import asyncio
from typing import Any

import aiohttp
import msgspec

from litegate.tools.errors import ToolError
from litegate.tools.render import render_results

__all__ = ["SearchResult", "render_results", "searxng_search", "serper_search"]

MAX_REPLY_BYTES = 4 << 20
MAX_NUM = 100


class SearchResult(msgspec.Struct, frozen=True):
    title: str
    url: str
    snippet: str
    date: str | None = None


# ---------------------------------------------------------------- HTTP, errors
async def _call(session: aiohttp.ClientSession, method: str, url: str, *, backend: str,
                timeout_s: float, **kwargs: Any) -> tuple[int, bytes]:
    """One request, (status, body); transport failures are ToolErrors naming the backend."""
    try:
        async with session.request(method, url, timeout=aiohttp.ClientTimeout(total=timeout_s), **kwargs) as resp:
            body = await _read_capped(resp, MAX_REPLY_BYTES)
            status = resp.status
    except (asyncio.TimeoutError, TimeoutError):
        raise ToolError(f"{backend} did not answer within {timeout_s:g}s", code="timeout", retryable=True) from None
    except aiohttp.ClientConnectorError as e:
        reason = e.os_error.strerror or type(e.os_error).__name__
        raise ToolError(f"{backend} is unreachable ({reason})", code="unreachable", retryable=True) from None
    except (aiohttp.ClientError, OSError, ValueError) as e:
        raise ToolError(f"{backend} request failed ({type(e).__name__})", code="unreachable", retryable=True) from None
    if len(body) > MAX_REPLY_BYTES:
        raise ToolError(f"{backend} sent an oversized answer", code="bad_response")
    return status, body


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or its first limit + 1 bytes (content.read(n) would stop at one chunk)."""
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            break
    return bytes(buf)


def _decode(body: bytes, view: type[Any], backend: str, hint: str = "") -> Any:
    try:
        return msgspec.json.decode(body, type=view)
    except msgspec.DecodeError:
        raise ToolError(f"{backend} returned something that is not the expected JSON{hint}",
                        code="bad_response", retryable=True) from None


def _status_error(backend: str, status: int, detail: str = "") -> ToolError:
    detail = f": {detail}" if detail else ""
    if status == 429:
        return ToolError(f"{backend} is rate limiting requests (HTTP 429{detail})", code="rate_limited", retryable=True)
    if status >= 500:
        return ToolError(f"{backend} is failing (HTTP {status}{detail})", code="http_error", retryable=True)
    return ToolError(f"{backend} refused the search (HTTP {status}{detail})", code="http_error")


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _check_query(query: str, num: int) -> int:
    if not query.strip():
        raise ToolError("the search query is empty", code="bad_request")
    return max(1, min(int(num), MAX_NUM))


# ---------------------------------------------------------------- Serper
class _SerperOrganic(msgspec.Struct):
    title: str | None = None
    link: str | None = None
    snippet: str | None = None
    date: str | None = None


class _SerperAnswerBox(msgspec.Struct):
    title: str | None = None
    answer: str | None = None
    snippet: str | None = None
    snippetHighlighted: list[str] | None = None  # noqa: N815 (Serper's field name)
    link: str | None = None
    date: str | None = None


class _SerperKnowledge(msgspec.Struct):
    title: str | None = None
    type: str | None = None
    website: str | None = None
    description: str | None = None
    descriptionLink: str | None = None  # noqa: N815


class _SerperReply(msgspec.Struct):
    organic: list[_SerperOrganic] | None = None
    answerBox: _SerperAnswerBox | None = None  # noqa: N815
    knowledgeGraph: _SerperKnowledge | None = None  # noqa: N815


class _SerperError(msgspec.Struct):
    message: str = ""


def _serper_error(status: int, body: bytes) -> ToolError:
    try:
        message = msgspec.json.decode(body, type=_SerperError).message
    except msgspec.DecodeError:
        message = ""
    if "credit" in message.lower():
        return ToolError("Serper is out of credits (search quota exhausted)", code="quota")
    if status in (401, 403):
        return ToolError(f"Serper rejected litegate's API key (HTTP {status})", code="auth")
    return _status_error("Serper", status, _short(message))


def _serper_extras(reply: _SerperReply) -> list[SearchResult]:
    """answerBox and knowledgeGraph.description, when Google showed them (serper.md §2)."""
    out = []
    box = reply.answerBox
    if box is not None:
        text = box.answer or box.snippet or " ".join(box.snippetHighlighted or ())
        if text:
            out.append(SearchResult(f"Answer: {box.title}" if box.title else "Answer", box.link or "", text, box.date))
    kg = reply.knowledgeGraph
    if kg is not None and kg.description:
        title = f"{kg.title} ({kg.type})" if kg.title and kg.type else kg.title or "Knowledge panel"
        out.append(SearchResult(title, kg.descriptionLink or kg.website or "", kg.description))
    return out


async def serper_search(session: aiohttp.ClientSession, *, api_base: str, api_key: str | None, query: str, num: int,
                        gl: str | None = None, hl: str | None = None, timeout_s: float) -> list[SearchResult]:
    """POST {api_base}/search; the answer box and knowledge panel (if any) come first, then up
    to `num` organic results."""
    num = _check_query(query, num)
    body: dict[str, Any] = {"q": query, "num": num}
    body.update({k: v for k, v in (("gl", gl), ("hl", hl)) if v})
    status, raw = await _call(session, "POST", f"{api_base.rstrip('/')}/search", backend="Serper", timeout_s=timeout_s,
                              data=msgspec.json.encode(body),
                              headers={"X-API-KEY": api_key, "Content-Type": "application/json"})
    if status != 200:
        raise _serper_error(status, raw)
    reply = _decode(raw, _SerperReply, "Serper")
    organic = [SearchResult(o.title or "", o.link, o.snippet or "", o.date) for o in reply.organic or () if o.link]
    return _serper_extras(reply) + organic[:num]


# ---------------------------------------------------------------- SearXNG
class _SearxResult(msgspec.Struct):
    title: str | None = None
    url: str | None = None
    content: str | None = None
    publishedDate: str | None = None  # noqa: N815


class _SearxLink(msgspec.Struct):
    url: str | None = None


class _SearxInfobox(msgspec.Struct):
    infobox: str | None = None
    id: str | None = None
    content: str | None = None
    urls: list[_SearxLink] | None = None


class _SearxReply(msgspec.Struct):
    results: list[_SearxResult]
    answers: list[Any] | None = None  # plain strings (older releases) or {"answer", "url", ...}
    infoboxes: list[_SearxInfobox] | None = None
    unresponsive_engines: list[Any] | None = None


def _searx_answer(item: Any) -> SearchResult | None:
    text, url = (item.get("answer"), item.get("url")) if isinstance(item, dict) else (item, None)
    if not isinstance(text, str) or not text.strip():
        return None  # translations, weather and other structured answers carry no plain text
    return SearchResult("Answer", url if isinstance(url, str) else "", text)


def _searx_extras(reply: _SearxReply) -> list[SearchResult]:
    out = [a for a in map(_searx_answer, reply.answers or ()) if a is not None]
    for box in reply.infoboxes or ():
        if box.content:
            links = [u.url for u in box.urls or () if u.url]
            url = box.id if (box.id or "").startswith(("http://", "https://")) else (links[0] if links else "")
            out.append(SearchResult(box.infobox or "Infobox", url, box.content))
    return out


def _searx_failed_engines(reply: _SearxReply) -> str:
    names = []
    for item in reply.unresponsive_engines or ():
        if isinstance(item, (list, tuple)) and item:
            names.append(": ".join(str(x) for x in item[:2]))
    return _short(", ".join(names))


def _searx_error(status: int, has_key: bool) -> ToolError:
    if status == 403:
        also = " (or the proxy in front of it rejected litegate's credentials)" if has_key else ""
        return ToolError("SearXNG refused JSON output (HTTP 403): the instance must list json under "
                         f"search.formats in settings.yml{also}", code="http_error")
    if status == 401:
        return ToolError("SearXNG (or the proxy in front of it) rejected litegate's credentials", code="auth")
    if status == 429:
        return ToolError("SearXNG is rate limiting requests (HTTP 429, its limiter or bot detection)",
                         code="rate_limited", retryable=True)
    return _status_error("SearXNG", status)


def _iso_date(value: str | None) -> str | None:
    return value[:10] if value and len(value) >= 10 and value[4] == "-" else value or None


async def searxng_search(session: aiohttp.ClientSession, *, api_base: str, query: str, num: int,
                         timeout_s: float, api_key: str | None = None, gl: str | None = None,
                         hl: str | None = None) -> list[SearchResult]:
    """GET {api_base}/search?q=...&format=json; answers and infoboxes first, then up to `num`
    results. `api_key`, for an instance behind an authenticating proxy, goes as a bearer token."""
    num = _check_query(query, num)
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    status, raw = await _call(session, "GET", f"{api_base.rstrip('/')}/search", backend="SearXNG", timeout_s=timeout_s,
                              params={"q": query, "format": "json", "pageno": "1"}, headers=headers)
    if status != 200:
        raise _searx_error(status, bool(api_key))
    reply = _decode(raw, _SearxReply, "SearXNG", " (is format=json enabled?)")
    results = [SearchResult(r.title or "", r.url, r.content or "", _iso_date(r.publishedDate))
               for r in reply.results if r.url]
    if not results and (failed := _searx_failed_engines(reply)):
        raise ToolError(f"SearXNG found nothing because its engines failed ({failed})", code="http_error",
                        retryable=True)
    return _searx_extras(reply) + results[:num]


@dataclass(frozen=True, slots=True)
class SearchBackend:
    """One row of SEARCH_BACKENDS: how to search, and where when the config names no api_base."""

    search: Callable[..., Awaitable[list[SearchResult]]]  # (session, *, api_base, api_key, query, num, gl, hl, timeout_s)
    default_api_base: str = ""  # "" = the config must give one (a self-hosted instance)
    needs_key: bool = False  # the config must name api_key_env


SEARCH_BACKENDS: Mapping[str, SearchBackend] = MappingProxyType({
    "serper": SearchBackend(serper_search, "https://google.serper.dev", needs_key=True),
    "searxng": SearchBackend(searxng_search),
})
