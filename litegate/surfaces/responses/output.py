"""Output items and the Response object, built the one way both the stream and whole replies use.

A tool call is reported as the client declared its tool (openai-responses.md §7): a custom tool's
call as `custom_tool_call` with its free text, `local_shell` as a `local_shell_call` with an exec
action, a namespaced function with its `namespace`; arguments an emulated tool cannot be read
from fall back to a plain `function_call`, so nothing the model said is lost.
"""

from __future__ import annotations

from typing import Any

import orjson

from litegate.surfaces.responses.items import ToolKind, encode_reasoning
from litegate.wire import Annotation


def message_item(item_id: str, text: str, annotations: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}]}


def reasoning_item(item_id: str, text: str, encrypted: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}
    if encrypted:
        body["encrypted_content"] = encode_reasoning(text)
    return body


def call_item(item_id: str, call_id: str, name: str, arguments: str, tool: ToolKind, status: str) -> dict[str, Any]:
    """The output item of one tool call, by the kind of tool the client declared."""
    if tool.kind != "function":
        parsed = json_object(arguments)
        if tool.kind == "custom" and parsed is not None:
            value = parsed.get("input")
            body = {"id": item_id, "type": "custom_tool_call", "call_id": call_id, "name": tool.name,
                    "input": value if isinstance(value, str) else arguments}
            if tool.namespace:
                body["namespace"] = tool.namespace
            return body
        command = parsed.get("command") if parsed is not None else None
        if tool.kind == "local_shell" and isinstance(command, list) and all(isinstance(c, str) for c in command):
            action: dict[str, Any] = {"type": "exec", "command": command, "env": {}}
            if isinstance(parsed.get("workdir"), str):
                action["working_directory"] = parsed["workdir"]
            if isinstance(parsed.get("timeout_ms"), int):
                action["timeout_ms"] = parsed["timeout_ms"]
            return {"id": item_id, "type": "local_shell_call", "call_id": call_id, "status": status, "action": action}
        tool = ToolKind("function", name)  # unreadable arguments for an emulated tool: the plain call
    body = {"id": item_id, "type": "function_call", "status": status, "arguments": arguments, "call_id": call_id,
            "name": tool.name or name}
    if tool.namespace:
        body["namespace"] = tool.namespace
    return body


def citation(a: Annotation) -> dict[str, Any]:
    c = a.url_citation
    return {"type": "url_citation", "url": c.url, "title": c.title or c.url, "start_index": c.start_index,
            "end_index": c.end_index}


def response_object(response_id: str, created_at: int, status: str, echo: dict[str, Any], output: list,
                    usage: dict | None, *, error: dict | None = None, incomplete: dict | None = None,
                    completed_at: int | None = None) -> dict[str, Any]:
    body = {"id": response_id, "object": "response", "created_at": created_at, "status": status,
            "background": False, "completed_at": completed_at, "error": error, "incomplete_details": incomplete,
            **echo, "output": output}
    if usage is not None:  # the spec's usage is an object or absent, never null
        body["usage"] = usage
    return body


def cut_reason(finish_reason: str | None) -> str | None:
    """incomplete_details.reason for a finish_reason that cut the answer short (None: it completed)."""
    return {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish_reason or "")


def json_object(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
