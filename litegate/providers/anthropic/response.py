"""Anthropic Messages replies and error bodies -> OpenAI structs (mapping.md §3, §4).

Owns the view structs of Anthropic's JSON (shared with stream.py), the stop_reason and usage
tables, the error table, and the two names the other modules agree on: the memo key under
which a tool call's preceding thinking blocks are remembered, and the reserved tool name used
to emulate `response_format: json_schema` (its input becomes the message content).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import orjson

from litegate.config import Deployment
from litegate.errors import (
    BadRequest, GatewayError, PayloadTooLarge, RateLimited, StreamInterrupted, UpstreamError,
    UpstreamTimeout, from_backend_status,
)
from litegate.wire import ChatCompletion, Choice, OutFunction, OutMessage, OutToolCall, Usage
from litegate.providers.base import error_text, new_tool_call_id, retry_after
from litegate.providers.messages import dumps_args

# memo[tool_call_id][THINKING_MEMO] = the thinking / redacted_thinking blocks (with signatures)
# that preceded that tool_use; build_chat re-sends them so thinking survives a tool turn.
THINKING_MEMO = "anthropic_thinking"
# The forced tool that carries a json_schema answer (the name LiteLLM uses for the same trick).
JSON_TOOL = "json_tool_call"


# ---------------------------------------------------------------- view structs
class Block(msgspec.Struct):
    type: str
    text: str = ""
    thinking: str = ""
    signature: str = ""
    data: str = ""
    id: str = ""
    name: str = ""
    input: Any = None


class Counts(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def update(self, newer: Counts) -> None:
        """Keep the latest non-null value of each counter (message_delta's output is cumulative)."""
        for field in Counts.__struct_fields__:
            value = getattr(newer, field)
            if value is not None:
                setattr(self, field, value)


def counts_of(u: Any) -> Counts:
    """The usage of a body passed through as it is: its integer counters, anything else left out."""
    u = u if isinstance(u, dict) else {}
    return Counts(**{f: u[f] for f in Counts.__struct_fields__ if isinstance(u.get(f), int)})


class Message(msgspec.Struct):
    type: str = "message"
    content: list[Block] = []
    stop_reason: str | None = None
    usage: Counts | None = None


_message = msgspec.json.Decoder(Message)

_FINISH = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "model_context_window_exceeded": "length",
    "tool_use": "tool_calls", "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, real_tools: bool) -> str | None:
    """stop_reason -> OpenAI finish_reason; a json_schema answer (no real tool call) is "stop"."""
    if stop_reason is None:
        return None
    reason = _FINISH.get(stop_reason, "stop")
    return "stop" if reason == "tool_calls" and not real_tools else reason


def usage(c: Counts) -> Usage:
    """Prompt tokens include cache writes and reads; reads are also `cached_tokens`."""
    cached = c.cache_read_input_tokens or 0
    prompt = (c.input_tokens or 0) + (c.cache_creation_input_tokens or 0) + cached
    return Usage.of(prompt, c.output_tokens or 0, cached=cached)


def thinking_block(b: Block) -> dict[str, Any]:
    """A thinking block exactly as it must be sent back (signature and data untouched)."""
    if b.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": b.data}
    return {"type": "thinking", "thinking": b.thinking, "signature": b.signature}


# ---------------------------------------------------------------- non-streaming reply
def parse_chat(body: bytes, target: Deployment) -> ChatCompletion:
    try:
        reply = _message.decode(body)
    except msgspec.DecodeError:
        raise UpstreamError(f"deployment {target.id} sent a reply that is not Anthropic's Messages format") from None
    if reply.type == "error":
        raise parse_error(502, body, {})
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[OutToolCall] = []
    memo: dict[str, dict[str, Any]] = {}
    thinking: list[dict[str, Any]] = []
    for b in reply.content:
        if b.type == "text":
            text.append(b.text)
        elif b.type in ("thinking", "redacted_thinking"):
            reasoning.append(b.thinking)
            thinking.append(thinking_block(b))
        elif b.type == "tool_use" and b.name == JSON_TOOL:
            text.append(dumps_args(b.input))
        elif b.type == "tool_use":
            calls.append(OutToolCall(b.id or new_tool_call_id(), OutFunction(b.name, dumps_args(b.input))))
            if thinking:
                memo[calls[-1].id] = {THINKING_MEMO: thinking}
                thinking = []
    msg = OutMessage(content="".join(text) or (None if calls else ""))
    if calls:
        msg.tool_calls = calls
    if any(reasoning):
        msg.reasoning_content = "".join(reasoning)
    reason = finish_reason(reply.stop_reason, bool(calls)) or ("tool_calls" if calls else "stop")
    out = ChatCompletion("", 0, target.name, [Choice(msg, reason)], usage=usage(reply.usage or Counts()))
    if memo:
        out.memo = memo
    return out


# ---------------------------------------------------------------- errors
def error_for(kind: str, message: str, status: int | None, headers: Mapping[str, str]) -> GatewayError:
    """Anthropic `error.type` (status as a tie-breaker) -> GatewayError (anthropic-messages.md §6)."""
    wait = retry_after(headers)
    if kind == "invalid_request_error":
        return BadRequest(message)
    if kind == "request_too_large":
        return PayloadTooLarge(message)
    if kind == "rate_limit_error":
        return RateLimited(message, retry_after=wait)
    if kind == "overloaded_error":
        return from_backend_status(529, message, retry_after=wait)
    if kind == "api_error":
        return UpstreamError(message)
    if kind == "timeout_error":
        return UpstreamTimeout(message)
    if kind == "not_found_error":
        return from_backend_status(404, message)
    if kind in ("authentication_error", "permission_error"):
        return from_backend_status(401 if kind == "authentication_error" else 403, message)
    if kind == "billing_error":
        return UpstreamError(f"backend account problem: {message}", code="backend_billing_error", retryable=False)
    if status is None:
        return StreamInterrupted(message)
    return from_backend_status(status, message, retry_after=wait)


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    message = error_text(body, ("error", "message"), ("message",))
    try:
        doc = orjson.loads(body)
        kind = doc["error"]["type"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        kind = ""
    if status == 529:
        kind = kind or "overloaded_error"
    return error_for(kind if isinstance(kind, str) else "", message, status, headers)
