"""Ollama's native API (/api/chat, /api/generate, /api/embed) <-> OpenAI (mapping.md §1, §3, §5.1).

Ollama streams NDJSON, sends tool calls whole (often before a `done` line that says "stop"),
wants tool-call arguments as objects and tool results named by `tool_name`, and takes images
as bare base64. Pure translation: no I/O here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
import orjson

from litegate.config import Deployment
from litegate.errors import BadRequest, GatewayError, StreamInterrupted, UpstreamError, from_backend_status
from litegate.wire import (
    ChatCompletion, ChatRequest, Choice, CompletionChoice, CompletionRequest, EmbeddingsRequest,
    Finish, OutFunction, OutMessage, OutToolCall, ReasoningDelta, StreamEvent, TextCompletion,
    TextDelta, ToolCallDelta, Usage, UsageEvent,
)
from litegate.providers import fim
from litegate.providers.base import (
    UpstreamRequest, Vectors, api_base, error_text, new_tool_call_id,
)
from litegate.providers.messages import dumps_args, image_url_of, parse_data_uri, text_of, tool_arguments, tool_name_for

DEFAULT_API_BASE = "http://127.0.0.1:11434"
_JSON = {"content-type": "application/json"}
_EFFORT_TO_THINK: dict[str, bool | str] = {
    "none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high",
}


# ---------------------------------------------------------------- view structs of Ollama replies
class _Fn(msgspec.Struct):
    name: str = ""
    arguments: Any = None


class _Call(msgspec.Struct):
    function: _Fn
    id: str | None = None


class _Msg(msgspec.Struct):
    content: str = ""
    thinking: str = ""
    tool_calls: list[_Call] | None = None


class _Line(msgspec.Struct):
    """What /api/chat and /api/generate lines share: the done line's counts, or an error."""

    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    eval_count: int = 0
    error: str | None = None


class _ChatLine(_Line):
    message: _Msg | None = None


class _GenLine(_Line):
    response: str = ""


class _Embed(msgspec.Struct):
    embeddings: list[list[float]] = []
    prompt_eval_count: int = 0


_chat_line = msgspec.json.Decoder(_ChatLine)
_gen_line = msgspec.json.Decoder(_GenLine)
_embed = msgspec.json.Decoder(_Embed)


# ---------------------------------------------------------------- requests
def _messages(req: ChatRequest) -> list[dict[str, Any]]:
    out = []
    for i, m in enumerate(req.messages):
        role = "system" if m.role in ("system", "developer") else m.role
        msg: dict[str, Any] = {"role": "tool" if role == "function" else role, "content": text_of(m.content)}
        if isinstance(m.content, list):
            images = [_image(i, j, p) for j, p in enumerate(m.content) if p.type == "image_url"]
            if images:
                msg["images"] = images
        if m.tool_calls:
            msg["tool_calls"] = [_tool_call(i, j, c) for j, c in enumerate(m.tool_calls)]
        if m.role == "assistant" and m.reasoning_content:
            msg["thinking"] = m.reasoning_content
        if msg["role"] == "tool":
            msg["tool_name"] = tool_name_for(req.messages, i)
            if m.tool_call_id:
                msg["tool_call_id"] = m.tool_call_id
        out.append(msg)
    return out


def _image(i: int, j: int, part) -> str:
    url = image_url_of(part) or ""
    where = f"messages[{i}].content[{j}].image_url"
    if not url.startswith("data:"):
        raise BadRequest(f"{where}: Ollama takes images as data URIs; the URL could not be inlined", param=where)
    return parse_data_uri(url, where)[1]


def _tool_call(i: int, j: int, call) -> dict[str, Any]:
    out: dict[str, Any] = {"function": {"name": call.function.name,
                                        "arguments": tool_arguments(i, j, call.function.arguments)}}
    if call.id:
        out["id"] = call.id
    return out


def _tools(req: ChatRequest) -> list[dict[str, Any]] | None:
    if not req.tools or req.tool_choice == "none":
        return None
    tools = req.tools
    if req.tool_choice is not None and not isinstance(req.tool_choice, str):
        tools = [t for t in tools if t.function.name == req.tool_choice.function.name]
        if not tools:
            raise BadRequest(f"tool_choice names unknown tool {req.tool_choice.function.name!r}", param="tool_choice")
    return [msgspec.to_builtins(t) for t in tools]


