"""The Ollama face's answers: native pass-through to an Ollama model, translation to any other.

Each attempt of the plan decides for itself: an Ollama deployment gets the client's own body
(only the model renamed; options, keep_alive, raw, template, suffix, context all kept) and its
lines go back to the client as they came (only the model's name set back to the one the client
asked for); any other provider gets the translated ChatRequest and its
events are written by the face's writers. Retries, fallbacks, slots and cooldowns are the same
attempt walk every face uses (core.attempts). Model management (/api/pull, ...) is relayed to an
Ollama server for admin keys. Usage lands on the Call as on every other path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import msgspec
import orjson
from msgspec import UNSET

from litegate import upstream
from litegate.config import Config, Deployment, Timeouts
from litegate.core import attempts
from litegate.core.services import Call, Plan, Services
from litegate.errors import BadRequest, StreamInterrupted, UpstreamError
from litegate.http.ollama_catalog import api_base, first_deployment
from litegate.providers import PROVIDERS, Provider, UpstreamRequest
from litegate.surfaces.ollama.request import Inbound, native_body
from litegate.surfaces.ollama.stream import Native
from litegate.wire import ChatCompletion, ChatRequest, ToolCallDelta, Usage, UsageEvent

_JSON = {"content-type": "application/json"}
# Pulling a model downloads gigabytes: progress lines keep coming, the whole can take an hour.
_MANAGE_TIMEOUTS = Timeouts(connect_s=5, first_token_s=300, total_s=6 * 3600)


class _Counts(msgspec.Struct):
    prompt_eval_count: int = 0
    eval_count: int = 0
    error: str | None = None


_counts = msgspec.json.Decoder(_Counts)


def _usage(line: bytes, d: Deployment) -> Usage:
    try:
        c = _counts.decode(line)
    except msgspec.DecodeError:
        raise UpstreamError(f"deployment {d.id} sent a reply that is not Ollama's format") from None
    if c.error:
        raise UpstreamError(f"deployment {d.id}: {c.error}")
    return Usage.of(c.prompt_eval_count, c.eval_count)


def _builder(svc: Services, inbound: Inbound, req: ChatRequest):
    path = "/api/chat" if inbound.kind == "chat" else "/api/generate"

    async def build(d: Deployment, p: Provider) -> UpstreamRequest:
        if p.name == "ollama":
            return UpstreamRequest("POST", api_base(d) + path,
                                   native_body(inbound.raw, d.model, d.options, d.keep_alive), _JSON)
        if inbound.native_only:
            raise BadRequest(f"{inbound.native_only}; '{d.name}' is a {p.name} model", param="model")
        return p.build_chat(req, d, svc.memo)

    return build


def _renamer(client_model: str, d: Deployment):
    """Ollama names its own model first on every line; the client sees the name it asked for, as on
    every other path. A byte splice on that known prefix, not a parse per line."""
    theirs = b'{"model":' + orjson.dumps(d.model) + b","
    ours = b'{"model":' + orjson.dumps(client_model) + b","
    cut = len(theirs)

    def rename(line: bytes) -> bytes:
        return ours + line[cut:] if line.startswith(theirs) else line

    return rename


def _line_parser(client_model: str):
    async def lines(frames: AsyncIterator[bytes], d: Deployment) -> AsyncIterator[Native]:
        """A real Ollama's stream as it came, its done line carrying the counts; an error line ends it."""
        rename = _renamer(client_model, d)
        async for frame in frames:
            if frame[:1] != b"{" or frame.rstrip()[-1:] != b"}":  # relayed as is, so at least a JSON object
                raise UpstreamError(f"deployment {d.id} sent a line that is not Ollama's format")
            if frame.startswith(b'{"error"'):
                raise StreamInterrupted(f"Ollama error mid-stream: {orjson.loads(frame).get('error')}")
            if b'"done":true' in frame or b'"done": true' in frame:
                yield Native(rename(frame), _usage(frame, d))
                return
            yield Native(rename(frame))
        raise StreamInterrupted(f"deployment {d.id}: Ollama stream ended before its done line")

    return lines


