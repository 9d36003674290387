"""A whole Messages response (anthropic-messages.md §3), from stream events or a ChatCompletion.

`MessageBuilder` runs the same block rules as the stream (blocks.py) but collects dicts, so a
non-streaming answer holds exactly what the stream would have: thinking, text, tool_use with
its input parsed (`{}` for empty or invalid JSON, as the API needs an object), server search
blocks. `from_completion` feeds a whole ChatCompletion through it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litegate.surfaces.base import json_object
from litegate.wire import ChatCompletion, StreamEvent, Usage
from .blocks import SIGNATURE, Blocks, message_id, stop_reason, tool_id

_INPUT_BLOCKS = ("tool_use", "server_tool_use")


class MessageBuilder(Blocks):
    """StreamEvents in, one Messages response object out."""

    def __init__(self, model: str, *, input_estimate: int = 0, id: str | None = None) -> None:
        super().__init__(input_estimate)
        self.id = id or message_id()
        self.model = model
        self.content: list[dict[str, Any]] = []
        self._json: list[str] = []

    def _message_start(self) -> None:
        pass

    def _start(self, block: dict[str, Any]) -> None:
        self.content.append(dict(block))
        self._json = []

    def _delta(self, kind: str, key: str, value: str) -> None:
        block = self.content[-1]
        if key == "partial_json":
            self._json.append(value)
        elif key == "signature":
            block["signature"] = value
        else:
            block[key] += value

    def _stop(self) -> None:
        block = self.content[-1]
        if block["type"] in _INPUT_BLOCKS:
            block["input"] = json_object("".join(self._json)) or {}

    def feed(self, ev: StreamEvent) -> None:
        self._event(ev)

    def result(self) -> dict[str, Any]:
        reason = self._end()
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": self.content, "stop_reason": reason, "stop_sequence": None, "usage": self.final_usage()}


def from_completion(done: ChatCompletion, model: str, *, input_estimate: int = 0) -> dict[str, Any]:
    """A ChatCompletion (choice 0) as a Messages response under the client's model name: the blocks
    the builder would make from the same answer, built directly (this is the non-streaming hot path)."""
    content: list[dict[str, Any]] = []
    reason, calls = "stop", 0
    if done.choices:
        choice = done.choices[0]
        msg, reason = choice.message, choice.finish_reason
        if isinstance(msg.reasoning_content, str) and msg.reasoning_content:
            content.append({"type": "thinking", "thinking": msg.reasoning_content, "signature": SIGNATURE})
        if msg.content:
            content.append({"type": "text", "text": msg.content})
        for call in msg.tool_calls or ():
            content.append({"type": "tool_use", "id": tool_id(call.id), "name": call.function.name,
                            "input": json_object(call.function.arguments) or {}})
            calls += 1
    counts = Blocks(input_estimate)
    counts.usage = done.usage if isinstance(done.usage, Usage) else None
    return {"id": message_id(), "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason(reason, calls > 0), "stop_sequence": None, "usage": counts.final_usage()}


def model_list(models: list[tuple[str, int]]) -> dict:
    """GET /v1/models in Anthropic's list shape (Claude Code's gateway model discovery): (id, created) pairs."""
    data = [{"type": "model", "id": name, "display_name": name,
             "created_at": dt.datetime.fromtimestamp(created, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            for name, created in models]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}
