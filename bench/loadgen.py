"""The load generator: raw asyncio HTTP/1.1 keep-alive connections, one request at a time each.

aiohttp's client costs several times more CPU per request than the gateway under test would leave
room for on a shared core, so this speaks just enough HTTP/1.1 itself: a prebuilt request, a reply
read by Content-Length or chunked framing. For streams it notes the time of the first data chunk
(time to first token), counts events (SSE `data:` lines or NDJSON lines) and checks the stream
ended properly (`[DONE]`, Ollama's `"done":true` or Anthropic's message_stop, no `"error"`).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

perf = time.perf_counter


def request_bytes(host: str, port: int, path: str, body: dict) -> bytes:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return (f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(raw)}\r\n\r\n").encode() + raw


class Reply:
    __slots__ = ("status", "first", "events", "done", "error", "body")

    def __init__(self) -> None:
        self.status, self.first, self.events = 0, 0.0, 0
        self.done = self.error = False
        self.body = b""


_ERROR_MARKERS = (b'"error":{', b'"error": {', b'"error":"', b'"error": "', b'"type":"response.failed"')


class Conn(asyncio.Protocol):
    """One keep-alive connection; `request()` sends prebuilt bytes and resolves with a Reply."""

    def __init__(self) -> None:
        self.t: asyncio.Transport | None = None
        self.buf = bytearray()
        self.fut: asyncio.Future | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.reply = Reply()
        self.head_done = False
        self.chunked = False
        self.clen = 0
        self.ndjson = False
        self.close_after = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.t = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError("connection closed mid-reply"))

    def request(self, payload: bytes) -> asyncio.Future:
        self._reset()
        self.fut = asyncio.get_running_loop().create_future()
        self.t.write(payload)
        return self.fut

    def data_received(self, data: bytes) -> None:
        if self.fut is None or self.fut.done():
            return
        buf = self.buf
        buf += data
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            self.reply.status = int(head[9:12])
            self.chunked = b"transfer-encoding: chunked" in head
            self.ndjson = b"ndjson" in head
            self.close_after = b"connection: close" in head
            i = head.find(b"content-length:")
            if i >= 0:
                j = head.find(b"\r\n", i)
                self.clen = int(head[i + 15:j if j > 0 else len(head)])
            self.head_done = True
            del buf[:end + 4]
        if self.chunked:
            self._chunks(buf)
        elif len(buf) >= self.clen:
            self.reply.body = bytes(buf[:self.clen])
            del buf[:self.clen]
            self._finish()

    def _chunks(self, buf: bytearray) -> None:
        pos, r = 0, self.reply
        while True:
            i = buf.find(b"\r\n", pos)
            if i < 0:
                break
            size = int(bytes(buf[pos:i]).split(b";")[0], 16)
            if size == 0:
                if len(buf) < i + 4:
                    break
                del buf[:i + 4]
                self._finish()
                return
            if len(buf) < i + 4 + size:
                break
            payload = bytes(buf[i + 2:i + 2 + size])
            pos = i + 4 + size
            n = payload.count(b"\n") if self.ndjson else payload.count(b"data:")
            if n and not r.first:
                r.first = perf()
            r.events += n
            if (b"[DONE]" in payload or b'"done":true' in payload or b'"type":"message_stop"' in payload
                    or b'"type":"response.completed"' in payload):
                r.done = True
            # an error object (OpenAI, Anthropic) or string (Ollama); a Responses event's "error":null is none
            if any(marker in payload for marker in _ERROR_MARKERS):
                r.error = True
        if pos:
            del buf[:pos]

    def _finish(self) -> None:
        fut, self.fut = self.fut, None
        if self.close_after:
            self.t.close()
        fut.set_result(self.reply)


async def connect(host: str, port: int, retries: int = 50) -> Conn:
    loop = asyncio.get_running_loop()
    for attempt in range(retries):
        try:
            _, conn = await loop.create_connection(Conn, host, port)
            return conn
        except OSError:
            if attempt == retries - 1:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile in milliseconds of values in seconds."""
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q / 100 * len(s)))] * 1000, 3)


