"""The pooled HTTP/1.1 client that upstream.py sends backend calls through (nothing else uses it).

Why not aiohttp's client: on the hot path it cost ~0.2 ms of CPU per request, about as much as
the rest of litegate together (`make bench`, bench/README.md "Profiling"). This is the part of
a client a backend call needs and no more: keep-alive connections pooled per (scheme, host,
port), one write per request, responses parsed by httptools (llhttp, the parser Node.js uses),
body pieces handed over as they arrive so one upstream read becomes one item downstream.

Timeouts: `connect_s` for a new connection, `read_s` for any wait on the backend (headers or the
next body bytes), `total_s` for the whole exchange. A response not read to its end (an error, a
cancelled caller) closes its connection instead of returning it to the pool. A reused keep-alive
connection that fails before any byte of the answer (the backend closed it while idle) is retried
once on a new connection.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import httptools

_HIGH_WATER = 1 << 18  # pause reading when this much body is waiting for the consumer
_EMPTY = b""


class ProtocolError(Exception):
    """The backend's bytes were not HTTP/1.1, or the body was cut short."""


class BodyTooLarge(Exception):
    """read(max_bytes) saw more than max_bytes."""


class ConnectFailed(ConnectionError):
    """No connection could be made (refused, unreachable, name not resolved): nothing was sent."""