def _options(target: Deployment, **values: Any) -> dict[str, Any]:
    opts = dict(target.options)
    opts.update({k: v for k, v in values.items() if v is not None})
    return opts


def _common(body: dict[str, Any], target: Deployment, options: dict[str, Any]) -> dict[str, Any]:
    if options:
        body["options"] = options
    if target.keep_alive is not None:
        body["keep_alive"] = target.keep_alive
    return body


def build_chat(req: ChatRequest, target: Deployment, memo: Mapping[str, dict] = {}) -> UpstreamRequest:
    if req.n is not None and req.n > 1:
        raise BadRequest(f"n={req.n}: model '{req.model}' (Ollama) returns one choice; send n=1", param="n")
    body: dict[str, Any] = {"model": target.model, "messages": _messages(req), "stream": req.stream}
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_object":
        body["format"] = "json"
    elif fmt is not None and fmt.type == "json_schema":
        body["format"] = (fmt.json_schema.schema if fmt.json_schema and fmt.json_schema.schema else "json")
    if req.reasoning_effort is not None:
        if req.reasoning_effort not in _EFFORT_TO_THINK:
            raise BadRequest(f"reasoning_effort must be one of {', '.join(_EFFORT_TO_THINK)}", param="reasoning_effort")
        body["think"] = _EFFORT_TO_THINK[req.reasoning_effort]
    if req.logprobs:
        body["logprobs"] = True
        if req.top_logprobs is not None:
            body["top_logprobs"] = req.top_logprobs
    options = _options(target, num_predict=req.max_output, temperature=req.temperature, top_p=req.top_p,
                       top_k=req.top_k, stop=req.stop_list, seed=req.seed, presence_penalty=req.presence_penalty,
                       frequency_penalty=req.frequency_penalty)
    return UpstreamRequest("POST", api_base(target, DEFAULT_API_BASE) + "/api/chat",
                           orjson.dumps(_common(body, target, options)), _JSON)


# ---------------------------------------------------------------- responses
def _finish(done_reason: str | None, saw_tool: bool) -> str:
    if done_reason == "length":
        return "length"
    return "tool_calls" if saw_tool else "stop"


def _usage(line: _Line) -> Usage:
    return Usage.of(line.prompt_eval_count, line.eval_count)


def parse_chat(body: bytes, target: Deployment) -> ChatCompletion:
    line = _decode(_chat_line, body, target)
    if line.error:
        raise UpstreamError(line.error)
    m = line.message or _Msg()
    calls = [OutToolCall(c.id or new_tool_call_id(), OutFunction(c.function.name, dumps_args(c.function.arguments)))
             for c in m.tool_calls or ()]
    msg = OutMessage(content=m.content if (m.content or not calls) else None)
    if calls:
        msg.tool_calls = calls
    if m.thinking:
        msg.reasoning_content = m.thinking
    return ChatCompletion("", 0, target.name, [Choice(msg, _finish(line.done_reason, bool(calls)))], usage=_usage(line))


async def parse_chat_stream(frames: AsyncIterator[bytes], target: Deployment) -> AsyncIterator[StreamEvent]:
    count = 0
    async for line in _lines(frames, _chat_line, target):
        m = line.message
        if m is not None:
            if m.thinking:
                yield ReasoningDelta(m.thinking)
            if m.content:
                yield TextDelta(m.content)
            for c in m.tool_calls or ():
                yield ToolCallDelta(count, dumps_args(c.function.arguments), c.id or new_tool_call_id(), c.function.name)
                count += 1
    yield UsageEvent(_usage(line))
    yield Finish(_finish(line.done_reason, count > 0))


async def _lines(frames: AsyncIterator[bytes], decoder: msgspec.json.Decoder, target: Deployment) -> AsyncIterator:
    """A stream's lines up to its done line, which comes last; an error line, or no done line, raises."""
    async for frame in frames:
        line = _decode(decoder, frame, target)
        if line.error:
            raise StreamInterrupted(f"Ollama error mid-stream: {line.error}")
        yield line
        if line.done:
            return
    raise StreamInterrupted("Ollama stream ended before its done line")


def _decode(decoder: msgspec.json.Decoder, body: bytes, target: Deployment):
    try:
        return decoder.decode(body)
    except msgspec.DecodeError:
        raise UpstreamError(f"deployment {target.id} sent a reply that is not Ollama's format") from None


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    message = error_text(body, ("error",))
    if status == 400:
        # The model cannot take tools: the server-side tool loop may fall back to injecting results.
        return BadRequest(message, code="tools_unsupported" if "does not support tools" in message else None)
    return from_backend_status(status, message)


