"""The surface contract: what an inbound face (a client API litegate serves) provides.

A surface is pure translation, like a provider seen from the other side. It does no I/O and
imports no aiohttp. It owns three things for its API:
- requests in: the client's body decoded into the internal chat form (`wire.ChatRequest`),
  every fault a `BadRequest` naming the field in the client's own terms;
- answers out: a `StreamWriter` that turns provider-neutral `wire.StreamEvent`s into this API's
  frames (SSE events or NDJSON lines), and a renderer for a whole reply;
- errors out: `render_error(err) -> (status, body)` in this API's error shape.

The HTTP edge (litegate/http/) decodes, plans, runs the core and writes what the surface
returns; it adds keep-alive frames itself (`StreamWriter.keepalive`) while an answer is slow.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import orjson

from litegate.errors import BadRequest, GatewayError
from litegate.wire import StreamEvent, Usage


class StreamWriter(Protocol):
    """Per-request state machine: StreamEvents in, this API's frames out."""

    media_type: str  # "text/event-stream" or "application/x-ndjson"
    keepalive: bytes  # a frame that means "still working" (b"" when the API has none)
    usage: Usage | None  # what the answer used, read by accounting when the stream ends

    def feed(self, ev: StreamEvent) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def fail(self, err: GatewayError) -> list[bytes]:
        """Frames that report an error after the first byte and end the stream."""
        ...


@dataclass(frozen=True, slots=True)
class Surface:
    """One row of the SURFACES table."""

    name: str  # recorded with each request ("openai", "anthropic", "responses", "ollama")
    render_error: Callable[[GatewayError], tuple[int, bytes]]  # (status, JSON body) in this API's shape
    # Added to "no key" refusals ({remote}: the client's address), for apps of this API that send none.
    missing_key_hint: str = ""


def decode(decoder, raw: bytes, what: str = "request body"):
    """Decode a JSON body with a msgspec decoder; faults become a BadRequest naming the JSON path."""
    if not raw.strip():
        raise BadRequest(f"{what} is empty; send a JSON object")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as e:
        text = str(e)
        if "`$." in text:
            param = text.rsplit("`$.", 1)[1].rstrip("`")
        elif "missing required field" in text and "`" in text:
            param = text.split("`")[1]
        else:
            param = None
        raise BadRequest(f"Invalid request: {text}", param=param) from None
    except msgspec.DecodeError as e:
        raise BadRequest(f"Invalid JSON body: {e}") from None


def json_object(text: str) -> dict[str, Any] | None:
    """A model's tool-call arguments as an object ("" counts as `{}`); None when they are not one."""
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


TOKEN_PREFIX = "lg1."


def token(data: bytes) -> str:
    """litegate's own opaque token for `data` (a reasoning text, a search snippet, its thinking mark):
    clients hand it back unchanged when they replay a conversation, and `untoken` reads it."""
    return TOKEN_PREFIX + base64.urlsafe_b64encode(data).decode().rstrip("=")


def untoken(text: str | None) -> bytes | None:
    """The data inside one of litegate's tokens; None for anyone else's, an empty or a damaged one."""
    if not text or not text.startswith(TOKEN_PREFIX):
        return None
    raw = text[len(TOKEN_PREFIX):]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        return None
