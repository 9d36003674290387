"""Provider-neutral stream events -> OpenAI output, streamed or whole (mapping.md §5, §5.5).

ChunkWriter is the streaming state machine every provider shares: one role chunk first, tool
calls with their own index and id + name on the first fragment, a separate finish chunk with
an empty delta, exactly one usage chunk when asked for, then `[DONE]`. Aggregator builds a
non-streaming ChatCompletion from the same events. Both are pure and per-request.
"""

from __future__ import annotations

import os
import time

from msgspec import UNSET

from .wire import (
    Citations,
    Started,
    CompletionChoice,
    TextCompletion,
    ChatChunk,
    ChatCompletion,
    Choice,
    ChunkChoice,
    Delta,
    DeltaFunction,
    DeltaToolCall,
    Finish,
    OutFunction,
    OutMessage,
    OutToolCall,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
    encoder,
)

DONE = b"data: [DONE]\n\n"


def completion_id() -> str:
    return "chatcmpl-" + os.urandom(16).hex()


def sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


class ChunkWriter:
    """Feeds StreamEvents, returns SSE bytes. `finish()` closes the stream correctly."""

    __slots__ = ("id", "created", "model", "include_usage", "reasoning", "role_sent", "saw_tool",
                 "finish_reason", "usage")

    def __init__(self, model: str, *, include_usage: bool, reasoning: bool = True, id: str | None = None) -> None:
        self.id = id or completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.reasoning = reasoning
        self.role_sent = False
        self.saw_tool = False
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    new_id = staticmethod(completion_id)

    def _chunk(self, delta: Delta, finish: str | None = None) -> bytes:
        chunk = ChatChunk(self.id, self.created, self.model, [ChunkChoice(delta, 0, finish)],
                          usage=None if self.include_usage else UNSET)
        return sse(encoder.encode(chunk))

    def _role(self, out: list[bytes], delta: Delta) -> Delta:
        """Put the role on the first delta, as OpenAI does (with content "" when it has none)."""
        if self.role_sent:
            return delta
        self.role_sent = True
        delta.role = "assistant"
        if delta.content is UNSET and delta.tool_calls is UNSET:
            delta.content = ""
        return delta

    def feed(self, ev: StreamEvent) -> list[bytes]:
        out: list[bytes] = []
        if type(ev) is TextDelta:
            if ev.text:
                out.append(self._chunk(self._role(out, Delta(content=ev.text))))
        elif type(ev) is ToolCallDelta:
            out.append(self._chunk(self._role(out, Delta(tool_calls=[self._tool_delta(ev)]))))
        elif type(ev) is ReasoningDelta:
            if ev.text and self.reasoning:
                out.append(self._chunk(self._role(out, Delta(reasoning_content=ev.text))))
        elif type(ev) is Finish:
            if ev.reason:
                self.finish_reason = ev.reason
        elif type(ev) is UsageEvent:
            self.usage = ev.usage
        elif type(ev) is Started:
            if not self.role_sent:
                out.append(self.start())
        elif type(ev) is Citations:
            out.append(self._chunk(self._role(out, Delta(annotations=ev.annotations))))
        return out

    def _tool_delta(self, ev: ToolCallDelta) -> DeltaToolCall:
        self.saw_tool = True
        if ev.id is not None or ev.name is not None:
            return DeltaToolCall(ev.index, DeltaFunction(name=ev.name or "", arguments=ev.arguments),
                                 id=ev.id or UNSET, type="function")
        return DeltaToolCall(ev.index, DeltaFunction(arguments=ev.arguments))

    def start(self) -> bytes:
        """The role chunk, sent early when a client must see the stream begin (e.g. a tool loop)."""
        return self._chunk(self._role([], Delta()))

    @property
    def started(self) -> bool:
        return self.role_sent

    def final_reason(self) -> str:
        if self.finish_reason == "stop" and self.saw_tool:
            return "tool_calls"
        return self.finish_reason or ("tool_calls" if self.saw_tool else "stop")

    def finish(self) -> list[bytes]:
        out = []
        if not self.role_sent:
            out.append(self.start())
        out.append(self._chunk(Delta(), self.final_reason()))
        if self.include_usage:
            usage = self.usage or Usage()
            out.append(sse(encoder.encode(ChatChunk(self.id, self.created, self.model, [], usage=usage))))
        out.append(DONE)
        return out


class Aggregator:
    """Collects StreamEvents into one ChatCompletion (non-streaming client, streaming source)."""

    def __init__(self, *, reasoning: bool = True) -> None:
        self.reasoning = reasoning
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.calls: dict[int, dict] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.annotations: list = []

    def feed(self, ev: StreamEvent) -> None:
        if type(ev) is TextDelta:
            self.text.append(ev.text)
        elif type(ev) is ReasoningDelta:
            self.thinking.append(ev.text)
        elif type(ev) is ToolCallDelta:
            call = self.calls.setdefault(ev.index, {"id": None, "name": "", "args": []})
            call["id"] = call["id"] or ev.id
            call["name"] = call["name"] or ev.name or ""
            call["args"].append(ev.arguments)
            if ev.extra:
                call["extra"] = ev.extra
        elif type(ev) is Finish:
            self.finish_reason = ev.reason or self.finish_reason
        elif type(ev) is UsageEvent:
            self.usage = ev.usage
        elif type(ev) is Citations:
            self.annotations.extend(ev.annotations)

    def result(self, model: str, id: str | None = None) -> ChatCompletion:
        calls = [OutToolCall(c["id"] or "", OutFunction(c["name"], "".join(c["args"]) or "{}"))
                 for _, c in sorted(self.calls.items())]
        text = "".join(self.text)
        msg = OutMessage(content=text or (None if calls else ""))
        if calls:
            msg.tool_calls = calls
        if self.thinking and self.reasoning:
            msg.reasoning_content = "".join(self.thinking)
        if self.annotations:
            msg.annotations = self.annotations
        reason = self.finish_reason or ("tool_calls" if calls else "stop")
        if reason == "stop" and calls:
            reason = "tool_calls"
        memo = {c["id"]: c["extra"] for c in self.calls.values() if c.get("extra") and c["id"]}
        return ChatCompletion(id or completion_id(), int(time.time()), model, [Choice(msg, reason)],
                              usage=self.usage or Usage(), memo=memo or UNSET)


class CompletionWriter:
    """Legacy /v1/completions streaming: `text_completion` chunks, usage chunk, `[DONE]`."""

    __slots__ = ("id", "created", "model", "include_usage", "finish_reason", "usage")

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.id = self.new_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    @staticmethod
    def new_id() -> str:
        return "cmpl-" + os.urandom(16).hex()

    def _chunk(self, text: str, finish: str | None = None) -> bytes:
        chunk = TextCompletion(self.id, self.created, self.model, [CompletionChoice(text, 0, finish)],
                               usage=None if self.include_usage else UNSET)
        return sse(encoder.encode(chunk))

    def feed(self, ev: StreamEvent) -> list[bytes]:
        if type(ev) is TextDelta and ev.text:
            return [self._chunk(ev.text)]
        if type(ev) is Finish and ev.reason:
            self.finish_reason = ev.reason
        elif type(ev) is UsageEvent:
            self.usage = ev.usage
        return []

    def finish(self) -> list[bytes]:
        out = [self._chunk("", self.finish_reason or "stop")]
        if self.include_usage:
            out.append(sse(encoder.encode(TextCompletion(self.id, self.created, self.model, [],
                                                         usage=self.usage or Usage()))))
        out.append(DONE)
        return out
