"""Ollama request bodies (/api/chat, /api/generate, /api/embed, /api/embeddings, /api/show) in.

Each body is decoded with the client's habits in mind (ollama.md §8, mapping.md §7.1) and turned
into the internal chat form: images are bare base64 (MIME sniffed, made a data URI), tool-call
arguments are objects, replayed tool calls often have no id (Home Assistant) so results are
paired with calls by id, else tool name, else position, and `options` carry the sampling knobs.
What only an Ollama backend understands (num_ctx, keep_alive, raw, templates, suffix) is kept on
`Inbound` and in the untouched body, which is forwarded as is when an Ollama model answers.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import orjson

from litegate.errors import BadRequest
from litegate.wire import (
    ChatRequest, ContentPart, EmbeddingsRequest, FunctionCall, ImageURL, JsonSchemaFormat, Message,
    ResponseFormat, Tool, ToolCall,
)
from litegate.surfaces.base import decode


class _In(msgspec.Struct, omit_defaults=True):
    """Unknown fields are ignored, as Ollama ignores them."""


class _Fn(_In):
    name: str = ""
    arguments: Any = None
    index: int | None = None


class _Call(_In):
    function: _Fn
    id: str | None = None


class _Msg(_In):
    role: str
    content: str | None = ""
    images: list[str] | None = None
    thinking: str | None = None
    tool_calls: list[_Call] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None


KeepAlive = str | int | float | None


class _Common(_In):
    model: str = ""
    format: Any = None
    options: dict[str, Any] | None = None
    stream: bool = True  # Ollama streams unless told not to
    keep_alive: KeepAlive = None
    think: bool | str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None


class ChatBody(_Common):
    messages: list[_Msg] = []
    tools: list[Tool] | None = None


class GenerateBody(_Common):
    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    raw: bool | None = None
    images: list[str] | None = None
    context: list[int] | None = None


class EmbedBody(_In):
    model: str = ""
    input: str | list[str] = ""
    truncate: bool | None = None
    dimensions: int | None = None
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None


class EmbeddingsBody(_In):
    model: str = ""
    prompt: str = ""
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None


class ShowBody(_In):
    model: str = ""
    name: str = ""  # the older spelling
    verbose: bool | None = None


_chat = msgspec.json.Decoder(ChatBody)
_generate = msgspec.json.Decoder(GenerateBody)
_embed = msgspec.json.Decoder(EmbedBody)
_embeddings = msgspec.json.Decoder(EmbeddingsBody)
_show = msgspec.json.Decoder(ShowBody)


@dataclass(slots=True)
class Inbound:
    """A decoded /api/chat or /api/generate request."""

    kind: Literal["chat", "generate"]
    model: str  # as the client wrote it ("gpt:latest"), echoed on every reply line
    chat: ChatRequest  # the internal form, for routing rules and for non-Ollama models
    stream: bool
    raw: bytes  # the client's body, forwarded (model renamed) when an Ollama model answers
    load: str | None = None  # "load" / "unload": nothing to answer (no messages, no prompt)
    keep_alive: KeepAlive = None
    num_ctx: int | None = None
    native_only: str | None = None  # why only an Ollama model can answer this request


@dataclass(frozen=True, slots=True)
class EmbedCall:
    """A decoded /api/embed or /api/embeddings request; `request` is None for empty input."""

    model: str
    request: EmbeddingsRequest | None
    legacy: bool  # /api/embeddings: one vector under "embedding"
    raw: bytes


def _model(model: str) -> str:
    if not model.strip():
        raise BadRequest("model is required", param="model")
    return model


# ---------------------------------------------------------------- decoders
def chat(raw: bytes) -> Inbound:
    body: ChatBody = decode(_chat, raw)
    model = _model(body.model)
    messages = _messages(body.messages)
    req = _chat_request(body, model, messages, tools=body.tools or None)
    load = _load(body.keep_alive) if not body.messages else None
    return _inbound("chat", body, model, req, raw, load, None)


def generate(raw: bytes) -> Inbound:
    body: GenerateBody = decode(_generate, raw)
    model = _model(body.model)
    messages = []
    if body.system:
        messages.append(Message("system", body.system))
    messages.append(_user(body.prompt or "", body.images, "images"))
    req = _chat_request(body, model, messages, tools=None)
    load = _load(body.keep_alive) if not body.prompt and not body.images else None
    native_only = None
    if body.suffix:
        native_only = "suffix (fill-in-the-middle) needs an Ollama model that supports insert"
    return _inbound("generate", body, model, req, raw, load, native_only)


def embed(raw: bytes) -> EmbedCall:
    body: EmbedBody = decode(_embed, raw)
    model = _model(body.model)
    empty = body.input == [] or body.input == ""
    req = None if empty else EmbeddingsRequest(model, body.input, dimensions=body.dimensions)
    return EmbedCall(model, req, False, raw)


def embeddings(raw: bytes) -> EmbedCall:
    body: EmbeddingsBody = decode(_embeddings, raw)
    model = _model(body.model)
    return EmbedCall(model, EmbeddingsRequest(model, body.prompt) if body.prompt else None, True, raw)


def show(raw: bytes) -> ShowBody:
    """The model /api/show asks about (`model`, or the legacy `name`)."""
    body: ShowBody = decode(_show, raw)
    return ShowBody(_model(body.model or body.name), verbose=body.verbose)


def _inbound(kind, body: _Common, model: str, req: ChatRequest, raw: bytes, load, native_only) -> Inbound:
    num_ctx = body.options.get("num_ctx") if body.options else None  # checked in _apply_options
    return Inbound(kind, model, req, body.stream, raw, load, body.keep_alive,
                   None if num_ctx is None else int(num_ctx), native_only)


def _load(keep_alive: KeepAlive) -> str:
    """An empty request loads the model, or unloads it with keep_alive 0 (Open WebUI's unload)."""
    return "unload" if keep_alive in (0, "0", "0s", "0m", "0h") else "load"


# ---------------------------------------------------------------- the chat request
_THINK: dict[Any, str | None] = {
    # A plain `false` sends nothing rather than "none": a model that cannot reason rejects any effort.
    True: "medium", False: None, "low": "low", "medium": "medium", "high": "high", "max": "high",
}


def _chat_request(body: _Common, model: str, messages: list[Message], tools: list[Tool] | None) -> ChatRequest:
    if body.think is not None and body.think not in _THINK:
        raise BadRequest(f"invalid think value {body.think!r}: send true, false, \"low\", \"medium\" or \"high\"",
                         param="think")
    if body.top_logprobs is not None and not 0 <= body.top_logprobs <= 20:
        raise BadRequest("top_logprobs must be between 0 and 20", param="top_logprobs")
    req = ChatRequest(model=model, messages=messages, stream=body.stream, tools=tools,
                      response_format=_format(body.format),
                      reasoning_effort=_THINK.get(body.think) if body.think is not None else None,
                      logprobs=body.logprobs, top_logprobs=body.top_logprobs)
    if body.options:
        _apply_options(req, body.options)
    return req


def _format(value: Any) -> ResponseFormat | None:
    if value is None or value == "":
        return None
    if value == "json":
        return ResponseFormat("json_object")
    if isinstance(value, dict):
        return ResponseFormat("json_schema", JsonSchemaFormat("response", schema=value))
    raise BadRequest('format must be "json" or a JSON schema object', param="format")


# Ollama option -> (chat field or None when only Ollama reads it, whole number?)
_OPTIONS: dict[str, tuple[str | None, bool]] = {
    "temperature": ("temperature", False), "top_p": ("top_p", False), "presence_penalty": ("presence_penalty", False),
    "frequency_penalty": ("frequency_penalty", False), "seed": ("seed", True), "num_predict": ("max_tokens", True),
    "top_k": ("top_k", True), "num_ctx": (None, True),
}


def _stop(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return value or None
    raise BadRequest("options.stop must be a list of strings", param="options.stop")


def _apply_options(req: ChatRequest, opts: dict[str, Any]) -> None:
    """Ollama options -> the chat fields they mean (one pass over what the client set); runner
    settings (num_gpu, ...) matter to Ollama only; num_ctx is checked here and kept on Inbound."""
    for key, value in opts.items():
        if value is None:
            continue
        if key == "stop":
            req.stop = _stop(value)
            continue
        known = _OPTIONS.get(key)
        if known is None:
            continue
        field, whole = known
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadRequest(f"options.{key} must be a number, not {value!r}", param=f"options.{key}")
        if whole:
            if value != int(value):
                raise BadRequest(f"options.{key} must be a whole number, not {value!r}", param=f"options.{key}")
            value = int(value)
        if field == "max_tokens" and value <= 0:  # -1: no limit, -2: fill the context
            continue
        if field is not None:
            setattr(req, field, value)


# ---------------------------------------------------------------- messages
_ROLES = ("system", "user", "assistant", "tool")


def _messages(msgs: list[_Msg]) -> list[Message]:
    out: list[Message] = []
    open_calls: list[ToolCall] = []  # calls of the latest assistant turn not yet answered
    for i, m in enumerate(msgs):
        role = m.role.lower()
        if role not in _ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {', '.join(_ROLES)}, not {m.role!r}",
                             param=f"messages[{i}].role")
        content = m.content or ""
        if role == "assistant":
            calls = [_call(i, j, c) for j, c in enumerate(m.tool_calls or ())]
            open_calls = list(calls)
            out.append(Message("assistant", content or (None if calls else ""), tool_calls=calls or None,
                               reasoning_content=m.thinking or None))
        elif role == "tool":
            call = _answered(open_calls, m)
            if call is None:
                # A result with no call to answer: chat APIs refuse a tool message like that, so the
                # model reads it as text instead (Ollama itself accepts any history).
                out.append(Message("user", f"[result of tool {m.tool_name or 'call'}]\n{content}"))
            else:
                open_calls.remove(call)
                out.append(Message("tool", content, name=call.function.name, tool_call_id=call.id))
        elif role == "user":
            out.append(_user(content, m.images, f"messages[{i}].images"))
        else:
            out.append(Message("system", content))
    return out


def _call(i: int, j: int, call: _Call) -> ToolCall:
    """A replayed call; one without an id gets one derived from its place, stable across replays."""
    where = f"messages[{i}].tool_calls[{j}].function"
    if not call.function.name:
        raise BadRequest(f"{where}.name is required", param=f"{where}.name")
    return ToolCall(FunctionCall(call.function.name, _arguments(call.function.arguments, where)),
                    id=call.id or f"call_{i}_{j}")


def _arguments(value: Any, where: str) -> str:
    if value is None or value == "":
        return "{}"
    if isinstance(value, str):  # some clients send the OpenAI string form
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRequest(f"{where}.arguments is not a JSON object", param=f"{where}.arguments") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}.arguments must be an object", param=f"{where}.arguments")
    return orjson.dumps(value).decode()