@dataclass
class Run:
    n: int = 0
    errors: int = 0
    events: int = 0
    elapsed: float = 0.0
    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)  # when each answer ended (perf counter)
    first_error: str | None = None

    def bunched(self, within_s: float = 0.0005) -> float | None:
        """Share of answers that ended within `within_s` of the one before: near 0 when answers arrive
        evenly, near 1 when they come in bursts that a one-core gateway must serve one after another."""
        ends = sorted(self.ends)
        if len(ends) < 2:
            return None
        return round(sum(b - a < within_s for a, b in zip(ends, ends[1:])) / (len(ends) - 1), 3)

    def summary(self, stream: bool = False) -> dict:
        out = {"n": self.n, "errors": self.errors, "elapsed_s": round(self.elapsed, 3),
               "rps": round(self.n / self.elapsed, 1) if self.elapsed else None,
               "p50_ms": pct(self.latency, 50), "p99_ms": pct(self.latency, 99)}
        if stream:
            out.update(ttft_p50_ms=pct(self.ttft, 50), ttft_p99_ms=pct(self.ttft, 99),
                       events=self.events, chunks_per_s=round(self.events / self.elapsed, 1) if self.elapsed else None)
        if self.first_error:
            out["first_error"] = self.first_error
        return out


def _ok(r: Reply, stream: bool) -> bool:
    return r.status == 200 and (not stream or (r.done and not r.error))


async def closed_loop(host: str, port: int, payload: bytes, *, concurrency: int, stream: bool = False,
                      max_requests: int | None = None, duration_s: float | None = None) -> Run:
    """`concurrency` connections, each sending the next request when the last reply ends.

    Stops after max_requests replies or duration_s seconds, whichever comes first. Connections
    are opened before the clock starts.
    """
    run = Run()
    conns = [await connect(host, port) for _ in range(concurrency)]
    budget = [max_requests if max_requests is not None else 1 << 62]
    start = perf()
    deadline = start + duration_s if duration_s else float("inf")

    async def worker(conn: Conn) -> None:
        while budget[0] > 0 and perf() < deadline:
            budget[0] -= 1
            t0 = perf()
            try:
                if conn.closed:
                    conn = await connect(host, port)
                r = await conn.request(payload)
            except (OSError, ConnectionError) as e:
                run.errors += 1
                run.first_error = run.first_error or f"{type(e).__name__}: {e}"
                await asyncio.sleep(0.01)
                continue
            t1 = perf()
            if not _ok(r, stream):
                run.errors += 1
                run.first_error = run.first_error or f"HTTP {r.status} {r.body[:200]!r} done={r.done}"
                continue
            run.n += 1
            run.latency.append(t1 - t0)
            run.ends.append(t1)
            if stream:
                run.events += r.events
                run.ttft.append((r.first or t1) - t0)

    await asyncio.gather(*(worker(c) for c in conns))
    run.elapsed = perf() - start
    for c in conns:
        if c.t is not None:
            c.t.close()
    return run


async def hold_streams(host: str, port: int, payload: bytes, n: int, on_all_open=None) -> dict:
    """Open n slow streams at once, wait until every one has its first event, then until all end.

    `on_all_open()` (async) runs while every stream is held open, e.g. to read the server's RSS.
    """
    conns: list[Conn] = []
    for i in range(0, n, 100):  # ramp in batches: a listen backlog of 128 must not drop SYNs
        conns += await asyncio.gather(*(connect(host, port) for _ in range(min(100, n - i))))
    start = perf()
    futs = [c.request(payload) for c in conns]
    while any(not c.reply.first for c, f in zip(conns, futs) if not f.done()) and perf() - start < 60:
        await asyncio.sleep(0.02)
    opened = perf() - start
    open_now = sum(1 for f in futs if not f.done())
    extra = await on_all_open() if on_all_open else None
    results = await asyncio.gather(*futs, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException) or not _ok(r, True)]
    for c in conns:
        c.t.close()
    first = errors[0] if errors else None
    detail = None if first is None else (repr(first) if isinstance(first, BaseException)
                                         else f"HTTP {first.status} done={first.done} error={first.error}")
    return {"n": n, "errors": len(errors), "open_at_once": open_now, "all_open_s": round(opened, 3),
            "total_s": round(perf() - start, 3), "first_error": detail, "during": extra}
