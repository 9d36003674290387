"""Gemini's streamGenerateContent?alt=sse -> provider-neutral stream events (mapping.md §5.3).

Every SSE frame is a whole GenerateContentResponse holding only new parts; function calls
arrive complete in one frame. There is no terminal event: EOF ends the stream, so Finish is
sent at EOF even when no finishReason came (but a reply without a single frame is an error). An `error` object in a frame, or a frame that is
not JSON (the connection broke mid-object), raises StreamInterrupted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from litegate.config import Deployment
from litegate.errors import StreamInterrupted
from litegate.wire import Finish, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, UsageEvent
from litegate.providers.base import new_tool_call_id
from litegate.providers.messages import dumps_args
from litegate.providers.gemini.response import Candidate, Reply, error_message, finish_reason, memo_entry, reply_decoder, usage


async def parse_chat_stream(frames: AsyncIterator[bytes], target: Deployment) -> AsyncIterator[StreamEvent]:
    count = 0
    reason: str | None = None
    seen = False
    async for frame in frames:
        if not frame.strip():
            continue
        seen = True
        reply = _decode(frame, target)
        if reply.usage_metadata is not None:
            yield UsageEvent(usage(reply.usage_metadata))
        if not reply.candidates and reply.prompt_feedback and reply.prompt_feedback.block_reason:
            reason = "content_filter"
        for cand in reply.candidates:
            if cand.index != 0:  # only choice 0 is streamed (build_chat refuses n > 1)
                continue
            events, count = _events(cand, count)
            for ev in events:
                yield ev
            reason = finish_reason(cand.finish_reason, count > 0) or reason
    if not seen:  # EOF is Gemini's end, but a reply without one SSE frame is not a Gemini stream
        raise StreamInterrupted(f"deployment {target.id} sent no stream frames")
    yield Finish(reason)


def _events(cand: Candidate, count: int) -> tuple[list[StreamEvent], int]:
    """Events for one candidate's parts, and the tool-call count after them."""
    out: list[StreamEvent] = []
    for part in cand.content.parts if cand.content else ():
        fc = part.function_call
        if fc is not None:
            out.append(ToolCallDelta(count, dumps_args(fc.args), new_tool_call_id(), fc.name, memo_entry(part)))
            count += 1
        elif part.thought:
            if part.text:
                out.append(ReasoningDelta(part.text))
        elif part.text:  # "" + thoughtSignature closes a text answer: nothing to show
            out.append(TextDelta(part.text))
    return out, count


def _decode(frame: bytes, target: Deployment) -> Reply:
    try:
        reply = reply_decoder.decode(frame)
    except msgspec.DecodeError:
        raise StreamInterrupted(f"deployment {target.id} sent a broken stream frame") from None
    if reply.error is not None:
        raise StreamInterrupted(f"Gemini error mid-stream: {error_message(reply.error)}")
    return reply
