"""Provider-neutral stream events -> Anthropic content blocks, one open at a time (§4, §9.4).

`Blocks` is the state machine shared by the SSE writer (stream.py) and the whole-reply builder
(reply.py); they differ only in what a block start / delta / stop becomes (frames or dicts).
Rules it owns:
- indexes 0, 1, 2… in order, one block open at a time; text and thinking stream live;
- the first tool call streams live as a `tool_use` block; a parallel call that arrives while
  another is open is buffered whole and emitted after it (blocks must not interleave); a call
  with no argument fragments sends `{}`;
- thinking blocks start with `thinking:""`, `signature:""` and get a `signature_delta` (a
  litegate token: signatures from other backends travel in the tool-call memo) before stopping;
- tool ids Anthropic would reject are rewritten by hash, the same way every time;
- server web searches (wire.ServerToolCall / ServerToolResult from the tool loop) become
  `server_tool_use` + `web_search_tool_result` blocks and are counted for usage.server_tool_use;
- the stop reason: stop -> end_turn (tool_use when a client tool was called), tool_calls ->
  tool_use, length -> max_tokens, content_filter -> refusal.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

from litegate.surfaces.base import token
from litegate.wire import (
    Finish, ReasoningDelta, ServerToolCall, ServerToolResult, Started, TextDelta, ToolCallDelta, Usage, UsageEvent,
)

SIGNATURE = token(b"litegate")  # marks litegate's thinking
SEARCH_ERRORS = frozenset({"unavailable", "max_uses_exceeded", "too_many_requests", "query_too_long",
                           "invalid_tool_input", "request_too_large"})
_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens", "content_filter": "refusal",
         "function_call": "tool_use"}
_ID_OK = re.compile(r"[a-zA-Z0-9_-]{1,128}")


def message_id() -> str:
    return f"msg_lg{random.getrandbits(96):024x}"  # unique, not secret: no system call


def tool_id(call_id: str | None) -> str:
    """A tool-call id as Anthropic clients accept it (^[a-zA-Z0-9_-]+$); others map to a stable hash."""
    if not call_id:
        return f"toolu_lg{random.getrandbits(96):024x}"
    if _ID_OK.fullmatch(call_id):
        return call_id
    return "toolu_lg" + hashlib.sha256(call_id.encode()).hexdigest()[:24]


def stop_reason(reason: str | None, saw_tool: bool) -> str:
    if reason in (None, "stop") and saw_tool:
        return "tool_use"
    return _STOP.get(reason or "stop", "end_turn")


class _Tool:
    __slots__ = ("id", "name", "parts")

    def __init__(self, id: str, name: str, first: str) -> None:
        self.id, self.name, self.parts = id, name, [first] if first else []


class Blocks:
    """Feed StreamEvents; subclasses turn block starts, deltas and stops into output."""

    def __init__(self, input_estimate: int) -> None:
        self.input_estimate = input_estimate  # chars/4 of the prompt, until the backend counts it
        self.index = -1
        self.open: str | None = None  # "text" | "thinking" | "tool_use" while a block is open
        self.open_tool = -1  # chat index of the open tool_use block
        self.args_sent = False
        self.buffered: dict[int, _Tool] = {}
        self.closed_tools: set[int] = set()
        self.saw_tool = False
        self.searches = 0
        self.reason: str | None = None
        self.usage: Usage | None = None
        self.started = False

    # ---- hooks
    def _message_start(self) -> None:
        raise NotImplementedError

    def _start(self, block: dict[str, Any]) -> None:
        raise NotImplementedError

    def _delta(self, kind: str, key: str, value: str) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    # ---- events
    def _event(self, ev: Any) -> None:
        t = type(ev)
        if t is TextDelta:
            if ev.text:
                self._begin("text")
                self._delta("text_delta", "text", ev.text)
        elif t is ReasoningDelta:
            if ev.text:
                self._begin("thinking")
                self._delta("thinking_delta", "thinking", ev.text)
        elif t is ToolCallDelta:
            self._tool(ev)
        elif t is Finish:
            self.reason = ev.reason or self.reason
        elif t is UsageEvent:
            self.usage = ev.usage
        elif t is Started:
            self._ensure_started()
        elif t is ServerToolCall:
            if ev.name == "web_search":  # Anthropic's blocks have no shape for litegate's other tools
                self._server_call(ev)
        elif t is ServerToolResult:
            if ev.name == "web_search":
                self._server_result(ev)

    def _ensure_started(self) -> None:
        if not self.started:
            self.started = True
            self._message_start()

    def _begin(self, kind: str) -> None:
        """Make a block of `kind` the open one (text and thinking only)."""
        self._ensure_started()
        if self.open == kind:
            return
        self._close()
        self.index += 1
        self.open = kind
        self._start({"type": "text", "text": ""} if kind == "text"
                    else {"type": "thinking", "thinking": "", "signature": ""})

    def _close(self) -> None:
        if self.open is None:
            return
        if self.open == "thinking":
            self._delta("signature_delta", "signature", SIGNATURE)
        elif self.open == "tool_use":
            if not self.args_sent:
                self._delta("input_json_delta", "partial_json", "{}")
            self.closed_tools.add(self.open_tool)
            self.open_tool = -1
        self._stop()
        self.open = None

    def _tool(self, ev: ToolCallDelta) -> None:
        self.saw_tool = True
        i = ev.index
        if self.open == "tool_use" and self.open_tool == i:
            if ev.arguments:
                self.args_sent = True
                self._delta("input_json_delta", "partial_json", ev.arguments)
        elif i in self.buffered:
            if ev.arguments:
                self.buffered[i].parts.append(ev.arguments)
        elif i in self.closed_tools:
            return  # a fragment after its block was stopped by text: cannot be sent any more
        elif self.open == "tool_use" or self.buffered:
            self.buffered[i] = _Tool(tool_id(ev.id), ev.name or "", ev.arguments)
        else:
            self._open_tool(i, tool_id(ev.id), ev.name or "", ev.arguments)

    def _open_tool(self, i: int, id: str, name: str, arguments: str) -> None:
        self._ensure_started()
        self._close()
        self.index += 1
        self.open, self.open_tool, self.args_sent = "tool_use", i, False
        self._start({"type": "tool_use", "id": id, "name": name, "input": {}})
        if arguments:
            self.args_sent = True
            self._delta("input_json_delta", "partial_json", arguments)

    def _flush_tools(self) -> None:
        for i in sorted(self.buffered):
            t = self.buffered.pop(i)
            self._open_tool(i, t.id, t.name, "".join(t.parts))
        self._close()

    def _server_call(self, ev: ServerToolCall) -> None:
        """A search litegate runs itself: a whole server_tool_use block."""
        self._ensure_started()
        self._close()
        self.searches += 1
        self.index += 1
        self._start({"type": "server_tool_use", "id": tool_id(ev.id), "name": ev.name, "input": {}})
        self._delta("input_json_delta", "partial_json", ev.arguments or "{}")
        self._stop()

    def _server_result(self, ev: ServerToolResult) -> None:
        """Its result arrives whole in content_block_start (no deltas), as Anthropic sends it."""
        self._ensure_started()
        self._close()
        self.index += 1
        if ev.error:
            code = ev.error if ev.error in SEARCH_ERRORS else "unavailable"
            content: Any = {"type": "web_search_tool_result_error", "error_code": code}
        else:
            content = [{"type": "web_search_result", "url": r.get("url", ""), "title": r.get("title") or "",
                        "encrypted_content": token((r.get("snippet") or "").encode()), "page_age": None}
                       for r in ev.results]
        self._start({"type": "web_search_tool_result", "tool_use_id": tool_id(ev.id), "content": content})
        self._stop()

    # ---- the end
    def _end(self) -> str:
        """Close every block; the stop reason."""
        self._ensure_started()
        self._flush_tools()
        return stop_reason(self.reason, self.saw_tool)

    def final_usage(self) -> dict[str, Any]:
        """Anthropic usage from the backend's counts; the prompt estimated when it reported none
        (Claude Code sizes its context from these numbers, so a real prompt is never 0)."""
        u = self.usage or Usage()
        cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0
        prompt = u.prompt_tokens if u.prompt_tokens > 0 else self.input_estimate
        out: dict[str, Any] = {"input_tokens": max(prompt - cached, 0), "output_tokens": u.completion_tokens,
                               "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}
        if self.searches:
            out["server_tool_use"] = {"web_search_requests": self.searches, "web_fetch_requests": 0}
        return out