def events(svc: Services, call: Call, plan: Plan, inbound: Inbound, req: ChatRequest) -> AsyncIterator:
    """The answer streamed: Native lines from an Ollama model, StreamEvents from any other."""

    native_lines = _line_parser(inbound.model)

    def parse(p: Provider):
        return native_lines if p.name == "ollama" else p.parse_chat_stream

    async def run() -> AsyncIterator:
        async with AsyncExitStack() as stack:
            async for ev in await attempts.stream(svc, call, plan, _builder(svc, inbound, req), parse, stack):
                kind = type(ev)
                if kind is Native:
                    if ev.usage is not None:
                        call.usage = ev.usage
                elif kind is UsageEvent:
                    call.usage = ev.usage
                elif kind is ToolCallDelta and ev.extra and ev.id:
                    svc.memo.merge(ev.id, ev.extra)  # e.g. a Gemini thought signature, for the next turn
                yield ev

    return run()


async def whole(svc: Services, call: Call, plan: Plan, inbound: Inbound, req: ChatRequest) -> bytes | ChatCompletion:
    """The answer whole: an Ollama model's own reply body, or another provider's ChatCompletion."""

    def parse(p: Provider, body: bytes, d: Deployment) -> bytes | ChatCompletion:
        if p.name == "ollama":
            call.usage = _usage(body, d)
            return _renamer(inbound.model, d)(body)
        result = p.parse_chat(body, d)
        for key, value in (result.memo or {}).items():
            svc.memo.put(key, value)
        call.usage = result.usage if result.usage is not UNSET else None
        return result

    return await attempts.request(svc, call, plan, _builder(svc, inbound, req), parse)


# ---------------------------------------------------------------- load / unload
def ollama_deployment(cfg: Config, name: str) -> Deployment | None:
    d = first_deployment(cfg, name)
    return d if d is not None and d.provider == "ollama" else None


async def load(svc: Services, cfg: Config, name: str, inbound: Inbound) -> bytes | None:
    """An empty chat/generate (load, or unload with keep_alive 0) reaches a local model's Ollama,
    so Open WebUI's unload really frees the memory; None when the model is not an Ollama one."""
    d = ollama_deployment(cfg, name)
    if d is None:
        return None
    path = "/api/chat" if inbound.kind == "chat" else "/api/generate"
    doc = orjson.loads(native_body(inbound.raw, d.model, {}, d.keep_alive))
    doc["stream"] = False
    ureq = UpstreamRequest("POST", api_base(d) + path, orjson.dumps(doc), _JSON)
    return await upstream.send(svc.pool, ureq, d.timeouts, PROVIDERS["ollama"].parse_error, d.id)


# ---------------------------------------------------------------- model management
def manage_target(cfg: Config, name: str) -> tuple[str, str | None]:
    """(Ollama base URL, the model's name there) for a management request about `name`: the Ollama
    that serves that litegate name, else the first Ollama in config with the name as Ollama's own."""
    d = ollama_deployment(cfg, name) if name else None
    if d is not None:
        return api_base(d), d.model
    for d in cfg.models:
        if d.provider == "ollama":
            return api_base(d), None
    raise BadRequest("no Ollama server is configured: model management goes to an Ollama backend")


def manage_request(method: str, base: str, path: str, raw: bytes, model: str | None) -> UpstreamRequest:
    body = raw
    if model is not None and raw.strip():
        doc = orjson.loads(raw)
        for field in ("model", "name"):
            if isinstance(doc, dict) and doc.get(field):
                doc[field] = model
        body = orjson.dumps(doc)
    return UpstreamRequest(method, base + path, body, _JSON)


async def manage_lines(svc: Services, ureq: UpstreamRequest, stack: AsyncExitStack) -> AsyncIterator[Native]:
    frames = await stack.enter_async_context(upstream.open_stream(
        svc.pool, ureq, _MANAGE_TIMEOUTS, PROVIDERS["ollama"].parse_error, "ollama", "ndjson"))

    async def relay() -> AsyncIterator[Native]:
        async for frame in frames:
            yield Native(frame)

    return relay()


async def manage_whole(svc: Services, ureq: UpstreamRequest) -> bytes:
    return await upstream.send(svc.pool, ureq, _MANAGE_TIMEOUTS, PROVIDERS["ollama"].parse_error, "ollama")
