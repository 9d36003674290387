"""Where answers leave: whole replies with litegate's headers, and streams written frame by frame.

A stream is relayed from the core's events through the face's StreamWriter. Keep-alives are
added here and only here: a timer writes the face's keep-alive frame whenever nothing has been
written for server.sse_keepalive_s (a model loading, a web search running), and that first
keep-alive commits the response. Before anything is written an error is still a whole error
response (the middleware renders it in the face's shape); after, it is the face's error frame
and the end of the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import structlog
from aiohttp import web

from litegate.core import plan as planning
from litegate.core.auth import ANONYMOUS, Principal
from litegate.core.services import Call, Plan
from litegate.errors import GatewayError, InternalError, ShuttingDown
from litegate.http.appkeys import CALL, PRINCIPAL, SERVICES
from litegate.surfaces.base import StreamWriter
from litegate.wire import ChatRequest, StreamEvent, encoder

log = structlog.get_logger("litegate.http")
_HIGH_WATER = 1 << 16  # bytes queued for a stream's client before the handler waits for them to leave


def litegate_headers(call: Call) -> dict[str, str]:
    headers = {"x-request-id": call.request_id, "x-litegate-overhead-ms": f"{call.overhead_ms():.2f}",
               **call.extra_headers}
    if call.attempt is not None:
        headers["x-litegate-model"] = call.deployment
        headers["x-litegate-route"] = call.route or "direct"
    return headers


def reply(call: Call, body: bytes | Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    """A whole answer; `body` is bytes, or a msgspec Struct / plain data to encode as JSON."""
    data = body if isinstance(body, bytes) else encoder.encode(body)
    return web.Response(body=data, status=status, content_type=content_type, headers=litegate_headers(call))


async def admit(request: web.Request, endpoint: str, requested: str, req: ChatRequest | None = None, *,
                stream: bool = False) -> tuple[Call, Plan]:
    """A model request starts counting: its plan (the key's right to the model checked there), then its
    key's limits (429 when one is reached)."""
    call = request[CALL]
    svc = request.app[SERVICES]
    principal = principal_of(request)
    call.endpoint, call.stream = endpoint, stream  # from here a refusal (403, 404, 429) is accounted too
    plan = await planning.make(svc, call, principal, requested, req)
    call.plan = plan
    admission = await svc.state.admit(principal.key, call.request_id)  # one round trip when shared
    if principal.key is not None:
        call.admitted, call.lease = principal.key, admission.lease
        call.extra_headers = dict(admission.headers)
    return call, plan


def principal_of(request: web.Request) -> Principal:
    return request.get(PRINCIPAL, ANONYMOUS)


async def stream(request: web.Request, call: Call, events: AsyncIterator[StreamEvent],
                 writer: StreamWriter) -> web.StreamResponse:
    """Relay events as the face's frames, with keep-alives while nothing else is being written.

    After the first byte every failure (a GatewayError, a bug, the shutdown grace running out)
    becomes the face's error frame, the end of the body and the end of the connection."""
    out = _Outlet(request, call, writer)
    out.beat(call.cfg.server.sse_keepalive_s)
    try:
        async with aclosing(events):
            try:
                async for ev in events:
                    if call.first_token_s is None:
                        call.first_token_s = time.perf_counter() - call.started
                    frames = writer.feed(ev)
                    if frames:
                        await out.write(frames)
                await out.close(writer.finish())
            except GatewayError as e:
                if not out.begun:
                    raise
                await _fail(out, call, e)
            except asyncio.CancelledError:
                if not (out.begun and request.app[SERVICES].cut):
                    raise  # the client went away: nothing to write to
                asyncio.current_task().uncancel()
                call.status = ShuttingDown.status
                await _fail(out, call, ShuttingDown("litegate is shutting down; the stream was ended before "
                                                    "its answer was complete"))
            except Exception:
                if not out.begun:
                    raise
                log.exception("stream_internal_error", request_id=call.request_id, deployment=call.deployment)
                await _fail(out, call, InternalError("litegate hit an internal error; see its log"))
    finally:
        await out.stop()
    await out.resp.write_eof()
    return out.resp


async def _fail(out: _Outlet, call: Call, err: GatewayError) -> None:
    """After the first byte: the face's error frame ends the stream (no retry can happen now), and the
    connection closes after it so no client waits on a half-used keep-alive connection."""
    call.stream_error = err.code or err.type
    log.warning("stream_failed", request_id=call.request_id, deployment=call.deployment, error=err.code)
    out.resp.force_close()
    await out.write(out.writer.fail(err))
    await out.flush()


class _Outlet:
    """The response being streamed: begun once (by the first frame or a keep-alive), written in order.

    Frames are not written one by one: the handler queues them and a pump task (started when the
    queue fills, gone when it is empty) writes whatever is queued whenever it gets to run, which is
    when the handler waits for the backend again. So
    the events parsed from one upstream read leave in one socket write (a burst of 20 chunks was
    20 writes), while a token that arrives alone still leaves at once. A slow client holds the
    handler back (at most _HIGH_WATER bytes queued), as awaiting each write did."""

    __slots__ = ("request", "call", "writer", "resp", "_ready", "_writes", "_timer", "_beating", "_every",
                 "_queue", "_queued", "_room", "_pump", "_pumping", "_failed", "_closing")

    def __init__(self, request: web.Request, call: Call, writer: StreamWriter) -> None:
        self.request, self.call, self.writer = request, call, writer
        self.resp: web.StreamResponse | None = None
        self._ready: asyncio.Future | None = None
        self._writes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._beating: asyncio.Task | None = None
        self._every = 0.0
        self._queue: list[bytes] = []
        self._queued = 0
        self._room: asyncio.Future | None = None  # the handler waits on it while the queue is full
        self._pump: asyncio.Task | None = None
        self._pumping = False  # the pump has begun writing (a pump not yet run can be taken over)
        self._failed: BaseException | None = None
        self._closing = False

    @property
    def begun(self) -> bool:
        return self.resp is not None

    async def begin(self) -> web.StreamResponse:
        if self.resp is None:
            headers = litegate_headers(self.call)
            headers["content-type"] = f"{self.writer.media_type}; charset=utf-8"
            headers["cache-control"] = "no-cache"
            headers["x-accel-buffering"] = "no"
            self.resp = web.StreamResponse(headers=headers)
            self._ready = asyncio.get_running_loop().create_future()
            try:
                await self.resp.prepare(self.request)
            finally:
                self._ready.set_result(None)
        elif not self._ready.done():
            await self._ready
        return self.resp

    async def write(self, frames: list[bytes]) -> None:
        if self.resp is None or not self._ready.done():
            await self.begin()
        if self._failed is not None:
            raise self._failed
        self._writes += 1
        self._queue += frames
        self._queued += sum(map(len, frames))
        if self._pump is None:  # a pump runs only while there is something to write: none held per idle stream
            self._pump = asyncio.ensure_future(self._run())
        if self._queued > _HIGH_WATER:
            self._room = asyncio.get_running_loop().create_future()
            await self._room

    async def _run(self) -> None:
        """Write what is queued, as one write per turn, until nothing is left (or the client is gone)."""
        resp = self.resp
        self._pumping = True
        try:
            while self._queue:
                queue, self._queue, self._queued = self._queue, [], 0
                if self._room is not None and not self._room.done():
                    self._room.set_result(None)
                await resp.write(queue[0] if len(queue) == 1 else b"".join(queue))
        except (ConnectionError, RuntimeError) as e:  # the client went away (or the response is over)
            self._failed = e
            if self._room is not None and not self._room.done():
                self._room.set_exception(e)
        finally:
            self._pump, self._pumping = None, False

    async def close(self, frames: list[bytes]) -> None:
        """The last frames and the end of the body. What is still queued leaves with them in one write
        when the pump has not begun on it (a short answer: headers, every frame and the chunked end in
        one send), else after the pump's write in progress."""
        if self.resp is None or not self._ready.done():
            await self.begin()
        if self._pump is not None and not self._pumping:
            self._pump.cancel()
            self._pump = None
        await self.flush()  # a pump already writing finishes first
        tail, self._queue, self._queued = self._queue + frames, [], 0
        await self.resp.write_eof(b"".join(tail))

    async def flush(self) -> None:
        """Everything queued written (raises if the client went away)."""
        self._closing = True
        while self._pump is not None:
            await asyncio.shield(self._pump)
        if self._failed is not None:
            raise self._failed

    def beat(self, every: float) -> None:
        self._every = every
        self._timer = asyncio.get_running_loop().call_later(every, self._tick, self._writes)

    def _tick(self, seen: int) -> None:
        if self._writes == seen and (self._beating is None or self._beating.done()):
            self._beating = asyncio.ensure_future(self._keepalive())
        self._timer = asyncio.get_running_loop().call_later(self._every, self._tick, self._writes)

    async def _keepalive(self) -> None:
        try:
            await self.begin()
            if self.writer.keepalive and not self._closing:
                await self.write([self.writer.keepalive])
        except (ConnectionError, RuntimeError):  # the client went away: the handler is being cancelled
            pass

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in (self._beating, self._pump):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