def _answered(open_calls: list[ToolCall], m: _Msg) -> ToolCall | None:
    """The call a tool result answers: by id, else by tool name, else the first one still open."""
    if not open_calls:
        return None
    if m.tool_call_id:
        for call in open_calls:
            if call.id == m.tool_call_id:
                return call
    if m.tool_name:
        for call in open_calls:
            if call.function.name == m.tool_name:
                return call
    return open_calls[0]


# ---------------------------------------------------------------- images
_MAGIC = (("iVBOR", "image/png"), ("/9j/", "image/jpeg"), ("R0lG", "image/gif"), ("UklG", "image/webp"))


def _user(text: str, images: list[str] | None, where: str) -> Message:
    if not images:
        return Message("user", text)
    parts = [ContentPart("text", text=text)] if text else []
    parts += [ContentPart("image_url", image_url=ImageURL(_data_uri(b64, f"{where}[{k}]")))
              for k, b64 in enumerate(images)]
    return Message("user", parts)


def _data_uri(b64: str, where: str) -> str:
    """Bare base64 (Ollama's form) -> a data URI with the type read from the image's first bytes."""
    if b64.startswith("data:"):  # some clients send a data URI anyway
        b64 = b64.partition(",")[2]
    mime = next((m for prefix, m in _MAGIC if b64.startswith(prefix)), None)
    if mime is None:
        raise BadRequest(f"invalid image input: {where} is not a base64 PNG, JPEG, GIF or WebP image", param=where)
    try:
        base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"invalid image input: {where} is not valid base64", param=where) from None
    return f"data:{mime};base64,{b64}"
