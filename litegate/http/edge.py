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
    plan = await planning.make(svc, call, principal, requested, req)
    call.plan, call.endpoint, call.stream = plan, endpoint, stream
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
                await out.write(writer.finish())
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


class _Outlet:
    """The response being streamed: begun once (by the first frame or a keep-alive), written in order."""

    __slots__ = ("request", "call", "writer", "resp", "_ready", "_writes", "_timer", "_beating", "_every")

    def __init__(self, request: web.Request, call: Call, writer: StreamWriter) -> None:
        self.request, self.call, self.writer = request, call, writer
        self.resp: web.StreamResponse | None = None
        self._ready: asyncio.Future | None = None
        self._writes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._beating: asyncio.Task | None = None
        self._every = 0.0

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
        resp = self.resp if self.resp is not None and self._ready.done() else await self.begin()
        self._writes += 1
        await resp.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def beat(self, every: float) -> None:
        self._every = every
        self._timer = asyncio.get_running_loop().call_later(every, self._tick, self._writes)

    def _tick(self, seen: int) -> None:
        if self._writes == seen and (self._beating is None or self._beating.done()):
            self._beating = asyncio.ensure_future(self._keepalive())
        self._timer = asyncio.get_running_loop().call_later(self._every, self._tick, self._writes)

    async def _keepalive(self) -> None:
        try:
            resp = await self.begin()
            if self.writer.keepalive:
                await resp.write(self.writer.keepalive)
        except (ConnectionError, RuntimeError):  # the client went away: the handler is being cancelled
            pass

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._beating is not None and not self._beating.done():
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)
