"""The only outbound HTTP: send to a backend, open its stream, fetch a URL for a client.

Backend calls go through litegate.pool (a pooled HTTP/1.1 client made for this hot path);
status probes and fetches for clients through aiohttp sessions. Client exceptions become
errors.Upstream* here and nowhere else. Streams are framed here
(NDJSON lines or SSE `data:` payloads) so providers only ever see complete frames.
URL fetches on a client's behalf (images, later web pages) go through a guarded session that
refuses private, loopback and link-local addresses unless the owner allowed them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from litegate.config import Timeouts
from litegate.errors import GatewayError, StreamInterrupted, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from litegate.pool import BodyTooLarge, ConnectFailed, Pool, ProtocolError, Response
from litegate.providers import UpstreamRequest

ParseError = Callable[[int, bytes, Mapping[str, str]], GatewayError]
_MAX_ERROR_BODY = 1 << 20
DEFAULT_MAX_REPLY = 64 << 20  # server.max_upstream_reply_mb's default


def _connection_error(label: str, e: BaseException, t: Timeouts) -> GatewayError:
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return UpstreamTimeout(f"deployment {label} did not answer in time (connect {t.connect_s}s, "
                               f"first token {t.first_token_s}s, total {t.total_s}s)")
    if isinstance(e, (ConnectFailed, aiohttp.ClientConnectorError)):
        reason = e.os_error.strerror if isinstance(e, aiohttp.ClientConnectorError) else str(e)
        return UpstreamUnavailable(f"deployment {label} is unreachable: {reason or e}")
    return UpstreamUnavailable(f"deployment {label} failed: {type(e).__name__}: {e}")


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, or its first cap+1 bytes (content.read(n) returns only what is buffered)."""
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        buf += chunk
        if len(buf) > cap:
            break
    return bytes(buf[:cap + 1])


async def _raise_for_status(resp: Response, parse_error: ParseError, label: str) -> None:
    if resp.status < 300:
        return
    try:
        body = await resp.read(_MAX_ERROR_BODY)
    except BodyTooLarge:
        body = b""
    err = parse_error(resp.status, body, resp.headers)
    err.message = f"deployment {label}: {err.message}"
    raise err


def _too_big(label: str, max_bytes: int) -> UpstreamError:
    return UpstreamError(f"deployment {label} sent a reply larger than server.max_upstream_reply_mb "
                         f"({_size(max_bytes)})", code="upstream_reply_too_large", retryable=False)


_FAILURES = (ConnectionError, OSError, ProtocolError, asyncio.TimeoutError, ValueError)


async def _open(pool: Pool, ureq: UpstreamRequest, t: Timeouts, parse_error: ParseError, label: str) -> Response:
    try:
        resp = await pool.request(ureq.method, ureq.url, ureq.body, ureq.headers, connect_s=t.connect_s,
                                  read_s=t.first_token_s, total_s=t.total_s)
    except _FAILURES as e:
        raise _connection_error(label, e, t) from None
    try:
        await _raise_for_status(resp, parse_error, label)
    except BaseException as e:
        resp.close()
        if isinstance(e, _FAILURES):
            raise _connection_error(label, e, t) from None
        raise
    return resp


async def send(pool: Pool, ureq: UpstreamRequest, timeouts: Timeouts, parse_error: ParseError, label: str,
               max_bytes: int = DEFAULT_MAX_REPLY) -> bytes:
    """One request, whole reply (at most max_bytes, else 502). Cancelling the caller closes the connection."""
    resp = await _open(pool, ureq, timeouts, parse_error, label)
    try:
        if resp.content_length is not None and resp.content_length > max_bytes:
            raise _too_big(label, max_bytes)
        return await resp.read(max_bytes)
    except BodyTooLarge:
        raise _too_big(label, max_bytes) from None
    except _FAILURES as e:
        raise _connection_error(label, e, timeouts) from None
    finally:
        resp.close()


