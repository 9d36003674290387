"""Gemini replies -> OpenAI: candidates, finishReason, usageMetadata, errors, embeddings (mapping.md §3, §5.3).

A whole generateContent reply and each SSE frame of streamGenerateContent?alt=sse are the same
GenerateContentResponse (a frame holds only new parts; function calls arrive complete in one
frame), so both are read as stream events (`Frames`), and a whole reply is its events gathered.
A stream has no terminal event: EOF ends it, so Finish is sent at EOF even when no finishReason
came (but a reply without a single frame is an error). An `error` object in a frame, or a frame
that is not JSON (the connection broke mid-object), raises StreamInterrupted.

Gemini usually sends function calls without ids, so each call gets a generated OpenAI id, and
what a later request must send back with it (name, thought signature, Gemini's id if any) is
returned as `ChatCompletion.memo` / `ToolCallDelta.extra` under that id (request.MEMO_*).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import msgspec
import orjson

from litegate.config import Deployment
from litegate.errors import BadRequest, GatewayError, StreamInterrupted, UpstreamError, from_backend_status
from litegate.core.events import Aggregator
from litegate.wire import (
    ChatCompletion, Finish, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, Usage, UsageEvent,
)
from litegate.providers.base import Vectors, new_tool_call_id, retry_after
from litegate.providers.messages import dumps_args
from litegate.providers.gemini.request import MEMO_ID, MEMO_NAME, MEMO_SIG


# ---------------------------------------------------------------- view structs (camelCase wire)
class FunctionCall(msgspec.Struct, rename="camel"):
    name: str = ""
    args: Any = None
    id: str | None = None


class Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: FunctionCall | None = None


class Content(msgspec.Struct, rename="camel"):
    parts: list[Part] = []


class Candidate(msgspec.Struct, rename="camel"):
    content: Content | None = None
    finish_reason: str | None = None
    index: int = 0


class UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0


class PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class Reply(msgspec.Struct, rename="camel"):
    candidates: list[Candidate] = []
    usage_metadata: UsageMetadata | None = None
    prompt_feedback: PromptFeedback | None = None
    error: Any = None


class _Values(msgspec.Struct):
    values: list[float] = []


class _Embeddings(msgspec.Struct):
    embedding: _Values | None = None
    embeddings: list[_Values] | None = None


_reply = msgspec.json.Decoder(Reply)
_embeddings = msgspec.json.Decoder(_Embeddings)

_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE"})


def finish_reason(reason: str | None, saw_tool: bool) -> str | None:
    """Gemini finishReason -> OpenAI's; None when the candidate has not finished."""
    if reason is None:
        return None
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED or (reason.startswith("IMAGE_") and reason != "IMAGE_OTHER"):
        return "content_filter"
    # STOP, OTHER, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, ...: a normal end.
    return "tool_calls" if saw_tool else "stop"


def usage(meta: UsageMetadata) -> Usage:
    return Usage.of(meta.prompt_token_count + meta.tool_use_prompt_token_count,
                    meta.candidates_token_count + meta.thoughts_token_count,
                    cached=meta.cached_content_token_count, reasoning=meta.thoughts_token_count)


def memo_entry(part: Part) -> dict[str, Any]:
    """What build_chat needs to send this call back: its name, signature and Gemini id."""
    fc = part.function_call
    entry: dict[str, Any] = {MEMO_NAME: fc.name if fc else ""}
    if part.thought_signature:
        entry[MEMO_SIG] = part.thought_signature
    if fc is not None and fc.id:
        entry[MEMO_ID] = fc.id
    return entry


def _read(body: bytes, target: Deployment, stream: bool) -> Reply:
    """One GenerateContentResponse; a broken one, or an `error` object, is an UpstreamError (a
    StreamInterrupted in a stream)."""
    fault = StreamInterrupted if stream else UpstreamError
    try:
        reply = _reply.decode(body)
    except msgspec.DecodeError:
        broken = "a broken stream frame" if stream else "a reply that is not Gemini's format"
        raise fault(f"deployment {target.id} sent {broken}") from None
    if reply.error is not None:
        raise fault(f"Gemini error{' mid-stream' if stream else ''}: {error_message(reply.error)}")
    return reply


