"""The OpenAI face: provider-neutral events -> Chat Completions and Completions output, streamed
or whole, and errors in OpenAI's shape (openai-chat.md; mapping.md §5, §5.5).

ChunkWriter is the streaming state machine every provider shares: one role chunk first, tool
calls with their own index and id + name on the first fragment, a separate finish chunk with
an empty delta, exactly one usage chunk when asked for, then `[DONE]`. After the first byte an
error is one `data: {"error": ...}` event, without `[DONE]`. Pure and per-request.
"""

from __future__ import annotations

import base64
import random
import struct
import time

import msgspec
from msgspec import UNSET

from litegate.core.events import completion_id
from litegate.errors import GatewayError
from litegate.surfaces.base import Surface
from litegate.wire import (
    ChatChunk, ChatCompletion, ChunkChoice, Citations, CompletionChoice, Delta, DeltaFunction, DeltaToolCall,
    Finish, ReasoningDelta, Started, StreamEvent, TextCompletion,
    TextDelta, ToolCallDelta, Usage, UsageEvent, Vectors, encoder,
)

# ---------------------------------------------------------------- this face's own shapes
class Model(msgspec.Struct):
    id: str
    created: int
    owned_by: str
    object: str = "model"


class ModelList(msgspec.Struct):
    data: list[Model]
    object: str = "list"


class Embedding(msgspec.Struct):
    index: int
    embedding: list[float] | str  # floats, or base64 of little-endian float32
    object: str = "embedding"


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingList(msgspec.Struct):
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    object: str = "list"


DONE = b"data: [DONE]\n\n"
SSE = "text/event-stream"
KEEPALIVE = b": keep-alive\n\n"


def sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


class _Writer:
    """What both OpenAI streams share: identity, the finish reason and usage seen, the closing frames."""

    media_type = SSE
    keepalive = KEEPALIVE
    __slots__ = ("id", "created", "model", "include_usage", "finish_reason", "usage")

    def __init__(self, id: str, model: str, include_usage: bool) -> None:
        self.id, self.created, self.model, self.include_usage = id, int(time.time()), model, include_usage
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def _note(self, ev: StreamEvent) -> None:
        if type(ev) is Finish:
            self.finish_reason = ev.reason or self.finish_reason
        elif type(ev) is UsageEvent:
            self.usage = ev.usage

    def _close(self, last: bytes, usage_chunk) -> list[bytes]:
        """The finish chunk, exactly one usage chunk when asked for, then [DONE]."""
        out = [last]
        if self.include_usage:
            usage = self.usage or Usage()
            out.append(sse(encoder.encode(usage_chunk(self.id, self.created, self.model, [], usage=usage))))
        out.append(DONE)
        return out

    def fail(self, err: GatewayError) -> list[bytes]:
        return [sse(err.to_json())]


class ChunkWriter(_Writer):
    """Chat Completions chunks: feeds StreamEvents, returns SSE bytes; `finish()` closes the stream."""

    __slots__ = ("reasoning", "role_sent", "saw_tool")

    def __init__(self, model: str, *, include_usage: bool, reasoning: bool = True, id: str | None = None) -> None:
        super().__init__(id or completion_id(), model, include_usage)
        self.reasoning = reasoning
        self.role_sent = False
        self.saw_tool = False

    def _chunk(self, delta: Delta, finish: str | None = None) -> bytes:
        chunk = ChatChunk(self.id, self.created, self.model, [ChunkChoice(delta, 0, finish)],
                          usage=None if self.include_usage else UNSET)
        return sse(encoder.encode(chunk))

    def _role(self, delta: Delta) -> bytes:
        """The chunk, with the role on the first delta as OpenAI does (content "" when it has none)."""
        if not self.role_sent:
            self.role_sent = True
            delta.role = "assistant"
            if delta.content is UNSET and delta.tool_calls is UNSET:
                delta.content = ""
        return self._chunk(delta)

    def feed(self, ev: StreamEvent) -> list[bytes]:
        t = type(ev)
        if t is TextDelta:
            return [self._role(Delta(content=ev.text))] if ev.text else []
        if t is ToolCallDelta:
            return [self._role(Delta(tool_calls=[self._tool_delta(ev)]))]
        if t is ReasoningDelta:
            return [self._role(Delta(reasoning_content=ev.text))] if ev.text and self.reasoning else []
        if t is Started:
            return [] if self.role_sent else [self._role(Delta())]
        if t is Citations:
            return [self._role(Delta(annotations=ev.annotations))]
        self._note(ev)
        return []

    def _tool_delta(self, ev: ToolCallDelta) -> DeltaToolCall:
        self.saw_tool = True
        if ev.id is not None or ev.name is not None:
            return DeltaToolCall(ev.index, DeltaFunction(name=ev.name or "", arguments=ev.arguments),
                                 id=ev.id or UNSET, type="function")
        return DeltaToolCall(ev.index, DeltaFunction(arguments=ev.arguments))

    def final_reason(self) -> str:
        if self.saw_tool and self.finish_reason in (None, "stop"):
            return "tool_calls"
        return self.finish_reason or "stop"

    def finish(self) -> list[bytes]:
        opening = [] if self.role_sent else [self._role(Delta())]
        return opening + self._close(self._chunk(Delta(), self.final_reason()), ChatChunk)


class CompletionWriter(_Writer):
    """Legacy /v1/completions streaming: `text_completion` chunks, usage chunk, `[DONE]`."""

    __slots__ = ()

    def __init__(self, model: str, *, include_usage: bool) -> None:
        super().__init__(self.new_id(), model, include_usage)

    @staticmethod
    def new_id() -> str:
        return f"cmpl-{random.getrandbits(128):032x}"

    def _chunk(self, text: str, finish: str | None = None) -> bytes:
        chunk = TextCompletion(self.id, self.created, self.model, [CompletionChoice(text, 0, finish)],
                               usage=None if self.include_usage else UNSET)
        return sse(encoder.encode(chunk))

    def feed(self, ev: StreamEvent) -> list[bytes]:
        if type(ev) is TextDelta:
            return [self._chunk(ev.text)] if ev.text else []
        self._note(ev)
        return []

    def finish(self) -> list[bytes]:
        return self._close(self._chunk("", self.finish_reason or "stop"), TextCompletion)


# ---------------------------------------------------------------- whole replies and errors
def chat_reply(result: ChatCompletion, model: str, *, reasoning: bool) -> ChatCompletion:
    """The reply as clients get it: our id and time, their model name, reasoning only if configured."""
    if not reasoning:
        for choice in result.choices:
            choice.message.reasoning_content = UNSET
    return msgspec.structs.replace(result, id=completion_id(), created=int(time.time()), model=model, memo=UNSET)


def text_reply(result: TextCompletion, model: str) -> TextCompletion:
    return msgspec.structs.replace(result, id=CompletionWriter.new_id(), created=int(time.time()), model=model)


def embeddings_reply(vectors: Vectors, model: str, encoding_format: str) -> EmbeddingList:
    as_b64 = encoding_format == "base64"
    data = [Embedding(i, _b64(v) if as_b64 else v) for i, v in enumerate(vectors.vectors)]
    return EmbeddingList(data, model, EmbeddingUsage(vectors.prompt_tokens, vectors.prompt_tokens))


def _b64(vec: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()


def render_error(err: GatewayError) -> tuple[int, bytes]:
    return err.status, err.to_json()


SURFACE = Surface("openai", render_error)
