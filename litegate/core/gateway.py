"""The one use case every face shares: answer a planned request with the model's events.

`chat_events` is the straight path: the plan's attempts (retries and fallbacks before the first
event), or the server-side tool loop when the plan gives the model server tools; provider state
riding on tool calls is remembered on the way, and the usage the answer reports lands on the
Call. `chat` is the same answer whole. Faces turn either into their own API's frames; the HTTP
edge adds keep-alives while an answer is slow. A face whose API some backends speak themselves
also hands over the client's own request (providers.NativeRequest): per attempt, a deployment
with a `Provider.passthrough` row for that face gets it untranslated. Completions and embeddings
are the same walk with other provider functions.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, aclosing

import msgspec
from msgspec import UNSET

from litegate import upstream
from litegate.config import Config, Deployment, Timeouts
from litegate.core import attempts
from litegate.core.events import Aggregator
from litegate.core.services import Call, Plan, Services
from litegate.errors import BadRequest
from litegate.providers import PROVIDERS, NativeRequest, Passthrough, Provider, UpstreamRequest, Vectors
from litegate.providers.messages import image_url_of
from litegate.tools import loop
from litegate.tools.run import Kit
from litegate.wire import (
    ChatCompletion, ChatRequest, CompletionRequest, ContentPart, EmbeddingsRequest, ImageURL, StreamEvent,
    StreamOptions, TextCompletion, ToolCallDelta, Usage, UsageEvent,
)


# ---------------------------------------------------------------- chat
def chat_events(svc: Services, call: Call, plan: Plan, req: ChatRequest,
                native: NativeRequest | None = None) -> AsyncIterator[StreamEvent | bytes]:
    """Every event of the answer, streamed; the caller must close it (aclosing) if it stops early.

    With `native`, an attempt on a deployment whose provider passes that face's requests through
    sends the client's own request, and the backend's frames come back as bytes ready for the
    client (then one UsageEvent); any other deployment answers `req` as events."""
    if plan.server_tools and not (native and native.required):  # the tool loop translates
        return _remembered(svc, call, _looped(svc, call, plan, req))
    return _remembered(svc, call, _model_events(svc, call, plan, req, native))


async def chat(svc: Services, call: Call, plan: Plan, req: ChatRequest,
               native: NativeRequest | None = None) -> ChatCompletion | bytes:
    """The whole answer (one upstream request unless server tools make it a loop): a ChatCompletion,
    or a pass-through's own reply body."""
    if plan.server_tools and not (native and native.required):
        agg = Aggregator()
        await replay(svc, call, plan, req, agg.feed)
        return msgspec.structs.replace(agg.result(req.model), memo=UNSET)
    face = native.face if native else None

    def parse(p: Provider, body: bytes, d: Deployment) -> ChatCompletion | tuple[bytes, Usage | None]:
        row = passthrough(d, face)
        return row.reply(body, d, native) if row else p.parse_chat(body, d)

    result = await attempts.request(svc, call, plan, _builder(svc, call, req, native), parse)
    if isinstance(result, tuple):
        body, call.usage = result
        return body
    for key, value in (result.memo or {}).items():
        svc.memo.put(key, value)
    call.usage = result.usage if result.usage is not UNSET else None
    return msgspec.structs.replace(result, model=req.model, memo=UNSET)


async def replay(svc: Services, call: Call, plan: Plan, req: ChatRequest,
                 feed: Callable[[StreamEvent], object]) -> None:
    """The answer, event by event, into a builder: a whole reply made by the tool loop, or one that shows
    what only the events carry (its searches). The loop reads each round as a stream, so the backend is
    asked for one (a non-streaming body is no SSE: every backend but Ollama's would read as empty)."""
    streamed = msgspec.structs.replace(req, stream=True, stream_options=StreamOptions(include_usage=True))
    async with aclosing(chat_events(svc, call, plan, streamed)) as events:
        async for ev in events:
            feed(ev)


def _model_events(svc: Services, call: Call, plan: Plan, req: ChatRequest,
                  native: NativeRequest | None = None) -> AsyncIterator[StreamEvent | bytes]:
    """One model call, streamed, with retries and fallbacks until its first event."""
    face = native.face if native else None

    def parse(p: Provider, frames: AsyncIterator[bytes], d: Deployment) -> AsyncIterator:
        row = passthrough(d, face)
        return row.relay(frames, d, native) if row else p.parse_chat_stream(frames, d)

    return attempts.stream(svc, call, plan, _builder(svc, call, req, native), parse)


