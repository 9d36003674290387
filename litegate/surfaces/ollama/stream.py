"""StreamWriters for /api/chat and /api/generate: provider-neutral events in, NDJSON lines out.

Every line carries model, created_at, done and (chat) a message with role "assistant" and a
string content, because Zed's and OllamaKit's decoders require them (ollama.md §8.5). Tool calls
go out whole, one line for all of them, arguments as objects: chat fragments are buffered until
the answer finishes. The last line says done:true with done_reason and the six metrics; an
error after the first line is a last `{"error": …}` line and no done line (ollama-python raises
on it). NDJSON has no comment frame, so there is no keep-alive frame either. A backend that speaks
Ollama's API itself answers through the provider's pass-through row: its lines arrive ready (bytes)
and go out as they are, then its usage (a UsageEvent); the writer adds nothing after them.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from msgspec import UNSET, UnsetType

from litegate.core.events import ToolCalls
from litegate.errors import GatewayError
from litegate.wire import (
    Finish, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, Usage, UsageEvent,
)
from litegate.surfaces.base import json_object
from litegate.surfaces.ollama.timing import Stamp, Timing

MEDIA_TYPE = "application/x-ndjson"


class OutFunction(msgspec.Struct):
    name: str
    arguments: dict[str, Any]
    index: int


class OutCall(msgspec.Struct):
    id: str
    function: OutFunction


class OutMessage(msgspec.Struct):
    role: str = "assistant"
    content: str = ""
    thinking: str | UnsetType = UNSET
    tool_calls: list[OutCall] | UnsetType = UNSET


class Line(msgspec.Struct, kw_only=True):
    """A line built whole: /api/chat's carry `message`, /api/generate's `response` (and `thinking`)."""

    model: str
    created_at: str
    message: OutMessage | UnsetType = UNSET
    response: str | UnsetType = UNSET
    thinking: str | UnsetType = UNSET
    done: bool = False
    done_reason: str | UnsetType = UNSET
    total_duration: int | UnsetType = UNSET
    load_duration: int | UnsetType = UNSET
    prompt_eval_count: int | UnsetType = UNSET
    prompt_eval_duration: int | UnsetType = UNSET
    eval_count: int | UnsetType = UNSET
    eval_duration: int | UnsetType = UNSET


_encode = msgspec.json.Encoder().encode


def done_reason(finish_reason: str | None) -> str:
    """OpenAI finish_reason -> Ollama done_reason: "stop" also after tool calls (mapping.md §7.2)."""
    return "length" if finish_reason == "length" else "stop"


def final_line(timing: Timing, usage: Usage | None, finish_reason: str | None, **fields: Any) -> bytes:
    """The done line: the answer's fields, then done_reason and the metrics (all six, as integers)."""
    return _encode(Line(**fields, done=True, done_reason=done_reason(finish_reason), **timing.metrics(usage))) + b"\n"


def error_line(err: GatewayError) -> bytes:
    return orjson.dumps({"error": err.message}) + b"\n"


_CHAT_TEXT = b'","message":{"role":"assistant","content":'
_CHAT_THINKING = b'","message":{"role":"assistant","content":"","thinking":'
_CHAT_END = b'},"done":false}\n'
_GEN_TEXT = b'","response":'
_GEN_THINKING = b'","response":"","thinking":'
_GEN_END = b',"done":false}\n'


class _Writer:
    __slots__ = ("model", "timing", "stamp", "usage", "finish_reason", "native", "head")

    media_type = MEDIA_TYPE
    keepalive = b""

    def __init__(self, model: str, timing: Timing | None = None) -> None:
        self.model = model
        self.timing = timing or Timing()
        self.stamp = Stamp()
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.native = False  # a real Ollama's own lines go out (done line included): finish() adds nothing
        # Text lines are most of a stream: they are spliced from bytes, not built and encoded as structs.
        self.head = b'{"model":' + orjson.dumps(model) + b',"created_at":"'

    def _spliced(self, middle: bytes, text: str, tail: bytes) -> bytes:
        timing = self.timing
        if timing.first is None:
            timing.mark()
        return self.head + self.stamp.raw() + middle + orjson.dumps(text) + tail

    def relay(self, line: bytes) -> list[bytes]:
        self.native = True
        return [line]

    # what the two endpoints' text and thinking lines look like around the spliced text
    _TEXT = _THINKING = _END = b""

    def feed(self, ev: StreamEvent | bytes) -> list[bytes]:
        kind = type(ev)
        if kind is TextDelta:
            return [self._spliced(self._TEXT, ev.text, self._END)] if ev.text else []
        if kind is bytes:
            return self.relay(ev)
        if kind is ReasoningDelta:
            return [self._spliced(self._THINKING, ev.text, self._END)] if ev.text else []
        if kind is ToolCallDelta:
            self._call(ev)
            return []
        if kind is Finish:
            if ev.reason:
                self.finish_reason = ev.reason
            return self._flush_calls()
        if kind is UsageEvent:
            self.usage = ev.usage
        return []  # Started: NDJSON has no role line; Citations: Ollama has no place for them

    def _call(self, ev: ToolCallDelta) -> None:
        """/api/generate declares no tools, so there are no calls to pass on."""

    def _flush_calls(self) -> list[bytes]:
        return []

    def fail(self, err: GatewayError) -> list[bytes]:
        return [error_line(err)]


class ChatStreamWriter(_Writer):
    """/api/chat, streamed."""

    __slots__ = ("calls",)
    _TEXT, _THINKING, _END = _CHAT_TEXT, _CHAT_THINKING, _CHAT_END

    def __init__(self, model: str, timing: Timing | None = None) -> None:
        super().__init__(model, timing)
        self.calls = ToolCalls()

    def _line(self, message: OutMessage) -> bytes:
        self.timing.mark()
        return _encode(Line(model=self.model, created_at=self.stamp(), message=message)) + b"\n"

    def _call(self, ev: ToolCallDelta) -> None:
        self.calls.add(ev)

    def _flush_calls(self) -> list[bytes]:
        """Every buffered call, whole, in one line (as Ollama sends them)."""
        if not self.calls:
            return []
        calls = [OutCall(c.id or f"call_{n}", OutFunction(c.name, json_object("".join(c.parts)) or {}, n))
                 for n, c in enumerate(self.calls.in_order())]
        self.calls = ToolCalls()
        return [self._line(OutMessage(tool_calls=calls))]

    def finish(self) -> list[bytes]:
        if self.native:
            return []
        return self._flush_calls() + [final_line(self.timing, self.usage, self.finish_reason, model=self.model,
                                                 created_at=self.stamp(), message=OutMessage())]


class GenerateStreamWriter(_Writer):
    """/api/generate, streamed: `response` fragments, `thinking` when the model reasons."""

    __slots__ = ()
    _TEXT, _THINKING, _END = _GEN_TEXT, _GEN_THINKING, _GEN_END

    def finish(self) -> list[bytes]:
        if self.native:
            return []
        return [final_line(self.timing, self.usage, self.finish_reason, model=self.model, created_at=self.stamp(),
                           response="")]


class RelayWriter:
    """A real Ollama's NDJSON progress lines (/api/pull, /api/create, /api/push), passed on as they come
    (ready lines, from the provider's pass-through row)."""

    __slots__ = ("usage",)

    media_type = MEDIA_TYPE
    keepalive = b""

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def feed(self, line: bytes) -> list[bytes]:
        return [line]

    def finish(self) -> list[bytes]:
        return []

    def fail(self, err: GatewayError) -> list[bytes]:
        return [error_line(err)]
