"""A whole chat answer (wire.ChatCompletion) -> one Response object (openai-responses.md §7).

The reply is replayed through the stream writer with framing off, so a non-streaming answer
has exactly the items, ids, statuses and usage a streaming one would have.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from litegate.wire import ChatCompletion, Citations, Finish, ReasoningDelta, TextDelta, ToolCallDelta, UsageEvent
from litegate.surfaces.responses.request import Inbound
from litegate.surfaces.responses.stream import ResponsesWriter


def to_response(completion: ChatCompletion, inbound: Inbound, *, response_id: str | None = None,
                created_at: int | None = None) -> dict[str, Any]:
    writer = ResponsesWriter(inbound, response_id=response_id, created_at=created_at, frames=False)
    choice = completion.choices[0] if completion.choices else None
    if choice is not None:
        msg = choice.message
        if msg.reasoning_content:
            writer.feed(ReasoningDelta(msg.reasoning_content))
        if msg.content:
            writer.feed(TextDelta(msg.content))
        if msg.annotations is not UNSET and msg.annotations:
            writer.feed(Citations(msg.annotations))
        for i, call in enumerate(msg.tool_calls if msg.tool_calls is not UNSET else ()):
            writer.feed(ToolCallDelta(i, call.function.arguments, call.id, call.function.name))
        writer.feed(Finish(choice.finish_reason))
    if completion.usage is not UNSET:
        writer.feed(UsageEvent(completion.usage))
    writer.finish()
    assert writer.final is not None
    return writer.final