def _builder(svc: Services, call: Call, req: ChatRequest, native: NativeRequest | None):
    images: dict[str, str] = {}
    face = native.face if native else None

    async def build(d: Deployment, p: Provider) -> UpstreamRequest:
        row = passthrough(d, face)
        if row is not None:
            return row.build(native, d)
        if native is not None and native.required:
            raise BadRequest(f"{native.required}; '{d.name}' is a {p.name} model", param="model")
        return p.build_chat(await _prepared(svc, call, _clamped(req, d), p, images), d, svc.memo)

    return build


def _looped(svc: Services, call: Call, plan: Plan, req: ChatRequest) -> AsyncIterator[StreamEvent]:
    ws = call.cfg.web_search
    kit = Kit(session=svc.session, fetcher=svc.fetcher_for(call.cfg.fetch_url.allow_private), cfg=call.cfg,
              cache=svc.search_cache, allow_search=lambda: svc.limits.allow_search(
                  call.key, call.admitted.searches_per_day if call.admitted else None,
                  ws.searches_per_day if ws else None),
              count=lambda tool, outcome: svc.metrics.inc("litegate_search_calls_total",
                                                          (("tool", tool), ("outcome", outcome))))

    def counted(n: int) -> None:
        call.server_tool_calls += n

    return loop.run(loop.expand_history(req, svc.memo.get), plan.server_tools,
                    call_model=lambda r: _model_events(svc, call, plan, r), kit=kit, remember=svc.memo.merge,
                    max_rounds=ws.max_rounds if ws else 4, on_tool_calls=counted)


async def _remembered(svc: Services, call: Call, events: AsyncIterator) -> AsyncIterator:
    """Keep provider state riding on tool calls, and the answer's usage, as the events pass."""
    try:
        async for ev in events:
            t = type(ev)
            if t is ToolCallDelta:
                if ev.extra and ev.id:
                    svc.memo.merge(ev.id, ev.extra)
            elif t is UsageEvent:
                call.usage = ev.usage
            yield ev
    finally:
        await events.aclose()


def _clamped(req: ChatRequest, d: Deployment) -> ChatRequest:
    """A client's output limit cut to what the deployment can produce (Claude Code asks 32k-64k)."""
    limit, asked = d.max_output_tokens, req.max_output
    if limit is None or asked is None or asked <= limit:
        return req
    return msgspec.structs.replace(req, max_tokens=limit,
                                   max_completion_tokens=limit if req.max_completion_tokens is not None else None)


# ---------------------------------------------------------------- pass-through
def passthrough(d: Deployment, face: str | None) -> Passthrough | None:
    """The row by which `d` takes `face`'s requests untranslated, if its provider has one that serves it."""
    row = PROVIDERS[d.provider].passthrough.get(face) if face else None
    return row if row is not None and row.serves(d) else None


def natively(cfg: Config, name: str, face: str) -> bool:
    """Every deployment `name` can reach (fallbacks included) takes `face`'s requests untranslated."""
    name = cfg.resolve_name(name)
    groups = cfg.groups()
    if name not in groups:
        return False  # unknown (the plan says so) or a virtual model: its rules decide later
    return all(passthrough(d, face) for n in (name, *cfg.router.fallbacks.get(name, ())) for d in groups.get(n, ()))


async def count_tokens(svc: Services, call: Call, plan: Plan, req: ChatRequest, native: NativeRequest,
                       estimate: int) -> int:
    """The backend's own count where it has one: a pass-through row for the count (Anthropic's own
    count_tokens) or the provider's counter of the translated request (Gemini's countTokens); else the
    face's estimate, without taking a slot (a count must not queue behind a local model's generations)."""
    first = call.cfg.groups()[plan.model][0]
    if passthrough(first, native.face) is None and PROVIDERS[first.provider].build_count_tokens is None:
        return estimate
    images: dict[str, str] = {}

    async def attempt(d: Deployment, p: Provider) -> int:
        row = passthrough(d, native.face)
        if row is not None:
            ureq = row.build(native, d)
        elif p.build_count_tokens is not None and p.parse_count_tokens is not None:
            ureq = p.build_count_tokens(await _prepared(svc, call, req, p, images), d, svc.memo)
        else:
            return estimate
        body = await call.waiting(upstream.send(svc.pool, ureq, d.timeouts, p.parse_error, d.id))
        if row is not None:
            counted = row.reply(body, d, native)[1]
            n = counted.prompt_tokens if counted is not None else None
        else:
            n = p.parse_count_tokens(body)
        return n if n is not None else estimate

    return await attempts.walk(svc, call, plan, attempt)


