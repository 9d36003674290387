"""Any OpenAI-compatible server (OpenAI, vLLM, LM Studio, llama.cpp, OpenRouter, Ollama /v1).

The request goes through almost verbatim; the reply is normalised with the same rules as every
other provider (mapping.md §5.4): our own ids and model name, a role chunk first, tool calls
with ids, exactly one usage chunk and one `[DONE]`, a finish_reason synthesised when missing.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
import orjson

from litegate.config import Deployment
from litegate.errors import BadRequest, GatewayError, StreamInterrupted, UpstreamError, from_backend_status
from litegate.wire import (
    ChatCompletion, ChatRequest, Choice, CompletionChoice, CompletionRequest, EmbeddingsRequest,
    Finish, OutFunction, OutMessage, OutToolCall, PromptTokensDetails, CompletionTokensDetails,
    ReasoningDelta, StreamEvent, TextCompletion, TextDelta, ToolCallDelta, Usage, UsageEvent,
)
from litegate.providers.base import (
    NativeRequest, Passthrough, Provider, UpstreamRequest, Vectors, api_base, error_text, event_type, new_tool_call_id,
    retry_after,
)
from litegate.providers.messages import tool_name_for

DEFAULT_API_BASE = "https://api.openai.com/v1"


class _Fn(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _Call(msgspec.Struct):
    function: _Fn | None = None
    id: str | None = None
    index: int = 0


class _Msg(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[_Call] | None = None


class _Details(msgspec.Struct):
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    # Typed all the way down: a count that is not a number ("x") is a reply not in OpenAI's format (502).
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: _Details | None = None
    completion_tokens_details: _Details | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    message: _Msg | None = None
    delta: _Msg | None = None
    finish_reason: str | None = None
    text: str | None = None


class _Reply(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: Any = None


class _EmbItem(msgspec.Struct):
    embedding: list[float] | str
    index: int = 0


class _Embeddings(msgspec.Struct):
    data: list[_EmbItem] = []
    usage: _Usage | None = None


_reply = msgspec.json.Decoder(_Reply)
_embeddings = msgspec.json.Decoder(_Embeddings)
_STRIP_FROM_MESSAGES = ("reasoning_content",)


def _headers(target: Deployment) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if target.api_key:
        headers["authorization"] = f"Bearer {target.api_key}"
    return headers


def build_chat(req: ChatRequest, target: Deployment, memo: Mapping[str, dict] = {}) -> UpstreamRequest:
    if req.stream and req.n is not None and req.n > 1:
        raise BadRequest("n>1 is supported only without stream", param="n")
    for i, m in enumerate(req.messages):
        if m.role == "tool":
            tool_name_for(req.messages, i)  # a 400 naming messages[i].tool_call_id if it answers nothing
    body = msgspec.to_builtins(req)
    body["model"] = target.model
    for m in body["messages"]:
        for key in _STRIP_FROM_MESSAGES:
            m.pop(key, None)
    if req.stream:
        # Ask for usage even when the client did not: the gateway accounts for every token.
        body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
    return UpstreamRequest("POST", api_base(target, DEFAULT_API_BASE) + "/chat/completions",
                           orjson.dumps(body), _headers(target))


def _usage(u: _Usage | None) -> Usage:
    if u is None:
        return Usage()
    usage = Usage(u.prompt_tokens, u.completion_tokens, u.total_tokens or u.prompt_tokens + u.completion_tokens)
    cached = (u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else None) or 0
    reasoning = (u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else None) or 0
    if cached:
        usage.prompt_tokens_details = PromptTokensDetails(cached)
    if reasoning:
        usage.completion_tokens_details = CompletionTokensDetails(reasoning)
    return usage


def _decode(body: bytes, target: Deployment) -> _Reply:
    try:
        return _reply.decode(body)
    except msgspec.DecodeError:
        raise UpstreamError(f"deployment {target.id} sent a reply that is not OpenAI's format") from None


def _message(m: _Msg, finish: str | None) -> tuple[OutMessage, str]:
    calls = [OutToolCall(c.id or new_tool_call_id(), OutFunction((c.function and c.function.name) or "",
                                                               (c.function and c.function.arguments) or "{}"))
             for c in m.tool_calls or ()]
    msg = OutMessage(content=m.content if (m.content is not None or not calls) else None, refusal=m.refusal)
    if msg.content is None and not calls:
        msg.content = ""
    if calls:
        msg.tool_calls = calls
    if m.reasoning_content or m.reasoning:
        msg.reasoning_content = m.reasoning_content or m.reasoning or ""
    reason = finish or ("tool_calls" if calls else "stop")
    return msg, reason


def parse_chat(body: bytes, target: Deployment) -> ChatCompletion:
    reply = _decode(body, target)
    if reply.error is not None or not reply.choices:
        raise UpstreamError(f"deployment {target.id} replied without choices: {error_text(body, ('error', 'message'))}")
    choices = []
    for c in reply.choices:
        msg, reason = _message(c.message or _Msg(), c.finish_reason)
        choices.append(Choice(msg, reason, c.index))
    return ChatCompletion("", 0, target.name, choices, usage=_usage(reply.usage))


def _frame(frame: bytes, target: Deployment) -> _Reply | None:
    """One stream chunk decoded; None for `[DONE]`; an error payload mid-stream raises."""
    if frame == b"[DONE]":
        return None
    reply = _decode(frame, target)
    if reply.error is not None:
        raise StreamInterrupted(f"backend error mid-stream: {error_text(frame, ('error', 'message'), ('error',))}")
    return reply


async def parse_chat_stream(frames: AsyncIterator[bytes], target: Deployment) -> AsyncIterator[StreamEvent]:
    seen: set[int] = set()
    finished = False
    async for frame in frames:
        reply = _frame(frame, target)
        if reply is None:
            yield Finish(None)
            return
        if reply.usage is not None:
            yield UsageEvent(_usage(reply.usage))
        for c in reply.choices:
            if c.index != 0:
                continue
            d = c.delta or _Msg()
            if d.reasoning_content or d.reasoning:
                yield ReasoningDelta(d.reasoning_content or d.reasoning or "")
            if d.content:
                yield TextDelta(d.content)
            for call in d.tool_calls or ():
                fn = call.function or _Fn()
                if call.index not in seen:
                    seen.add(call.index)
                    yield ToolCallDelta(call.index, fn.arguments or "", call.id or new_tool_call_id(), fn.name or "")
                elif fn.arguments:
                    yield ToolCallDelta(call.index, fn.arguments)
            if c.finish_reason:
                finished = True
                yield Finish(c.finish_reason)
    if not finished:
        raise StreamInterrupted("backend stream ended before its finish_reason and [DONE]")


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    message = error_text(body, ("error", "message"), ("error",), ("detail",), ("message",))
    if status == 400:
        try:
            err = orjson.loads(body).get("error") or {}
        except (orjson.JSONDecodeError, AttributeError):
            err = {}
        err = err if isinstance(err, dict) else {}
        return BadRequest(message, param=err.get("param"), code=err.get("code"))
    return from_backend_status(status, message, retry_after=retry_after(headers))


def build_embeddings(req: EmbeddingsRequest, target: Deployment) -> UpstreamRequest:
    body = msgspec.to_builtins(req)
    body["model"] = target.model
    body["encoding_format"] = "float"  # litegate encodes base64 itself, for every provider alike
    return UpstreamRequest("POST", api_base(target, DEFAULT_API_BASE) + "/embeddings", orjson.dumps(body),
                           _headers(target))


def _floats(vec: list[float] | str) -> list[float]:
    if isinstance(vec, list):
        return vec
    raw = base64.b64decode(vec)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def parse_embeddings(body: bytes, target: Deployment) -> Vectors:
    try:
        reply = _embeddings.decode(body)
    except msgspec.DecodeError:
        raise UpstreamError(f"deployment {target.id} sent embeddings not in OpenAI's format") from None
    items = sorted(reply.data, key=lambda d: d.index)
    return Vectors([_floats(d.embedding) for d in items], reply.usage.prompt_tokens if reply.usage else 0)


def build_completion(req: CompletionRequest, target: Deployment) -> UpstreamRequest:
    body = msgspec.to_builtins(req)
    body["model"] = target.model
    if req.stream:
        body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
    return UpstreamRequest("POST", api_base(target, DEFAULT_API_BASE) + "/completions", orjson.dumps(body),
                           _headers(target))


def parse_completion(body: bytes, target: Deployment) -> TextCompletion:
    reply = _decode(body, target)
    choices = [CompletionChoice(c.text or "", c.index, c.finish_reason or "stop") for c in reply.choices]
    return TextCompletion("", 0, target.name, choices, usage=_usage(reply.usage))


async def parse_completion_stream(frames: AsyncIterator[bytes], target: Deployment) -> AsyncIterator[StreamEvent]:
    finished = False
    async for frame in frames:
        reply = _frame(frame, target)
        if reply is None:
            yield Finish(None)
            return
        if reply.usage is not None:
            yield UsageEvent(_usage(reply.usage))
        for c in reply.choices:
            if c.text:
                yield TextDelta(c.text)
            if c.finish_reason:
                finished = True
                yield Finish(c.finish_reason)
    if not finished:
        raise StreamInterrupted("backend stream ended before its finish_reason and [DONE]")


# ---------------------------------------------------------------- the Responses API, passed through
_TERMINAL = (b'"response.completed"', b'"response.incomplete"', b'"response.failed"')


def _build_responses(native: NativeRequest, target: Deployment) -> UpstreamRequest:
    """The client's Responses body for a backend serving POST /responses: only the model is the deployment's."""
    body = orjson.dumps({**orjson.loads(native.body), "model": target.model})
    return UpstreamRequest("POST", api_base(target, DEFAULT_API_BASE) + "/responses", body, _headers(target))


async def _relay_responses(frames: AsyncIterator[bytes], target: Deployment,
                           native: NativeRequest) -> AsyncIterator[bytes | UsageEvent]:
    """The backend's events as they came (only the `event:` line is rebuilt: upstream framing keeps the
    data), and the usage of its terminal event."""
    async for payload in frames:
        if not payload.strip() or payload == b"[DONE]":
            continue
        kind = event_type(payload, b"message")
        yield b"event: " + kind + b"\ndata: " + payload + b"\n\n"
        if b'"' + kind + b'"' in _TERMINAL:
            found = response_usage(orjson.loads(payload).get("response"))
            if found is not None:
                yield UsageEvent(found)


def _reply_responses(body: bytes, target: Deployment, native: NativeRequest) -> tuple[bytes, Usage | None]:
    try:
        return body, response_usage(orjson.loads(body))
    except orjson.JSONDecodeError:
        return body, None


def response_usage(response: Any) -> Usage | None:
    """A Response object's usage in the internal form (None when it has none)."""
    u = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(u, dict):
        return None
    cached = (u.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    usage = Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0), int(u.get("total_tokens") or 0))
    if cached:
        usage.prompt_tokens_details = PromptTokensDetails(int(cached))
    if reasoning:
        usage.completion_tokens_details = CompletionTokensDetails(int(reasoning))
    return usage


PROVIDER = Provider(
    name="openai", framing="sse", default_api_base=DEFAULT_API_BASE, inline_image_urls=False,
    build_chat=build_chat, parse_chat=parse_chat, parse_chat_stream=parse_chat_stream, parse_error=parse_error,
    build_embeddings=build_embeddings, parse_embeddings=parse_embeddings,
    build_completion=build_completion, parse_completion=parse_completion,
    parse_completion_stream=parse_completion_stream,
    # Deployments flagged responses_api serve the Responses API themselves: its requests pass through.
    passthrough={"responses": Passthrough(_build_responses, _relay_responses, _reply_responses,
                                          serves=lambda d: d.responses_api)},
    context_window=128_000, vision=True,
)
