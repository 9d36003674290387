"""The one use case: plan the attempts, call the model through upstream, answer as OpenAI.

Retries and fallbacks happen only before the first byte of an answer reaches the client;
while waiting for a slow backend (Ollama loading a model) a stream yields KEEPALIVE so the
client sees life. After the first chunk an error ends the stream (api writes an SSE error).
Everything a request learns about itself (deployment, route, usage, timings) goes on its Call.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import msgspec
from msgspec import UNSET

from . import upstream
from .chunks import Aggregator, ChunkWriter, CompletionWriter
from .config import Deployment
from .targets import Call, Services, plan, with_targets
from .tools import loop
from .tools.loop import Done, waiting
from .tools.run import Kit
from .errors import BadRequest, GatewayError
from .providers import Provider, Vectors
from .providers.messages import image_url_of
from .wire import (
    ChatCompletion, ChatRequest, CompletionRequest, ContentPart, Embedding, EmbeddingList, EmbeddingUsage,
    EmbeddingsRequest, ImageURL, StreamEvent, TextCompletion, ToolCallDelta, Usage,
)

__all__ = ["Call", "Services", "KEEPALIVE", "chat", "chat_stream", "completion", "completion_stream", "embeddings"]
KEEPALIVE = b": keep-alive\n\n"


# ---------------------------------------------------------------- images
async def _inline_images(svc: Services, call: Call, req: ChatRequest) -> ChatRequest:
    """Replace http(s) image URLs by data URIs for backends that cannot fetch them."""
    if not any(isinstance(m.content, list) and any(_remote(p) for p in m.content) for m in req.messages):
        return req
    messages = list(req.messages)
    for i, m in enumerate(messages):
        if isinstance(m.content, list) and any(_remote(p) for p in m.content):
            parts = [await _inline_part(svc, call, p, f"messages[{i}].content[{j}].image_url") if _remote(p) else p
                     for j, p in enumerate(m.content)]
            messages[i] = msgspec.structs.replace(m, content=parts)
    return msgspec.structs.replace(req, messages=messages)


def _remote(part: ContentPart) -> bool:
    url = image_url_of(part)
    return url is not None and not url.startswith("data:")


async def _inline_part(svc: Services, call: Call, part: ContentPart, where: str) -> ContentPart:
    url = image_url_of(part) or ""
    if url not in call.images:
        images = call.cfg.images
        try:
            content_type, body = await call.waiting(upstream.fetch(
                svc.fetcher_for(images.allow_private), url, max_bytes=int(images.max_mb * (1 << 20)), timeout_s=images.timeout_s,
                allow_private=images.allow_private))
        except upstream.FetchRefused as e:
            raise BadRequest(f"{where}: cannot fetch image {url!r}: {e}", param=where) from None
        mime, _ = upstream.media_type(content_type)
        if not mime.startswith("image/"):
            raise BadRequest(f"{where}: {url!r} is not an image (content type {mime or 'unknown'})", param=where)
        call.images[url] = f"data:{mime};base64,{base64.b64encode(body).decode()}"
    detail = part.image_url.detail if isinstance(part.image_url, ImageURL) else None
    return msgspec.structs.replace(part, image_url=ImageURL(call.images[url], detail))


# ---------------------------------------------------------------- chat
async def _prepared(svc: Services, call: Call, req: ChatRequest, provider: Provider) -> ChatRequest:
    return await _inline_images(svc, call, req) if provider.inline_image_urls else req


async def chat(svc: Services, call: Call, req: ChatRequest) -> ChatCompletion:
    name, route = await plan(svc, call, req.model, req)
    if _server_tools(call.cfg, name, req):
        return await _chat_looped(svc, call, req, (name, route))

    async def attempt(d: Deployment, p: Provider) -> ChatCompletion:
        ureq = p.build_chat(await _prepared(svc, call, req, p), d, svc.memo)
        body = await call.waiting(upstream.send(svc.session, ureq, d.timeouts, p.parse_error, d.id))
        return p.parse_chat(body, d)

    result = await with_targets(svc, call, name, route, attempt)
    if result.memo is not UNSET:
        for key, value in result.memo.items():
            svc.memo.put(key, value)
    reasoning = call.cfg.server.reasoning_content
    for choice in result.choices:
        if not reasoning:
            choice.message.reasoning_content = UNSET
    call.usage = result.usage if result.usage is not UNSET else None
    return msgspec.structs.replace(result, id=ChunkWriter.new_id(), created=int(time.time()), model=req.model,
                                   memo=UNSET)


async def _open_events(svc: Services, call: Call, name: str, route: str, stack: AsyncExitStack,
                       open_one: Callable[[Deployment, Provider, AsyncExitStack], Awaitable[AsyncIterator[StreamEvent]]]
                       ) -> tuple[AsyncIterator[StreamEvent], StreamEvent]:
    """Try targets until one yields its first event; its connection then belongs to `stack`."""

    async def attempt(d: Deployment, p: Provider) -> tuple[AsyncIterator[StreamEvent], StreamEvent]:
        mine = AsyncExitStack()
        try:
            events = await open_one(d, p, mine)
            mine.push_async_callback(events.aclose)
            first = await call.waiting(events.__anext__())
        except StopAsyncIteration:
            await mine.aclose()
            raise GatewayError(f"deployment {d.id} sent an empty stream", status=502, retryable=True) from None
        except BaseException:
            await mine.aclose()
            raise
        stack.push_async_exit(mine)
        return events, first

    return await with_targets(svc, call, name, route, attempt, hold=stack)


async def _events_with_keepalive(call: Call, start: Callable[[AsyncExitStack], Awaitable[tuple]]) -> AsyncIterator[Any]:
    """Yield KEEPALIVE while no backend has answered, then every event of the one that did."""
    async with AsyncExitStack() as stack:
        events, first = None, None
        async for item in waiting(start(stack), KEEPALIVE, call.cfg.server.sse_keepalive_s):
            if type(item) is Done:
                events, first = item.value
            else:
                yield item
        if call.first_token_s is None:
            call.first_token_s = time.perf_counter() - call.started
        yield first
        async for ev in events:
            yield ev


def _model_events(svc: Services, call: Call, name: str, route: str, req: ChatRequest) -> AsyncIterator[Any]:
    """One model call for this request, streamed, with retries and fallbacks before its first event."""

    async def open_one(d: Deployment, p: Provider, stack: AsyncExitStack) -> AsyncIterator[StreamEvent]:
        ureq = p.build_chat(await _prepared(svc, call, req, p), d, svc.memo)
        frames = await call.waiting(stack.enter_async_context(
            upstream.open_stream(svc.session, ureq, d.timeouts, p.parse_error, d.id, p.framing)))
        return p.parse_chat_stream(frames, d)

    return _events_with_keepalive(call, lambda stack: _open_events(svc, call, name, route, stack, open_one))


async def _chat_events(svc: Services, call: Call, req: ChatRequest,
                       planned: tuple[str, str] | None = None) -> AsyncIterator[Any]:
    """Every event of the answer; provider state riding on tool calls is remembered on the way."""
    async for ev in _answer_events(svc, call, req, planned):
        if type(ev) is ToolCallDelta and ev.extra and ev.id:
            _remember(svc, ev.id, ev.extra)
        yield ev


async def _answer_events(svc: Services, call: Call, req: ChatRequest,
                         planned: tuple[str, str] | None) -> AsyncIterator[Any]:
    """One model call, or the server-side tool loop when tools are on."""
    vroute = call.cfg.router.routes.get(call.cfg.resolve_name(req.model))
    if planned is not None:
        name, route = planned
    elif vroute is not None and vroute.classifier is not None:  # the classifier may take a moment
        async for item in waiting(plan(svc, call, req.model, req), KEEPALIVE, call.cfg.server.sse_keepalive_s):
            if type(item) is Done:
                name, route = item.value
            else:
                yield item
    else:
        name, route = await plan(svc, call, req.model, req)
    names = _server_tools(call.cfg, name, req)
    if not names:
        async for ev in _model_events(svc, call, name, route, req):
            yield ev
        return
    ws = call.cfg.web_search
    kit = Kit(session=svc.session, fetcher=svc.fetcher_for(call.cfg.fetch_url.allow_private), cfg=call.cfg,
              cache=svc.search_cache, allow_search=lambda: svc.limits.allow_search(
                  call.key, call.admitted.searches_per_day if call.admitted else None,
                  ws.searches_per_day if ws else None),
              count=lambda tool, outcome: svc.metrics.inc("litegate_search_calls_total",
                                                          (("tool", tool), ("outcome", outcome))))
    async for ev in loop.run(loop.expand_history(req, svc.memo.get), names,
                             call_model=lambda r: _model_events(svc, call, name, route, r), kit=kit,
                             remember=lambda k, v: _remember(svc, k, v), keepalive=KEEPALIVE,
                             keepalive_s=call.cfg.server.sse_keepalive_s,
                             max_rounds=ws.max_rounds if ws else 4, on_tool_calls=lambda n: _count_tools(call, n)):
        yield ev


def _server_tools(cfg, name: str, req: ChatRequest) -> list[str]:
    if req.web_search_options is not None and cfg.web_search is None:
        raise BadRequest("web_search_options: web search is not configured on this gateway",
                         param="web_search_options")
    return loop.server_tools(cfg.groups()[name][0].server_tools, req, cfg.web_search is not None)


def _count_tools(call: Call, n: int) -> None:
    call.server_tool_calls += n


def _remember(svc: Services, key: str, extra: dict[str, Any]) -> None:
    svc.memo.put(key, {**(svc.memo.get(key) or {}), **extra})


async def chat_stream(svc: Services, call: Call, req: ChatRequest) -> AsyncIterator[bytes]:
    """SSE bytes of a chat completion; KEEPALIVE comments until the backend speaks."""
    writer = ChunkWriter(req.model, include_usage=req.include_usage, reasoning=call.cfg.server.reasoning_content)
    try:
        async for ev in _chat_events(svc, call, req):
            if ev is KEEPALIVE:
                yield KEEPALIVE
                continue
            for out in writer.feed(ev):
                yield out
        for out in writer.finish():
            yield out
    finally:
        call.usage = writer.usage


async def _chat_looped(svc: Services, call: Call, req: ChatRequest, planned: tuple[str, str]) -> ChatCompletion:
    """A non-streaming answer built from the tool loop's events."""
    agg = Aggregator(reasoning=call.cfg.server.reasoning_content)
    async for ev in _chat_events(svc, call, req, planned):
        if ev is not KEEPALIVE:
            agg.feed(ev)
    result = agg.result(req.model)
    call.usage = result.usage if result.usage is not UNSET else None
    return msgspec.structs.replace(result, memo=UNSET)


