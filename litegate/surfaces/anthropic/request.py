"""Anthropic Messages request body -> the internal chat form (anthropic-messages.md §9, mapping.md §7.1).

Owns the translation of the Messages body (body.py) into a `wire.ChatRequest`: system string or blocks (the per-conversation
attribution block dropped: it defeats a local model's prefix cache), user blocks (text, base64 or
URL images, tool_result -> tool messages first, then the rest of the turn), assistant blocks
(text, tool_use with its id kept, thinking -> reasoning_content, replayed server web searches ->
a web_search call and its result), tools (input_schema -> parameters; `web_search_*` server
tools -> litegate's own web search), tool_choice, thinking -> reasoning_effort, sampling, stop
sequences, metadata.user_id and output_config. Every fault is a BadRequest naming the field as
the client wrote it (`messages[2].content[0].tool_use_id`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Union

import msgspec
import orjson

from litegate.errors import BadRequest
from litegate.surfaces.base import untoken
from litegate.surfaces.anthropic.body import (
    Block, InMessage, InTool, InToolChoice, Metadata, MessagesRequest, OutputConfig, Thinking,
)
from litegate.wire import (
    ChatRequest, ContentPart, FunctionCall, FunctionDef, ImageURL, JsonSchemaFormat, Message, NamedToolChoice,
    ResponseFormat, StreamOptions, Tool, ToolCall, ToolChoiceFunction,
)

ATTRIBUTION_PREFIX = "x-anthropic-billing-header:"  # Claude Code's first system block (§9.2)
WEB_SEARCH_PREFIX = "web_search_"  # web_search_20250305, web_search_20260209, ...
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_USER_ID_MAX = 64  # longer opaque ids (Claude Code's JSON user_id) are hashed to this length


class WebSearch(msgspec.Struct, frozen=True):
    """The request declared Anthropic's server web search tool; litegate runs it (§9.6)."""

    name: str = "web_search"
    max_uses: int | None = None
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()




# ---------------------------------------------------------------- the whole request
def to_chat(req: MessagesRequest) -> tuple[ChatRequest, WebSearch | None]:
    """The chat form of a Messages request, and the web search it asks litegate to run (if any)."""
    if req.max_tokens is not None and req.max_tokens < 1:
        raise BadRequest("max_tokens: must be at least 1", param="max_tokens")
    if req.temperature is not None and not 0 <= req.temperature <= 1:
        raise BadRequest("temperature: must be between 0 and 1", param="temperature")
    if not req.messages:
        raise BadRequest("messages: at least one message is required", param="messages")
    messages = _system(req.system)
    _check_tool_pairs(req.messages)
    for i, m in enumerate(req.messages):
        messages += _user(i, m.content) if m.role == "user" else _assistant(i, m.content)
    tools, search = _tools(req.tools)
    chat = ChatRequest(
        model=req.model, messages=messages, stream=req.stream,
        stream_options=StreamOptions(include_usage=True) if req.stream else None,
        max_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
        stop=list(req.stop_sequences) if req.stop_sequences else None,
        user=_user_id(req.metadata), tools=tools or None,
        reasoning_effort=_effort(req.thinking, req.output_config),
        response_format=_format(req.output_config),
    )
    _tool_choice(req.tool_choice, chat, {t.function.name for t in tools})
    if search is not None:
        chat.web_search_options = {}
    return chat, search


# ---------------------------------------------------------------- system
def is_attribution(text: str) -> bool:
    return text.lstrip().startswith(ATTRIBUTION_PREFIX)


def _system(system: Union[str, list[Block], None]) -> list[Message]:
    if system is None:
        return []
    if isinstance(system, str):
        return [Message("system", system)] if system.strip() else []
    texts = []
    for j, b in enumerate(system):
        if b.type != "text":
            raise BadRequest(f"system[{j}]: system blocks must be of type 'text', not {b.type!r}",
                             param=f"system[{j}].type")
        if b.text and b.text.strip() and not is_attribution(b.text):
            texts.append(b.text)
    return [Message("system", "\n\n".join(texts))] if texts else []


# ---------------------------------------------------------------- user turns
def _user(i: int, content: Union[str, list[Block]]) -> list[Message]:
    """Tool results become tool messages (first, in order); the rest of the turn one user message."""
    if isinstance(content, str):
        return [Message("user", content)]
    out: list[Message] = []
    parts: list[ContentPart] = []
    result_images: list[ContentPart] = []  # chat tool messages carry text only (mapping.md §7.4)
    for j, b in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        if b.type == "text":
            if b.text:
                parts.append(ContentPart("text", text=b.text))
        elif b.type == "image":
            parts.append(_image(where, b))
        elif b.type == "tool_result":
            text, images = _result_content(where, b)
            out.append(Message("tool", text, tool_call_id=b.tool_use_id))
            result_images += images
        elif b.type == "document" and b.source is not None and b.source.type == "text":
            parts.append(ContentPart("text", text=b.source.data or ""))
        elif b.type in ("search_result", "container_upload"):
            parts.append(ContentPart("text", text=_flatten(b)))
        else:
            raise BadRequest(f"{where}: content blocks of type {b.type!r} are not supported in a user turn "
                             "for this model", param=f"{where}.type")
    parts = result_images + parts
    if parts:
        text_only = all(p.type == "text" for p in parts)
        out.append(Message("user", "\n\n".join(p.text or "" for p in parts) if text_only else parts))
    elif not out:
        raise BadRequest(f"messages[{i}]: a user turn needs at least one non-empty block", param=f"messages[{i}]")
    return out