# ---------------------------------------------------------------- embeddings
def build_embeddings(req: EmbeddingsRequest, target: Deployment) -> UpstreamRequest:
    if not isinstance(req.input, str) and not all(isinstance(x, str) for x in req.input):
        raise BadRequest("input: Ollama embeds text; token arrays are not supported", param="input")
    body: dict[str, Any] = {"model": target.model, "input": req.input, "truncate": True}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    return UpstreamRequest("POST", api_base(target, DEFAULT_API_BASE) + "/api/embed",
                           orjson.dumps(_common(body, target, dict(target.options))), _JSON)


def parse_embeddings(body: bytes, target: Deployment) -> Vectors:
    reply = _decode(_embed, body, target)
    return Vectors(reply.embeddings, reply.prompt_eval_count)


# ---------------------------------------------------------------- completions (FIM)
def build_completion(req: CompletionRequest, target: Deployment) -> UpstreamRequest:
    prompt = req.prompt
    if isinstance(prompt, list):
        if len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        else:
            raise BadRequest("prompt: Ollama takes a single string prompt", param="prompt")
    if req.n is not None and req.n > 1:
        raise BadRequest(f"n={req.n}: Ollama returns one choice; send n=1", param="n")
    prompt, suffix, raw = _fim(prompt or "", req.suffix, target.fim_format)
    body: dict[str, Any] = {"model": target.model, "prompt": prompt, "stream": req.stream}
    if suffix is not None:
        body["suffix"] = suffix
    if raw:
        body["raw"] = True  # the prompt is the model's whole input: no chat template around it
    options = _options(target, num_predict=req.max_tokens, temperature=req.temperature, top_p=req.top_p,
                       stop=req.stop_list, seed=req.seed, presence_penalty=req.presence_penalty,
                       frequency_penalty=req.frequency_penalty)
    return UpstreamRequest("POST", api_base(target, DEFAULT_API_BASE) + "/api/generate",
                           orjson.dumps(_common(body, target, options)), _JSON)


def _fim(prompt: str, suffix: str | None, fmt: str | None) -> tuple[str, str | None, bool]:
    """(prompt, suffix for Ollama, raw). A prompt that is already a filled FIM template (Continue's way) goes
    raw, rewritten into the model's fim_format when one is set; with a fim_format, OpenAI's `suffix` is
    written into the model's tokens here too; fim_format "raw" sends every prompt as it is."""
    if fmt == "raw":
        return prompt, suffix, True
    filled = fim.split(prompt) if suffix is None else None
    if fmt:
        if filled is not None:
            return fim.render(fmt, filled.prefix, filled.suffix), None, True
        if suffix is not None:
            return fim.render(fmt, prompt, suffix), None, True
        return prompt, None, False
    return prompt, suffix, filled is not None


def parse_completion(body: bytes, target: Deployment) -> TextCompletion:
    line = _decode(_gen_line, body, target)
    if line.error:
        raise UpstreamError(line.error)
    choice = CompletionChoice(line.response, 0, _finish(line.done_reason, False))
    return TextCompletion("", 0, target.name, [choice], usage=_usage(line))


async def parse_completion_stream(frames: AsyncIterator[bytes], target: Deployment) -> AsyncIterator[StreamEvent]:
    async for line in _lines(frames, _gen_line, target):
        if line.response:
            yield TextDelta(line.response)
    yield UsageEvent(_usage(line))
    yield Finish(_finish(line.done_reason, False))


class _Loaded(msgspec.Struct):
    name: str = ""
    model: str = ""
    size: int = 0
    size_vram: int = 0
    expires_at: str = ""
    context_length: int = 0


class _Ps(msgspec.Struct):
    models: list[_Loaded] = []


_ps = msgspec.json.Decoder(_Ps)


def with_tag(model: str) -> str:
    """Ollama's full name for a model: `llama3` is `llama3:latest`."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


def parse_loaded(body: bytes) -> list[dict[str, Any]]:
    """/api/ps -> the loaded models (ValueError when the body is not Ollama's)."""
    try:
        return [msgspec.to_builtins(m) | {"name": m.name or m.model} for m in _ps.decode(body).models]
    except msgspec.DecodeError as e:
        raise ValueError(f"not an /api/ps reply: {e}") from None
