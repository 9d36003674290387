"""Shared, pure helpers for reading OpenAI messages: text of a content value, data URIs, tool names,
and the turns of vendors whose roles must alternate.

Every provider needs the same reading of a client's history (mapping.md §1): which tool a
`tool` message answers, whether a tool call's arguments are JSON, what an image part holds.
"""

from __future__ import annotations

import binascii
import base64
from typing import Any

import orjson

from litegate.errors import BadRequest
from litegate.wire import ContentPart, Content, ImageURL, Message


def text_of(content: Content, sep: str = "\n") -> str:
    """All text of a content value (string, parts array or null), parts joined with `sep`."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return sep.join(p.text for p in content if p.text is not None and p.type in ("text", "refusal", "input_text"))


def image_url_of(part: ContentPart) -> str | None:
    if part.type != "image_url" or part.image_url is None:
        return None
    return part.image_url.url if isinstance(part.image_url, ImageURL) else part.image_url


def parse_data_uri(url: str, where: str) -> tuple[str, str]:
    """`data:<mime>;base64,<data>` -> (mime, base64 data); a 400 naming `where` otherwise."""
    head, sep, data = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise BadRequest(f"{where}: image data URI must look like data:<type>;base64,<data>", param=where)
    mime = head[5:-7] or "image/png"
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}: image data is not valid base64", param=where) from None
    return mime, data


def tool_arguments(msg_index: int, call_index: int, arguments: str) -> Any:
    """A client's tool-call arguments string as JSON (empty means no arguments)."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        where = f"messages[{msg_index}].tool_calls[{call_index}].function.arguments"
        raise BadRequest(f"{where} is not valid JSON", param=where) from None
    if not isinstance(value, dict):
        where = f"messages[{msg_index}].tool_calls[{call_index}].function.arguments"
        raise BadRequest(f"{where} must encode a JSON object", param=where)
    return value


def tool_name_for(messages: list[Message], index: int) -> str:
    """Name of the tool a `tool` message answers: last earlier assistant call with its id."""
    msg = messages[index]
    if msg.tool_call_id:
        for earlier in reversed(messages[:index]):
            for call in earlier.tool_calls or ():
                if call.id == msg.tool_call_id:
                    return call.function.name
    if msg.name:
        return msg.name
    where = f"messages[{index}].tool_call_id"
    raise BadRequest(
        f"{where}: no earlier assistant tool call has id {msg.tool_call_id!r}", param=where
    )


def dumps_args(args: Any) -> str:
    """Arguments object -> the JSON string OpenAI clients expect (`{}` for none)."""
    if isinstance(args, str):
        return args or "{}"
    return orjson.dumps(args if args is not None else {}).decode()


def add_turn(turns: list[dict[str, Any]], role: str, items: list[dict[str, Any]], key: str) -> None:
    """A turn's `items` under `key`, merged into the last turn when it has the same role (vendors whose
    roles must alternate); nothing for no items."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})
