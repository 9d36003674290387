"""Reading a request body, once, before any face sees it: every face gets the same limits.

- a time limit (server.body_timeout_s, counted from the headers): a client that sends half a
  body and stalls gets a 408 and the connection is closed, instead of holding it for ever;
- the size cap (server.max_body_mb) counted on the bytes as they are inflated: aiohttp inflates
  gzip/deflate/br in bounded steps as we read, so a 1 MB body that would inflate to 1 GB stops at
  the cap, and a body that is not what its Content-Encoding says is a 400, not a 500;
- JSON that msgspec and orjson cannot take safely: nesting deeper than server.max_json_depth, and
  integers outside 64 bits (orjson refuses to write them again when a provider forwards them).

The bytes are then what `request.read()` (and `request.post()`) return to the face's handler.
"""

from __future__ import annotations

import asyncio
import re
from itertools import accumulate

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestPayloadError

from litegate.errors import BadRequest, PayloadTooLarge, RequestTimeout
from litegate.http.appkeys import CALL

_MB = 1 << 20
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A JSON string literal (unrolled so a long string is one fast scan, not a branch per character).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_TWENTY_DIGITS = re.compile(rb"\d{20}")
# An integer token of 20+ digits: 2**64 has 20, so anything this long may not fit in 64 bits.
_BIG_INT = re.compile(rb"(?<![\w.+-])-?\d{20,}(?![\d.eE])")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


@web.middleware
async def body_middleware(request: web.Request, handler) -> web.StreamResponse:
    if request.method in _WITH_BODY and request.can_read_body:
        await read(request)
    return await handler(request)


async def read(request: web.Request) -> bytes:
    """The whole body, inflated and checked; cached on the request for `request.read()`."""
    server = request[CALL].cfg.server
    cap = int(server.max_body_mb * _MB)
    if request.content_length is not None and request.content_length > cap:
        raise _too_large(server.max_body_mb)
    content = request.content
    try:
        if content.is_eof():  # all of it arrived with the headers (most requests): no wait, no timer
            body = content.read_nowait()
            if len(body) > cap:
                raise _too_large(server.max_body_mb)
        else:
            body = await asyncio.wait_for(_drain(request, cap, server.max_body_mb), server.body_timeout_s)
    except asyncio.TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within server.body_timeout_s "
                             f"({server.body_timeout_s:g} s)") from None
    except (RequestPayloadError, BadHttpMessage) as e:
        encoding = request.headers.get("content-encoding")
        what = f"is not valid {encoding}" if encoding else "could not be read"
        err = BadRequest(f"the request body {what} ({_reason(e)})", code="invalid_body")
        err.close_connection = True
        raise err from None
    problem = json_problem(body, server.max_json_depth)
    if problem:
        raise BadRequest(problem)
    request._read_bytes = body  # what aiohttp's read()/post() return from now on (no public setter)
    return body


async def _drain(request: web.Request, cap: int, cap_mb: float) -> bytes:
    buf = bytearray()
    content = request.content
    while True:
        chunk = await content.readany()
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > cap:
            raise _too_large(cap_mb)


def _too_large(cap_mb: float) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than server.max_body_mb ({cap_mb:g} MB)")


def _reason(e: BaseException) -> str:
    cause = e.__cause__ or e
    text = getattr(cause, "message", None) or str(cause) or type(cause).__name__
    return " ".join(str(text).split())[:200]


def json_problem(raw: bytes, max_depth: int) -> str | None:
    """Why a JSON body must be refused before decoding (too deep, an integer past 64 bits), or None.

    Cheap for ordinary bodies: a body with no more brackets than the limit cannot be too deep, and
    one without twenty digits in a row has no big integer; only others are scanned, outside strings.
    """
    head = raw[:64].lstrip()
    if not head or head[:1] not in b"[{":
        return None
    opens = raw.count(b"[") + raw.count(b"{")
    big = _TWENTY_DIGITS.search(raw) is not None
    if opens <= max_depth and not big:
        return None
    bare = _STRING.sub(b'""', raw)
    if opens > max_depth:
        brackets = bare.translate(None, _NOT_BRACKETS)
        depth = max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
        if depth > max_depth:
            return (f"JSON body is nested {depth} levels deep; at most {max_depth} "
                    f"(server.max_json_depth) are accepted")
    if big and _BIG_INT.search(bare):
        return "JSON body has an integer outside the 64-bit range"
    return None
