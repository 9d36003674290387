"""Anthropic Messages SSE -> provider-neutral stream events (mapping.md §5.2).

The framing layer hands over each `data:` payload; its `type` names the event. Blocks are
tracked by Anthropic index: text goes out as TextDelta, tool_use as ToolCallDelta (id + name
and "" first, then the input_json_delta fragments, "{}" at content_block_stop when none came),
thinking as ReasoningDelta. Completed thinking blocks (text + signature, or redacted data) ride
on the `extra` of the next tool call's first fragment so the gateway can hand them back to
build_chat. The json_schema tool (response.JSON_TOOL) streams as content. An `error` event raises
the mapped GatewayError; EOF before `message_stop` raises StreamInterrupted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec

from litegate.config import Deployment
from litegate.errors import GatewayError, StreamInterrupted
from litegate.wire import Finish, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, UsageEvent
from litegate.providers.base import new_tool_call_id
from litegate.providers.anthropic.response import JSON_TOOL, THINKING_MEMO, Block, Counts, Message, error_for, finish_reason, thinking_block, usage


class _Delta(msgspec.Struct):
    type: str = ""
    text: str = ""
    partial_json: str = ""
    thinking: str = ""
    signature: str = ""
    stop_reason: str | None = None


class _Error(msgspec.Struct):
    type: str = ""
    message: str = ""


class _Event(msgspec.Struct):
    type: str
    index: int = 0
    message: Message | None = None
    content_block: Block | None = None
    delta: _Delta | None = None
    usage: Counts | None = None
    error: _Error | None = None


_event = msgspec.json.Decoder(_Event)


class _Open:
    """One content block between its start and stop events."""

    __slots__ = ("block", "tool_index", "args_seen", "parts", "signature")

    def __init__(self, block: Block, tool_index: int = -1) -> None:
        self.block = block
        self.tool_index = tool_index  # OpenAI tool index; -1 for non-tool blocks
        self.args_seen = False
        self.parts: list[str] = [block.thinking] if block.thinking else []
        self.signature = block.signature


class _State:
    """Per-stream state; each handler returns the events its Anthropic event produces."""

    def __init__(self) -> None:
        self.blocks: dict[int, _Open] = {}
        self.tools = 0
        self.thinking: list[dict[str, Any]] = []  # finished, not yet attached to a tool call
        self.counts = Counts()
        self.stop_reason: str | None = None

    def message_start(self, ev: _Event) -> Iterator[StreamEvent]:
        if ev.message is not None and ev.message.usage is not None:
            self.counts.update(ev.message.usage)
        return iter(())

    def content_block_start(self, ev: _Event) -> Iterator[StreamEvent]:
        block = ev.content_block or Block("text")
        if block.type == "tool_use" and block.name != JSON_TOOL:
            self.blocks[ev.index] = _Open(block, self.tools)
            extra = {THINKING_MEMO: self.thinking} if self.thinking else None
            self.thinking = []
            self.tools += 1
            yield ToolCallDelta(self.tools - 1, "", block.id or new_tool_call_id(), block.name, extra)
            return
        self.blocks[ev.index] = _Open(block)
        if block.type == "text" and block.text:
            yield TextDelta(block.text)
        elif block.type == "thinking" and block.thinking:
            yield ReasoningDelta(block.thinking)

    def content_block_delta(self, ev: _Event) -> Iterator[StreamEvent]:
        d, open_ = ev.delta or _Delta(), self.blocks.get(ev.index)
        if d.type == "text_delta" and d.text:
            yield TextDelta(d.text)
        elif d.type == "input_json_delta" and d.partial_json and open_ is not None:
            open_.args_seen = True
            if open_.tool_index < 0:  # the json_schema tool: its input is the answer
                yield TextDelta(d.partial_json)
            else:
                yield ToolCallDelta(open_.tool_index, d.partial_json)
        elif d.type == "thinking_delta" and d.thinking:
            if open_ is not None:
                open_.parts.append(d.thinking)
            yield ReasoningDelta(d.thinking)
        elif d.type == "signature_delta" and open_ is not None:
            open_.signature += d.signature

    def content_block_stop(self, ev: _Event) -> Iterator[StreamEvent]:
        open_ = self.blocks.pop(ev.index, None)
        if open_ is None:
            return
        kind = open_.block.type
        if kind == "tool_use" and not open_.args_seen:
            yield ToolCallDelta(open_.tool_index, "{}") if open_.tool_index >= 0 else TextDelta("{}")
        elif kind in ("thinking", "redacted_thinking"):
            block = Block(kind, thinking="".join(open_.parts), signature=open_.signature, data=open_.block.data)
            self.thinking.append(thinking_block(block))

    def message_delta(self, ev: _Event) -> Iterator[StreamEvent]:
        if ev.delta is not None and ev.delta.stop_reason is not None:
            self.stop_reason = ev.delta.stop_reason
        if ev.usage is not None:
            self.counts.update(ev.usage)
        return iter(())

    def end(self) -> list[StreamEvent]:
        return [UsageEvent(usage(self.counts)), Finish(finish_reason(self.stop_reason, self.tools > 0))]


_HANDLERS = ("message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta")


async def parse_chat_stream(frames: AsyncIterator[bytes], target: Deployment) -> AsyncIterator[StreamEvent]:
    state = _State()
    async for frame in frames:
        if not frame.strip():
            continue
        ev = _decode(frame, target)
        if ev.type == "message_stop":
            for out in state.end():
                yield out
            return
        if ev.type == "error":
            raise _stream_error(ev)
        if ev.type in _HANDLERS:  # ping and unknown future events are ignored
            for out in getattr(state, ev.type)(ev):
                yield out
    raise StreamInterrupted("Anthropic stream ended before message_stop")


def _decode(frame: bytes, target: Deployment) -> _Event:
    try:
        return _event.decode(frame)
    except msgspec.DecodeError:
        raise StreamInterrupted(f"deployment {target.id} sent a stream event that is not Anthropic's format") from None


def _stream_error(ev: _Event) -> GatewayError:
    err = ev.error or _Error()
    return error_for(err.type, f"backend error mid-stream: {err.message or err.type or 'unknown error'}", None, {})