async def relayed(svc: Services, d: Deployment, native: NativeRequest, stack: AsyncExitStack | None = None,
                  timeouts: Timeouts | None = None) -> bytes | AsyncIterator[bytes | UsageEvent] | None:
    """One pass-through to one deployment outside any plan (Ollama's load, show, model management): its
    reply, or its relayed stream when `stack` holds the connection; None when `d` takes no such request."""
    row, p = passthrough(d, native.face), PROVIDERS[d.provider]
    if row is None:
        return None
    ureq, timeouts = row.build(native, d), timeouts or d.timeouts
    if stack is None:
        return row.reply(await upstream.send(svc.pool, ureq, timeouts, p.parse_error, d.id), d, native)[0]
    frames = await stack.enter_async_context(upstream.open_stream(svc.pool, ureq, timeouts, p.parse_error,
                                                                  d.id, p.framing))
    return row.relay(frames, d, native)


# ---------------------------------------------------------------- images
async def _prepared(svc: Services, call: Call, req: ChatRequest, p: Provider, images: dict[str, str]) -> ChatRequest:
    """Replace http(s) image URLs by data URIs for backends that cannot fetch them."""
    if not p.inline_image_urls or not any(
            isinstance(m.content, list) and any(_remote(part) for part in m.content) for m in req.messages):
        return req
    messages = list(req.messages)
    for i, m in enumerate(messages):
        if isinstance(m.content, list) and any(_remote(part) for part in m.content):
            parts = [await _inline(svc, call, part, f"messages[{i}].content[{j}].image_url", images)
                     if _remote(part) else part for j, part in enumerate(m.content)]
            messages[i] = msgspec.structs.replace(m, content=parts)
    return msgspec.structs.replace(req, messages=messages)


def _remote(part: ContentPart) -> bool:
    url = image_url_of(part)
    return url is not None and not url.startswith("data:")


async def _inline(svc: Services, call: Call, part: ContentPart, where: str, images: dict[str, str]) -> ContentPart:
    url = image_url_of(part) or ""
    if url not in images:
        cfg = call.cfg.images
        try:
            content_type, body = await call.waiting(upstream.fetch(
                svc.fetcher_for(cfg.allow_private), url, max_bytes=int(cfg.max_mb * (1 << 20)),
                timeout_s=cfg.timeout_s, allow_private=cfg.allow_private))
        except upstream.FetchRefused as e:
            raise BadRequest(f"{where}: cannot fetch image {url!r}: {e}", param=where) from None
        mime, _ = upstream.media_type(content_type)
        if not mime.startswith("image/"):
            raise BadRequest(f"{where}: {url!r} is not an image (content type {mime or 'unknown'})", param=where)
        images[url] = f"data:{mime};base64,{base64.b64encode(body).decode()}"
    detail = part.image_url.detail if isinstance(part.image_url, ImageURL) else None
    return msgspec.structs.replace(part, image_url=ImageURL(images[url], detail))


# ---------------------------------------------------------------- completions and embeddings
def _require(p: Provider, what: str, d: Deployment, fn):
    if fn is None:
        raise BadRequest(f"model '{d.name}' ({p.name}) does not support {what}", param="model")
    return fn


async def completion(svc: Services, call: Call, plan: Plan, req: CompletionRequest) -> TextCompletion:
    async def build(d: Deployment, p: Provider) -> UpstreamRequest:
        return _require(p, "/v1/completions", d, p.build_completion)(req, d)

    result = await attempts.request(svc, call, plan, build, lambda p, body, d: p.parse_completion(body, d))
    call.usage = result.usage or None
    return msgspec.structs.replace(result, model=req.model)


async def completion_events(svc: Services, call: Call, plan: Plan, req: CompletionRequest
                            ) -> AsyncIterator[StreamEvent]:
    async def build(d: Deployment, p: Provider) -> UpstreamRequest:
        return _require(p, "/v1/completions", d, p.build_completion)(req, d)

    parse = lambda p, frames, d: p.parse_completion_stream(frames, d)  # noqa: E731
    async with aclosing(attempts.stream(svc, call, plan, build, parse)) as events:
        async for ev in events:
            if type(ev) is UsageEvent:
                call.usage = ev.usage
            yield ev


async def embed(svc: Services, call: Call, plan: Plan, req: EmbeddingsRequest) -> Vectors:
    async def build(d: Deployment, p: Provider) -> UpstreamRequest:
        return _require(p, "embeddings", d, p.build_embeddings)(req, d)

    vectors = await attempts.request(svc, call, plan, build, lambda p, body, d: p.parse_embeddings(body, d))
    call.usage = Usage.of(vectors.prompt_tokens, 0)
    return vectors