# ---------------------------------------------------------------- the events of replies
class Frames:
    """The events of GenerateContentResponses read in order: the frames of a stream, or one whole
    reply (the same object, so a whole reply is read as a stream of one frame)."""

    __slots__ = ("calls", "reason")

    def __init__(self) -> None:
        self.calls = 0  # tool calls so far, the next one's index
        self.reason: str | None = None  # the finish reason so far

    def events(self, reply: Reply) -> Iterator[StreamEvent]:
        if reply.usage_metadata is not None:
            yield UsageEvent(usage(reply.usage_metadata))
        if not reply.candidates and reply.prompt_feedback and reply.prompt_feedback.block_reason:
            self.reason = "content_filter"
        for cand in reply.candidates:
            if cand.index != 0:  # only choice 0 is read (build_chat refuses n > 1)
                continue
            for part in cand.content.parts if cand.content else ():
                fc = part.function_call
                if fc is not None:
                    yield ToolCallDelta(self.calls, dumps_args(fc.args), new_tool_call_id(), fc.name, memo_entry(part))
                    self.calls += 1
                elif part.thought:
                    if part.text:
                        yield ReasoningDelta(part.text)
                elif part.text:  # "" + thoughtSignature closes a text answer: nothing to show
                    yield TextDelta(part.text)
            self.reason = finish_reason(cand.finish_reason, self.calls > 0) or self.reason

    def end(self) -> Finish:
        return Finish(self.reason)


def parse_chat(body: bytes, target: Deployment) -> ChatCompletion:
    frames, whole = Frames(), Aggregator()
    for ev in frames.events(_read(body, target, stream=False)):
        whole.feed(ev)
    whole.feed(frames.end())
    return whole.result(target.name)


async def parse_chat_stream(frames: AsyncIterator[bytes], target: Deployment) -> AsyncIterator[StreamEvent]:
    read, seen = Frames(), False
    async for frame in frames:
        if not frame.strip():
            continue
        seen = True
        for ev in read.events(_read(frame, target, stream=True)):
            yield ev
    if not seen:  # EOF is Gemini's end, but a reply without one SSE frame is not a Gemini stream
        raise StreamInterrupted(f"deployment {target.id} sent no stream frames")
    yield read.end()


# ---------------------------------------------------------------- errors
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"message": body.decode("utf-8", "replace").strip()[:500] or "empty error body"}
    if isinstance(doc, list) and doc:  # the non-SSE stream form wraps it in an array
        doc = doc[0]
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, dict) else {"message": str(doc)[:500]}


def error_message(err: Any) -> str:
    if isinstance(err, dict):
        return str(err.get("message") or err.get("status") or err)
    return str(err)


def _details(err: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The `details` entries of one google.rpc type (RetryInfo, ErrorInfo, ...)."""
    details = err.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def _retry_delay(err: dict[str, Any], headers: Mapping[str, str]) -> float | None:
    for info in _details(err, "RetryInfo"):
        match = _DURATION.match(str(info.get("retryDelay", "")))
        if match:
            return float(match.group(1))
    return retry_after(headers)


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    err = _error_object(body)
    message = error_message(err)
    reasons = {d.get("reason") for d in _details(err, "ErrorInfo")}
    if "API_KEY_INVALID" in reasons:  # Gemini says 400 for a bad key: it is litegate's fault, not the client's
        return from_backend_status(401, message)
    if status == 400:
        return BadRequest(message)
    return from_backend_status(status, message, retry_after=_retry_delay(err, headers))


# ---------------------------------------------------------------- embeddings
def parse_embeddings(body: bytes, target: Deployment) -> Vectors:
    try:
        reply = _embeddings.decode(body)
    except msgspec.DecodeError:
        raise UpstreamError(f"deployment {target.id} sent embeddings not in Gemini's format") from None
    if reply.embeddings is not None:
        return Vectors([e.values for e in reply.embeddings], 0)
    if reply.embedding is not None:
        return Vectors([reply.embedding.values], 0)
    raise UpstreamError(f"deployment {target.id} sent no embeddings")