@functools.lru_cache(maxsize=512)
def _target(url: str) -> tuple[tuple[str, str, int], bytes]:
    """(pool key, the request line's target + Host header) for a URL; cached, URLs repeat."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    if port != default:
        netloc += f":{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, host, port), f"{path} HTTP/1.1\r\nhost: {netloc}\r\n".encode()


def _head(method: str, url: str, body: bytes, headers: Mapping[str, str], user_agent: bytes
          ) -> tuple[tuple[str, str, int], bytes]:
    key, target = _target(url)
    lines = [method.encode(), b" ", target, user_agent, b"content-length: ", str(len(body)).encode(), b"\r\n"]
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}\r\n".encode())
    lines.append(b"\r\n")
    return key, b"".join(lines)


class Response:
    """A backend's answer: status and headers now, the body as it arrives. close() when done."""

    __slots__ = ("status", "headers", "_conn", "_pool", "_key", "_deadline", "_read_s", "_inflate")

    def __init__(self, conn: _Conn, pool: Pool, key: tuple, deadline: float, read_s: float) -> None:
        self._conn, self._pool, self._key = conn, pool, key
        self._deadline, self._read_s = deadline, read_s
        self.status = conn.status
        self.headers: dict[str, str] = conn.headers
        encoding = self.headers.get("content-encoding", "identity").lower()
        self._inflate = None if encoding == "identity" else zlib.decompressobj(
            {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(encoding, 0))

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value and value.isdigit() else None

    async def chunks(self) -> AsyncIterator[bytes]:
        """Everything that arrived since the last item, joined: one item per socket read or so."""
        conn = self._conn
        while True:
            data = await conn.next_body(self._deadline, self._read_s)
            if data is None:
                if self._inflate is not None:
                    tail = self._inflate.flush()
                    if tail:
                        yield tail
                return
            if self._inflate is not None:
                try:
                    data = self._inflate.decompress(data)
                except zlib.error as e:
                    raise ProtocolError(f"bad {self.headers.get('content-encoding')} body: {e}") from None
            if data:
                yield data

    async def read(self, max_bytes: int | None = None) -> bytes:
        """The whole body (BodyTooLarge past max_bytes)."""
        conn = self._conn
        if self._inflate is None and conn.complete and len(conn.body) == 1:  # the usual case: all in one read
            data = conn.body.popleft()
            conn.buffered = 0
            if max_bytes is not None and len(data) > max_bytes:
                raise BodyTooLarge()
            return data
        out = bytearray()
        async for data in self.chunks():
            out += data
            if max_bytes is not None and len(out) > max_bytes:
                raise BodyTooLarge()
        return bytes(out)

    def close(self) -> None:
        """Hand the connection back when the answer was read to its end, else close it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._release(self._key, conn)


class _Conn(asyncio.Protocol):
    """One keep-alive connection and the response currently being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.received = 0
        self.error: BaseException | None = None
        self.waiter: asyncio.Future | None = None
        self.paused = False

    # -------------------------------------------------------------- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        # httptools calls this once per whole header, however the bytes were split across reads
        key = name.decode("latin-1").lower()
        old = self.headers.get(key)
        self.headers[key] = value.decode("latin-1") if old is None else f"{old}, {value.decode('latin-1')}"

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # only known here: llhttp resets at the end
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True

    # -------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.error = ProtocolError("the backend switched protocols")
        except httptools.HttpParserError as e:
            self.error = ProtocolError(f"the backend's reply is not valid HTTP/1.1: {e}")
        if self.buffered > _HIGH_WATER and not self.paused and not self.complete:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.headers_done and "content-length" not in self.headers \
                    and "chunked" not in self.headers.get("transfer-encoding", ""):
                self.complete = True  # a body delimited by the end of the connection
            else:
                self.error = exc or ConnectionResetError("the backend closed the connection mid-reply")
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -------------------------------------------------------------- used by Pool / Response
    async def _wait(self, deadline: float, read_s: float) -> None:
        loop = self.loop
        self.waiter = w = loop.create_future()
        timer = loop.call_at(min(loop.time() + read_s, deadline), _expire, w)
        try:
            await w
        finally:
            timer.cancel()
            self.waiter = None

    async def head(self, deadline: float, read_s: float) -> None:
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            if self.closed:
                raise ConnectionResetError("the backend closed the connection")
            await self._wait(deadline, read_s)

    async def next_body(self, deadline: float, read_s: float) -> bytes | None:
        """The body bytes buffered now (waiting for some if none), or None at the end."""
        while True:
            if self.body:
                body = self.body
                data = body.popleft() if len(body) == 1 else _EMPTY.join(body)
                body.clear()
                self.buffered = 0
                if self.paused:
                    self.paused = False
                    self.transport.resume_reading()
                return data
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            await self._wait(deadline, read_s)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(w: asyncio.Future) -> None:
    if not w.done():
        w.set_exception(asyncio.TimeoutError())


class Pool:
    """Keep-alive connections per (scheme, host, port), most recently used first."""

    def __init__(self, *, keepalive_s: float = 30.0, max_idle: int = 256, user_agent: str = "litegate") -> None:
        self.keepalive_s, self.max_idle = keepalive_s, max_idle
        self._ua = f"user-agent: {user_agent}\r\n".encode()
        self._idle: dict[tuple, list[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def request(self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None, *,
                      connect_s: float = 10, read_s: float = 300, total_s: float = 900) -> Response:
        """Send one request and wait for the answer's status and headers."""
        if self._closed:
            raise RuntimeError("the pool is closed")
        key, head = _head(method, url, body, headers or {}, self._ua)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + total_s
        message = head + body if len(body) < 65536 else None
        while True:
            conn = self._idle_conn(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, loop, min(connect_s, total_s))
            try:
                if message is not None:
                    conn.transport.write(message)
                else:
                    conn.transport.writelines((head, body))
                await conn.head(deadline, read_s)
            except (asyncio.TimeoutError, TimeoutError):  # an OSError too, since Python 3.11
                conn.abort()
                raise
            except (ConnectionError, OSError) as e:
                conn.abort()
                if reused and conn.received == 0:
                    continue  # the backend had closed this idle connection: once more on a new one
                raise ConnectionError(str(e) or type(e).__name__) from None
            except BaseException:
                conn.abort()
                raise
            return Response(conn, self, key, deadline, read_s)

    def _idle_conn(self, key: tuple) -> _Conn | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive_s:
                conn._reset()
                return conn
            conn.abort()
        return None

    async def _connect(self, key: tuple, loop: asyncio.AbstractEventLoop, timeout: float) -> _Conn:
        scheme, host, port = key
        ctx = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            ctx = self._ssl
        coro = loop.create_connection(lambda: _Conn(loop), host, port, ssl=ctx,
                                      server_hostname=host if ctx else None)
        try:
            _, conn = await asyncio.wait_for(coro, timeout)
        except OSError as e:
            raise ConnectFailed(e.strerror or str(e) or type(e).__name__) from None
        sock = conn.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        return conn

    def _release(self, key: tuple, conn: _Conn) -> None:
        if self._closed or conn.closed or not conn.complete or conn.error is not None or conn.body \
                or not conn.keep_alive:
            conn.abort()
            return
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self.max_idle:
            idle.pop(0).abort()
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
