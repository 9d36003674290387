"""The provider contract: what a backend translation module exposes, and what it may not do.

A provider does no I/O and imports no aiohttp: it turns OpenAI wire structs into an
UpstreamRequest, and the backend's bytes back into OpenAI structs or provider-neutral stream
events (wire.StreamEvent). Everything that touches the network lives in upstream.py/gateway.py.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from litegate.config import Deployment
from litegate.errors import GatewayError
from litegate.wire import (
    ChatCompletion,
    ChatRequest,
    CompletionRequest,
    EmbeddingsRequest,
    StreamEvent,
    TextCompletion,
    Usage,
    UsageEvent,
    Vectors,
)

Framing = Literal["sse", "ndjson"]


_TIGHTEN_BELOW = 1 << 16


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # orjson.dumps hands back a small body inside an allocation of at least 4 KB, and a stream keeps
        # its request body until it ends: 1,000 held streams held 4 MB of slack. A copy is exact-size.
        if len(self.body) < _TIGHTEN_BELOW and type(self.body) is bytes:
            object.__setattr__(self, "body", bytes(memoryview(self.body)))


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """A client's own request on a face whose API some backends speak themselves (pass-through).

    It travels from the face to the core beside the translated ChatRequest; an attempt on a
    deployment whose provider has a `passthrough` row for `face` sends this instead."""

    face: str  # the Provider.passthrough key: a face's name, or "<face>.<call>" for its other calls
    body: bytes  # the client's body as it came (or as the face rewrote it)
    model: str = ""  # the client's model name, given back in answers
    path: str = ""  # the endpoint, for a face with several (Ollama's /api/chat, /api/generate, ...)
    headers: Mapping[str, str] = field(default_factory=dict)  # the client's own
    method: str = "POST"
    required: str | None = None  # set: only a pass-through can answer, and this says why (Ollama FIM)


def _always(d: Deployment) -> bool:
    return True


def _as_is(body: bytes, d: Deployment, native: NativeRequest) -> tuple[bytes, Usage | None]:
    return body, None


@dataclass(frozen=True, slots=True)
class Passthrough:
    """How a provider takes one face's requests untranslated: one row of Provider.passthrough."""

    build: Callable[[NativeRequest, Deployment], UpstreamRequest]
    # The backend's frames -> frames ready for the client (bytes) and then one UsageEvent; an error
    # frame raises its GatewayError. None: this call is only ever answered whole.
    relay: Callable[[AsyncIterator[bytes], Deployment, NativeRequest], AsyncIterator[bytes | UsageEvent]] | None = None
    # A whole reply -> the body for the client, and its usage when it says.
    reply: Callable[[bytes, Deployment, NativeRequest], tuple[bytes, Usage | None]] = _as_is
    serves: Callable[[Deployment], bool] = _always  # e.g. only deployments flagged responses_api


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    framing: Framing
    default_api_base: str
    # True when the backend cannot fetch http(s) image URLs itself: the gateway inlines them first.
    inline_image_urls: bool
    # memo: what earlier replies asked to remember per tool-call id (ToolCallDelta.extra /
    # ChatCompletion.memo), e.g. Gemini thought signatures; read-only, may be empty.
    build_chat: Callable[[ChatRequest, Deployment, Mapping[str, dict]], UpstreamRequest]
    parse_chat: Callable[[bytes, Deployment], ChatCompletion]
    parse_chat_stream: Callable[[AsyncIterator[bytes], Deployment], AsyncIterator[StreamEvent]]
    parse_error: Callable[[int, bytes, Mapping[str, str]], GatewayError]
    build_embeddings: Callable[[EmbeddingsRequest, Deployment], UpstreamRequest] | None = None
    parse_embeddings: Callable[[bytes, Deployment], Vectors] | None = None
    build_completion: Callable[[CompletionRequest, Deployment], UpstreamRequest] | None = None
    parse_completion: Callable[[bytes, Deployment], TextCompletion] | None = None
    parse_completion_stream: Callable[[AsyncIterator[bytes], Deployment], AsyncIterator[StreamEvent]] | None = None
    # The backend's own prompt count for a chat request (Anthropic's count_tokens face asks), when it has one.
    build_count_tokens: Callable[[ChatRequest, Deployment, Mapping[str, dict]], UpstreamRequest] | None = None
    parse_count_tokens: Callable[[bytes], int | None] | None = None
    # Where the backend lists its loaded models (GET, relative to api_base), and how to read it:
    # parse_loaded(body) -> [{"name", "size", "size_vram", "expires_at", "context_length"}].
    loaded_path: str = ""
    parse_loaded: Callable[[bytes], list[dict[str, Any]]] | None = None
    # The name a configured model has in that list (Ollama lists `llama3` as `llama3:latest`).
    loaded_name: Callable[[str], str] = str
    # Faces whose requests this provider takes untranslated, keyed by NativeRequest.face.
    passthrough: Mapping[str, Passthrough] = field(default_factory=dict)
    # The context window a deployment gets when config names none: the vendor's usual size, or the
    # backend's default for `context_option`, the deployment option that sets it (and cuts silently).
    context_window: int = 0
    context_option: str = ""
    vision: bool = False  # its chat models usually take images (a guess for model cards)


_ID_ALPHABET = string.ascii_letters + string.digits


def new_tool_call_id() -> str:
    """`call_` + 24 random alphanumerics, the shape OpenAI clients expect (mapping.md §2)."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def api_base(target: Deployment, default: str) -> str:
    return (target.api_base or default).rstrip("/")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` / `retry-after` (seconds form only; dates are ignored)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def event_type(payload: bytes, unknown: bytes = b"unknown") -> bytes:
    """A JSON event's `type`, for its SSE `event:` line; APIs that name their events put it first
    (`{"type":"…",`), so most frames need no parse."""
    if payload.startswith(b'{"type":"'):
        end = payload.find(b'"', 9)
        if end > 9:
            return payload[9:end]
    try:
        kind = orjson.loads(payload).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return unknown
    return kind.encode() if isinstance(kind, str) else unknown


def error_text(body: bytes, *paths: tuple[str, ...]) -> str:
    """Best-effort message from a backend error body: first string found at one of `paths`."""
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return text[:500] or "empty error body"
    for path in paths:
        node = doc
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            return node
    return str(doc)[:500]