def _image(where: str, b: Block) -> ContentPart:
    src = b.source
    if src is None:
        raise BadRequest(f"{where}.source: an image block needs a source", param=f"{where}.source")
    if src.type == "url" and src.url and src.url.startswith(("http://", "https://")):
        return ContentPart("image_url", image_url=ImageURL(src.url))
    if src.type != "base64":
        raise BadRequest(f"{where}.source.type: image sources of type {src.type!r} are not supported; "
                         "use base64 or an http(s) url", param=f"{where}.source.type")
    mime = (src.media_type or "").lower()
    if mime not in _IMAGE_TYPES:
        raise BadRequest(f"{where}.source.media_type: {src.media_type!r} is not one of "
                         f"{', '.join(sorted(_IMAGE_TYPES))}", param=f"{where}.source.media_type")
    data = src.data or ""
    try:
        base64.b64decode(data[:4096 - 4096 % 4], validate=True)  # a prefix: the whole image is the backend's job
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}.source.data: not valid base64 (send raw base64, no data: prefix)",
                         param=f"{where}.source.data") from None
    if not data:
        raise BadRequest(f"{where}.source.data: empty image data", param=f"{where}.source.data")
    return ContentPart("image_url", image_url=ImageURL(f"data:{mime};base64,{data}"))


def _result_content(where: str, b: Block) -> tuple[str, list[ContentPart]]:
    text = b.content if isinstance(b.content, str) else ""
    images: list[ContentPart] = []
    if isinstance(b.content, list):
        texts = []
        for k, part in enumerate(b.content):
            if part.type == "text":
                texts.append(part.text or "")
            elif part.type == "image":
                images.append(_image(f"{where}.content[{k}]", part))
            else:
                texts.append(_flatten(part))
        text = "\n".join(t for t in texts if t)
    if b.is_error:
        text = f"Error: {text}" if text else "Error"  # chat has no is_error: say it in the content
    return text, images


def _flatten(b: Block) -> str:
    """Text of a block the chat form has no shape for (search results, documents, ...)."""
    if b.text:
        return b.text
    if isinstance(b.content, str):
        return b.content
    if isinstance(b.content, list):
        return "\n".join(_flatten(p) for p in b.content)
    return ""


# ---------------------------------------------------------------- assistant turns
def _assistant(i: int, content: Union[str, list[Block]]) -> list[Message]:
    """One assistant message per stretch; a replayed server web search splits the turn (§9.6)."""
    if isinstance(content, str):
        return [Message("assistant", content)] if content.strip() else []
    out: list[Message] = []
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []

    def flush() -> None:
        if texts or calls or thinking:
            out.append(Message("assistant", "".join(texts) or None, tool_calls=list(calls) or None,
                               reasoning_content="\n".join(thinking) or None))
        texts.clear(), thinking.clear(), calls.clear()

    for j, b in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        if b.type == "text":
            texts.append(b.text or "")
        elif b.type == "thinking":
            if b.thinking:
                thinking.append(b.thinking)
        elif b.type == "redacted_thinking":
            pass  # opaque to every backend but Anthropic, which is reached natively
        elif b.type == "tool_use":
            calls.append(_call(where, b))
        elif b.type == "server_tool_use":
            flush()
            out.append(Message("assistant", None, tool_calls=[_call(where, b)]))
        elif b.type == "web_search_tool_result":
            out.append(Message("tool", search_result_text(b.content), tool_call_id=b.tool_use_id))
        else:
            raise BadRequest(f"{where}: content blocks of type {b.type!r} are not supported in an assistant "
                             "turn for this model", param=f"{where}.type")
    flush()
    return out


def _call(where: str, b: Block) -> ToolCall:
    if not b.id or not b.name:
        raise BadRequest(f"{where}: a {b.type} block needs an id and a name", param=f"{where}.id")
    return ToolCall(FunctionCall(b.name, orjson.dumps(b.input or {}).decode()), b.id)


def search_result_text(content: Union[str, list[Block], dict[str, Any], None]) -> str:
    """What a replayed web search found, as text for the model (snippets decoded from
    encrypted_content, which litegate wrote itself as a surfaces.base token; anyone else's reads as "")."""
    if isinstance(content, dict):
        return f"Web search failed: {content.get('error_code', 'unavailable')}"
    if not isinstance(content, list):
        return ""
    lines = []
    for r in content:
        snippet = (untoken(r.encrypted_content) or b"").decode("utf-8", "replace")
        lines.append(f"{r.title or r.url}\n{r.url}\n{snippet}".rstrip())
    return "\n\n".join(lines)


