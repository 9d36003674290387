"""Provider-neutral events gathered into whole things: tool calls from their fragments, and a
whole ChatCompletion from a stream of events (a non-streaming client of a streamed answer, and
the server-side tool loop). Pure and per-request.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET

from litegate.wire import (
    ChatCompletion, Choice, Citations, Finish, OutFunction, OutMessage, OutToolCall, ReasoningDelta, StreamEvent,
    TextDelta, ToolCallDelta, Usage, UsageEvent,
)


def completion_id() -> str:
    """Unique, not secret: the random module's generator, no system call."""
    return f"chatcmpl-{random.getrandbits(128):032x}"


@dataclass(slots=True)
class ToolCallParts:
    """One tool call assembled from its fragments: id and name from the first, arguments joined."""

    id: str | None = None
    name: str = ""
    parts: list[str] = field(default_factory=list)
    extra: dict[str, Any] | None = None

    @property
    def arguments(self) -> str:
        return "".join(self.parts) or "{}"


class ToolCalls:
    """Tool calls by index, as their fragments arrive."""

    __slots__ = ("by_index",)

    def __init__(self) -> None:
        self.by_index: dict[int, ToolCallParts] = {}

    def add(self, ev: ToolCallDelta) -> None:
        call = self.by_index.get(ev.index)
        if call is None:
            call = self.by_index[ev.index] = ToolCallParts()
        call.id = call.id or ev.id
        call.name = call.name or ev.name or ""
        call.parts.append(ev.arguments)
        if ev.extra:
            call.extra = {**(call.extra or {}), **ev.extra}

    def in_order(self) -> list[ToolCallParts]:
        return [c for _, c in sorted(self.by_index.items())]

    def __bool__(self) -> bool:
        return bool(self.by_index)


class Aggregator:
    """Collects StreamEvents into one ChatCompletion (non-streaming client, streaming source)."""

    def __init__(self, *, reasoning: bool = True) -> None:
        self.reasoning = reasoning
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.calls = ToolCalls()
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.annotations: list = []

    def feed(self, ev: StreamEvent) -> None:
        t = type(ev)
        if t is TextDelta:
            self.text.append(ev.text)
        elif t is ReasoningDelta:
            self.thinking.append(ev.text)
        elif t is ToolCallDelta:
            self.calls.add(ev)
        elif t is Finish:
            self.finish_reason = ev.reason or self.finish_reason
        elif t is UsageEvent:
            self.usage = ev.usage
        elif t is Citations:
            self.annotations.extend(ev.annotations)

    def result(self, model: str, id: str | None = None) -> ChatCompletion:
        assembled = self.calls.in_order()
        calls = [OutToolCall(c.id or "", OutFunction(c.name, c.arguments)) for c in assembled]
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
        memo = {c.id: c.extra for c in assembled if c.extra and c.id}
        return ChatCompletion(id or completion_id(), int(time.time()), model, [Choice(msg, reason)],
                              usage=self.usage or Usage(), memo=memo or UNSET)