# ---------------------------------------------------------------- completions and embeddings
def _require(p: Provider, what: str, d: Deployment, fn: Any) -> Any:
    if fn is None:
        raise BadRequest(f"model '{d.name}' ({p.name}) does not support {what}", param="model")
    return fn


async def completion(svc: Services, call: Call, req: CompletionRequest) -> TextCompletion:
    async def attempt(d: Deployment, p: Provider) -> TextCompletion:
        ureq = _require(p, "/v1/completions", d, p.build_completion)(req, d)
        body = await call.waiting(upstream.send(svc.session, ureq, d.timeouts, p.parse_error, d.id))
        return p.parse_completion(body, d)

    name, route = await plan(svc, call, req.model)
    result = await with_targets(svc, call, name, route, attempt)
    call.usage = result.usage or None
    return msgspec.structs.replace(result, id=CompletionWriter.new_id(), created=int(time.time()), model=req.model)


async def completion_stream(svc: Services, call: Call, req: CompletionRequest) -> AsyncIterator[bytes]:
    async def open_one(d: Deployment, p: Provider, stack: AsyncExitStack) -> AsyncIterator[StreamEvent]:
        ureq = _require(p, "/v1/completions", d, p.build_completion)(req, d)
        frames = await call.waiting(stack.enter_async_context(
            upstream.open_stream(svc.session, ureq, d.timeouts, p.parse_error, d.id, p.framing)))
        return p.parse_completion_stream(frames, d)

    writer = CompletionWriter(req.model, include_usage=req.include_usage)
    name, route = await plan(svc, call, req.model)
    try:
        async for ev in _events_with_keepalive(call, lambda stack: _open_events(svc, call, name, route, stack,
                                                                                open_one)):
            if ev is KEEPALIVE:
                yield KEEPALIVE
                continue
            for out in writer.feed(ev):
                yield out
        for out in writer.finish():
            yield out
    finally:
        call.usage = writer.usage


async def embeddings(svc: Services, call: Call, req: EmbeddingsRequest) -> EmbeddingList:
    async def attempt(d: Deployment, p: Provider) -> Vectors:
        ureq = _require(p, "embeddings", d, p.build_embeddings)(req, d)
        body = await call.waiting(upstream.send(svc.session, ureq, d.timeouts, p.parse_error, d.id))
        return p.parse_embeddings(body, d)

    name, route = await plan(svc, call, req.model)
    vectors = await with_targets(svc, call, name, route, attempt)
    call.usage = Usage.of(vectors.prompt_tokens, 0)
    as_b64 = req.encoding_format == "base64"
    data = [Embedding(i, _b64(v) if as_b64 else v) for i, v in enumerate(vectors.vectors)]
    return EmbeddingList(data, req.model, EmbeddingUsage(vectors.prompt_tokens, vectors.prompt_tokens))


def _b64(vec: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