async def probe(session: aiohttp.ClientSession, url: str, *, timeout_s: float) -> bytes:
    """A quick GET of a backend's status endpoint (health, loaded models)."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status >= 300:
                raise UpstreamError(f"{url} answered HTTP {resp.status}")
            body = await _read_capped(resp, _MAX_ERROR_BODY)
            if len(body) > _MAX_ERROR_BODY:
                raise UpstreamError(f"{url} sent a status reply larger than {_size(_MAX_ERROR_BODY)}")
            return body
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        raise UpstreamUnavailable(f"{url}: {type(e).__name__}") from None


@asynccontextmanager
async def open_stream(pool: Pool, ureq: UpstreamRequest, timeouts: Timeouts, parse_error: ParseError, label: str,
                      framing: str, max_bytes: int = DEFAULT_MAX_REPLY) -> AsyncIterator[AsyncIterator[bytes]]:
    """Open a streaming reply and yield its frames (none larger than max_bytes); leaving the block
    closes the connection."""
    resp = await _open(pool, ureq, timeouts, parse_error, label)
    try:
        yield (ndjson_frames if framing == "ndjson" else sse_frames)(resp, label, max_bytes)
    finally:
        resp.close()


async def _chunks(resp: Response, label: str) -> AsyncIterator[bytes]:
    """The body as it arrives: one item per upstream read (whatever the backend's chunking)."""
    try:
        async for chunk in resp.chunks():
            yield chunk
    except (asyncio.TimeoutError, TimeoutError):
        raise StreamInterrupted(f"deployment {label} went silent mid-stream") from None
    except (ConnectionError, OSError, ProtocolError) as e:
        raise StreamInterrupted(f"deployment {label} broke the stream: {type(e).__name__}") from None


async def ndjson_frames(resp: Response, label: str,
                        max_bytes: int = DEFAULT_MAX_REPLY) -> AsyncIterator[bytes]:
    buf = b""
    async for chunk in _chunks(resp, label):
        buf += chunk
        if b"\n" not in chunk:
            if len(buf) > max_bytes:  # one line that never ends
                raise _too_big(label, max_bytes)
            continue
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if buf.strip():
        yield buf


async def sse_frames(resp: Response, label: str,
                     max_bytes: int = DEFAULT_MAX_REPLY) -> AsyncIterator[bytes]:
    """SSE `data:` payloads, one per event; comments and event names are dropped."""
    buf = b""
    data: list[bytes] = []
    held = 0  # bytes of the event being gathered
    async for chunk in _chunks(resp, label):
        buf += chunk
        if b"\n" not in chunk:
            if len(buf) + held > max_bytes:  # one event that never ends
                raise _too_big(label, max_bytes)
            continue
        *lines, buf = buf.split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if not line:
                if data:
                    yield b"\n".join(data)
                    data, held = [], 0
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
                held += len(line)
                if held > max_bytes:
                    raise _too_big(label, max_bytes)
    if buf.startswith(b"data:"):
        data.append(buf[5:].strip())
    if data:
        yield b"\n".join(data)


# ---------------------------------------------------------------- guarded fetches for clients
class FetchRefused(Exception):
    """A URL litegate will not or could not fetch on a client's behalf (the reason says why)."""


def _public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolves like the default resolver, then refuses any non-public address."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        hosts = await self._inner.resolve(host, port, family)
        if not hosts or not all(_public(h["host"]) for h in hosts):
            raise OSError(f"{host} resolves to a private or local address")
        return hosts

    async def close(self) -> None:
        await self._inner.close()


def fetch_session(allow_private: bool) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=32) if allow_private else aiohttp.TCPConnector(
        limit=32, resolver=GuardedResolver())
    return aiohttp.ClientSession(connector=connector, headers={"user-agent": "litegate"})


async def fetch(session: aiohttp.ClientSession, url: str, *, max_bytes: int, timeout_s: float,
                allow_private: bool, max_redirects: int = 3) -> tuple[str, bytes]:
    """GET an http(s) URL for a client: (Content-Type header as sent, body), or FetchRefused with a reason."""
    for _ in range(max_redirects + 1):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise FetchRefused("not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchRefused("only http and https URLs can be fetched")
        if not allow_private and _is_ip(parts.hostname) and not _public(parts.hostname):
            raise FetchRefused("private and local addresses are not allowed")
        try:
            async with session.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                if resp.status in (301, 302, 303, 307, 308) and "location" in resp.headers:
                    url = urljoin(url, resp.headers["location"])
                    continue
                if resp.status >= 400:
                    raise FetchRefused(f"the server answered HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise FetchRefused(f"larger than {_size(max_bytes)}")
                body = await _read_capped(resp, max_bytes)
                if len(body) > max_bytes:
                    raise FetchRefused(f"larger than {_size(max_bytes)}")
                return resp.headers.get("content-type", ""), body
        except (asyncio.TimeoutError, TimeoutError):
            raise FetchRefused(f"no answer within {timeout_s}s") from None
        except aiohttp.ClientConnectorError as e:
            raise FetchRefused(f"cannot connect: {e.os_error}") from None
        except aiohttp.ClientError as e:
            raise FetchRefused(f"fetch failed: {type(e).__name__}") from None
    raise FetchRefused("too many redirects")


def media_type(content_type: str) -> tuple[str, str | None]:
    """'text/html; charset=koi8-r' -> ('text/html', 'koi8-r')."""
    mime, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return mime.strip().lower(), charset


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MB" if n >= 1 << 20 else f"{n / 1024:g} KB"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        return False
