"""Output items and the Response object (with the request settings it echoes), built the one way
both the stream and whole replies use.

A tool call is reported as the client declared its tool (openai-responses.md §7): a custom tool's
call as `custom_tool_call` with its free text, `local_shell` as a `local_shell_call` with an exec
action, a namespaced function with its `namespace`; arguments an emulated tool cannot be read
from fall back to a plain `function_call`, so nothing the model said is lost.
"""

from __future__ import annotations

from typing import Any

from litegate.surfaces.base import json_object
from litegate.surfaces.responses.items import ToolKind, encode_reasoning
from litegate.surfaces.responses.types import CreateResponse
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


def echo_of(body: CreateResponse) -> dict[str, Any]:
    """The request settings a Response object repeats (spec-required ones never missing)."""
    fmt = body.text.format if body.text and body.text.format else None
    text: dict[str, Any] = {"format": {k: v for k, v in ((f, getattr(fmt, f)) for f in fmt.__struct_fields__)
                                       if v is not None} if fmt else {"type": "text"}}
    if body.text and body.text.verbosity:
        text["verbosity"] = body.text.verbosity
    reasoning = None
    if body.reasoning is not None:
        reasoning = {"effort": body.reasoning.effort, "summary": body.reasoning.summary or body.reasoning.generate_summary}
    return {"instructions": body.instructions, "max_output_tokens": body.max_output_tokens, "model": body.model,
            "parallel_tool_calls": True if body.parallel_tool_calls is None else body.parallel_tool_calls,
            "previous_response_id": body.previous_response_id, "reasoning": reasoning,
            "store": True if body.store is None else body.store,
            "temperature": 1.0 if body.temperature is None else body.temperature, "text": text,
            "tool_choice": body.tool_choice if body.tool_choice is not None else "auto",
            "tools": [_echo_tool(t) for t in body.tools or ()],
            "top_p": 1.0 if body.top_p is None else body.top_p, "truncation": body.truncation or "disabled",
            "metadata": body.metadata or {},
            **{k: v for k, v in (("prompt_cache_key", body.prompt_cache_key), ("user", body.user),
                                 ("safety_identifier", body.safety_identifier)) if v is not None}}


def _echo_tool(t: dict[str, Any]) -> dict[str, Any]:
    if t.get("type") == "function":  # parameters and strict are schema-required (nullable)
        return {"parameters": None, "strict": None, **t}
    return t