def _check_tool_pairs(messages: list[InMessage]) -> None:
    """Each tool_result answers a tool_use of the assistant turn just before it, and each tool_use is
    answered in the next user turn: Anthropic's own rule, checked here so every backend gets a
    history it accepts and the client a 400 in its own terms."""
    pending: dict[str, int] = {}
    for i, m in enumerate(messages):
        blocks = m.content if isinstance(m.content, list) else []
        if m.role == "assistant":
            if pending:
                _unanswered(i - 1, pending)
            pending = {b.id: i for b in blocks if b.type == "tool_use" and b.id}
            continue
        for j, b in enumerate(blocks):
            if b.type != "tool_result":
                continue
            if b.tool_use_id not in pending:
                where = f"messages[{i}].content[{j}].tool_use_id"
                raise BadRequest(f"{where}: unexpected tool_use_id {b.tool_use_id!r}: it answers no tool_use "
                                 "block of the previous assistant message", param=where)
            del pending[b.tool_use_id]
        if pending:
            _unanswered(i, pending)
    # a trailing assistant turn with tool_use (a prefill) is left for the backend to continue


def _unanswered(i: int, pending: dict[str, int]) -> None:
    ids = ", ".join(pending)
    raise BadRequest(f"messages[{i}]: tool_use ids were found without tool_result blocks immediately after: "
                     f"{ids}. Each tool_use block must have a corresponding tool_result block in the next "
                     "message.", param=f"messages[{i}].content")


# ---------------------------------------------------------------- tools and options
def _tools(tools: list[InTool] | None) -> tuple[list[Tool], WebSearch | None]:
    out: list[Tool] = []
    search = None
    for k, t in enumerate(tools or ()):
        if t.type is None or t.type == "custom":
            schema = t.input_schema if t.input_schema is not None else {"type": "object", "properties": {}}
            if schema.get("type", "object") != "object":
                where = f"tools[{k}].input_schema.type"
                raise BadRequest(f"{where}: tool input_schema must be of type 'object'", param=where)
            out.append(Tool(FunctionDef(t.name, t.description, schema)))
        elif t.type.startswith(WEB_SEARCH_PREFIX):
            search = WebSearch(t.name, t.max_uses, tuple(t.allowed_domains or ()), tuple(t.blocked_domains or ()))
        else:
            raise BadRequest(f"tools[{k}].type: server tool {t.type!r} is only available on Anthropic models; "
                             "litegate runs web_search_* itself for other models", param=f"tools[{k}].type")
    return out, search


def _tool_choice(tc: InToolChoice | None, chat: ChatRequest, names: set[str]) -> None:
    if tc is None:
        return
    if tc.type == "tool":
        if not tc.name:
            raise BadRequest("tool_choice.name: required when tool_choice.type is 'tool'", param="tool_choice.name")
        if tc.name not in names:
            raise BadRequest(f"tool_choice.name: {tc.name!r} is not one of the tools", param="tool_choice.name")
        chat.tool_choice = NamedToolChoice(ToolChoiceFunction(tc.name))
    elif tc.type == "any":
        if not names:
            raise BadRequest("tool_choice: type 'any' needs tools", param="tool_choice")
        chat.tool_choice = "required"
    else:
        chat.tool_choice = tc.type  # auto / none: the same words in chat
    if tc.disable_parallel_tool_use and names:
        chat.parallel_tool_calls = False


def _effort(thinking: Thinking | None, config: OutputConfig | None) -> str | None:
    """thinking -> reasoning_effort (mapping.md §7.1): budget <=4096 low, <=16384 medium, else high."""
    effort = config.effort if config is not None else None
    if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
        raise BadRequest("output_config.effort: must be one of low, medium, high, xhigh, max",
                         param="output_config.effort")
    effort = "high" if effort in ("xhigh", "max") else effort  # the top level every backend knows
    if thinking is None:
        return effort
    if thinking.type == "disabled":
        return "none"
    if thinking.type == "adaptive":
        return effort or "medium"
    budget = thinking.budget_tokens
    if budget is None or budget < 1024:
        raise BadRequest("thinking.budget_tokens: must be at least 1024", param="thinking.budget_tokens")
    return "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"


def _format(config: OutputConfig | None) -> ResponseFormat | None:
    if config is None or config.format is None:
        return None
    if config.format.type != "json_schema" or config.format.schema is None:
        raise BadRequest("output_config.format: only {type: 'json_schema', schema} is supported",
                         param="output_config.format")
    return ResponseFormat("json_schema", JsonSchemaFormat("response", config.format.schema))


def _user_id(metadata: Metadata | None) -> str | None:
    user = metadata.user_id if metadata is not None else None
    if not user or len(user) <= _USER_ID_MAX:
        return user or None
    return "lg-" + hashlib.sha256(user.encode()).hexdigest()[:32]  # stable, and no account details passed on
