"""Ollama's own API passed through: requests that came in on the Ollama face go to an Ollama
deployment as the client wrote them (only the model renamed, the deployment's options and
keep_alive filled in where the client set none), and its lines go back as they came. Pure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from litegate.config import Deployment
from litegate.errors import StreamInterrupted, UpstreamError
from litegate.providers.base import NativeRequest, UpstreamRequest, api_base
from litegate.providers.ollama.chat import DEFAULT_API_BASE, _JSON, _decode, _gen_line, _usage
from litegate.wire import Usage, UsageEvent


def build_native(native: NativeRequest, target: Deployment) -> UpstreamRequest:
    """The client's own /api/chat or /api/generate body: the model renamed, the deployment's options and
    keep_alive filled in where the client set none (the client's values win), nothing else touched."""
    doc = orjson.loads(native.body)
    doc["model"] = target.model
    if target.options:
        doc["options"] = {**target.options, **(doc.get("options") or {})}
    if target.keep_alive is not None and doc.get("keep_alive") is None:
        doc["keep_alive"] = target.keep_alive
    return UpstreamRequest("POST", api_base(target, DEFAULT_API_BASE) + native.path, orjson.dumps(doc), _JSON)


def _renamer(target: Deployment, native: NativeRequest):
    """Ollama names its own model first on every line; the client sees the name it asked for, as on
    every other path. A byte splice on that known prefix, not a parse per line."""
    theirs = b'{"model":' + orjson.dumps(target.model) + b","
    ours = b'{"model":' + orjson.dumps(native.model) + b","
    cut = len(theirs)
    return lambda line: ours + line[cut:] if line.startswith(theirs) else line


def _done_usage(line: bytes, target: Deployment) -> Usage:
    done = _decode(_gen_line, line, target)
    if done.error:
        raise UpstreamError(f"deployment {target.id}: {done.error}")
    return _usage(done)


async def relay_native(frames: AsyncIterator[bytes], target: Deployment,
                        native: NativeRequest) -> AsyncIterator[bytes | UsageEvent]:
    """The stream's lines as they came, then the done line's counts; an error line ends it."""
    rename = _renamer(target, native)
    async for frame in frames:
        if frame[:1] != b"{" or frame.rstrip()[-1:] != b"}":  # relayed as is, so at least a JSON object
            raise UpstreamError(f"deployment {target.id} sent a line that is not Ollama's format")
        if frame.startswith(b'{"error"'):
            raise StreamInterrupted(f"Ollama error mid-stream: {orjson.loads(frame).get('error')}")
        if b'"done":true' in frame or b'"done": true' in frame:
            usage = _done_usage(frame, target)
            yield rename(frame) + b"\n"
            yield UsageEvent(usage)
            return
        yield rename(frame) + b"\n"
    raise StreamInterrupted(f"deployment {target.id}: Ollama stream ended before its done line")


def reply_native(body: bytes, target: Deployment, native: NativeRequest) -> tuple[bytes, Usage]:
    return _renamer(target, native)(body), _done_usage(body, target)


def build_api(native: NativeRequest, target: Deployment) -> UpstreamRequest:
    """The rest of Ollama's API (show, and pull, push, create, copy, delete for admins) as the face wrote it."""
    return UpstreamRequest(native.method, api_base(target, DEFAULT_API_BASE) + native.path, native.body, _JSON)


async def relay_lines(frames: AsyncIterator[bytes], target: Deployment, native: NativeRequest) -> AsyncIterator[bytes]:
    async for frame in frames:
        yield frame + b"\n"
