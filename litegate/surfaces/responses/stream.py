"""Provider-neutral StreamEvents -> the Responses event stream (openai-responses.md §4, §7).

`ResponsesWriter` is one response's state machine. What clients depend on, and this keeps:
`response.created` first, then `in_progress`; each output item opened with `output_item.added`
(and a message's `content_part.added`) before any delta, closed with the `*.done` events and
`output_item.done` carrying the complete item (Codex rebuilds its history from those alone);
`output_index` is the item's position in the final `output`; items never interleave, so tool-call
fragments of a second call wait until the first is closed; every event has a `sequence_number`
counting from 0; exactly one terminal event, then nothing. A tool call with no arguments says `{}`.

A length cut is `response.incomplete` (reason max_output_tokens), as OpenAI sends it. Codex
treats that event as a failed turn and retries it, so for Codex (`cut_as_completed`) the cut
ends with `response.completed` whose response says status `incomplete`: the turn ends and the
partial answer stays. Server-side tools (ServerToolCall/ServerToolResult) become
`web_search_call` items. With `frames=False` nothing is encoded: a non-streaming reply feeds
the same events and takes `final`, the whole Response object.
"""

from __future__ import annotations

import time
from types import MappingProxyType
from typing import Any

import msgspec

from litegate import wire
from litegate.errors import GatewayError
from litegate.wire import (
    Citations, Finish, ReasoningDelta, ServerToolCall, ServerToolResult, StreamEvent, TextDelta, ToolCallDelta, Usage,
    UsageEvent,
)
from litegate.surfaces.base import json_object
from litegate.surfaces.responses.items import ToolKind, failure, new_id, usage_json
from litegate.surfaces.responses.output import (
    call_item, citation, cut_reason, message_item, reasoning_item, response_object,
)
from litegate.surfaces.responses.request import Inbound

_encode = wire.encoder.encode
_FUNCTION = ToolKind("function", "")


class _Item:
    """The one output item being written."""

    __slots__ = ("kind", "index", "id", "parts", "mid", "tool_index", "call_id", "name", "tool", "annotations")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind  # "reasoning" | "message" | "call"
        self.index = index
        self.id = item_id
        self.parts: list[str] = []
        self.mid = b""  # pre-encoded fields of this item's delta events (hot path)
        self.tool_index = -1
        self.call_id = ""
        self.name = ""
        self.tool = _FUNCTION
        self.annotations: list[dict[str, Any]] = []


class ResponsesWriter:
    """StreamEvents in, `event: <type>\\ndata: <json>\\n\\n` frames out (surfaces.base.StreamWriter)."""

    media_type = "text/event-stream"
    keepalive = b": keep-alive\n\n"

    def __init__(self, inbound: Inbound, *, response_id: str | None = None, created_at: int | None = None,
                 cut_as_completed: bool = False, frames: bool = True) -> None:
        self.inbound = inbound
        self.id = response_id or new_id("resp")
        self.tag = self.id.partition("_")[2] or self.id  # item ids are <kind>_<tag>_<index>: one random draw
        self.created_at = created_at or int(time.time())
        self.cut_as_completed = cut_as_completed
        self.frames = frames
        self.usage: Usage | None = None
        self.final: dict[str, Any] | None = None  # the terminal Response object
        self.seq = 0
        self.out: list[bytes] = []
        self.started = False
        self.items: list[dict[str, Any] | None] = []  # by output_index; None while an item is open
        self.encoded: list[bytes | None] = []  # the same items already encoded, where a frame needed them
        self.open: _Item | None = None
        self.queued: dict[int, list[ToolCallDelta]] = {}  # tool-call fragments waiting for the open call
        self.closed_calls: set[int] = set()
        self.searches: dict[str, tuple[int, dict[str, Any]]] = {}  # server call id -> (output_index, item)
        self.finish_reason: str | None = None
        self.saw_tool = False

    # ------------------------------------------------------------ StreamWriter
    def feed(self, ev: StreamEvent) -> list[bytes]:
        if not self.started:
            self._start()
        t = type(ev)
        if t is TextDelta:
            if ev.text:
                self._text(ev.text)
        elif t is ReasoningDelta:
            if ev.text:
                self._reasoning(ev.text)
        elif t is ToolCallDelta:
            self._tool(ev)
        elif t is UsageEvent:
            self.usage = ev.usage
        elif t is Finish:
            if ev.reason:
                self.finish_reason = ev.reason
        elif t is Citations:
            self._citations(ev)
        elif t is ServerToolCall:
            self._server_call(ev)
        elif t is ServerToolResult:
            self._server_result(ev.id, ev.results or [], ev.error)
        # Started: the response already began above.
        return self._take()

    def finish(self) -> list[bytes]:
        if not self.started:
            self._start()
        cut = cut_reason(self.finish_reason)
        self._close("incomplete" if cut else "completed")
        self._drain_queue()
        for call_id in list(self.searches):
            self._server_result(call_id, [], None)
        status = "incomplete" if cut else "completed"
        self.final = self._response(status, usage_json(self.usage, self.inbound.estimate),
                                    incomplete={"reason": cut} if cut else None,
                                    completed_at=int(time.time()) if not cut else None)
        event = "response.incomplete" if cut and not self.cut_as_completed else "response.completed"
        if self.frames:  # items whose done frame encoded them go in as they are
            output = [msgspec.Raw(e) if e is not None else i for i, e in zip(self.items, self.encoded) if i is not None]
            self._emit(event, {"response": {**self.final, "output": output}})
        else:
            self.seq += 1
        return self._take()

    def fail(self, err: GatewayError) -> list[bytes]:
        """End with response.failed. Open items stay unfinished: a done event would call them complete."""
        if not self.started:
            self._start()
        self.final = self._response("failed", usage_json(self.usage, self.inbound.estimate) if self.usage else None,
                                    error=failure(err))
        self._emit("response.failed", {"response": self.final})
        return self._take()

    # ------------------------------------------------------------ framing
    def _take(self) -> list[bytes]:
        out, self.out = self.out, []
        return out

    def _emit(self, kind: str, fields: dict[str, Any]) -> None:
        seq = self.seq
        self.seq += 1
        if self.frames:  # `fields` spliced in after type and sequence_number, without merging dicts
            head = _HEADS.get(kind) or _head(kind)
            self.out.append(head + str(seq).encode() + b"," + _encode(fields)[1:] + b"\n\n")

    def _raw(self, kind: str, fields: bytes) -> None:
        """An event whose fields (after sequence_number, with their leading comma) are already encoded."""
        seq = self.seq
        self.seq += 1
        if self.frames:
            self.out.append(_HEADS[kind] + str(seq).encode() + fields + b"}\n\n")

    def _delta(self, head: bytes, item: _Item, text: str, tail: bytes = b"}\n\n") -> None:
        """A delta event from pre-encoded pieces: the per-token path of every stream."""
        seq = self.seq
        self.seq += 1
        if self.frames:
            self.out.append(head + str(seq).encode() + item.mid + _encode(text) + tail)

    def _response(self, status: str, usage: dict | None, *, error: dict | None = None,
                  incomplete: dict | None = None, completed_at: int | None = None) -> dict[str, Any]:
        return response_object(self.id, self.created_at, status, self.inbound.echo,
                               [i for i in self.items if i is not None], usage, error=error, incomplete=incomplete,
                               completed_at=completed_at)

    def _start(self) -> None:
        self.started = True
        self.seq += 2
        if self.frames:  # the same shell twice: encoded once
            shell = b',"response":' + _encode(self._response("in_progress", None)) + b"}\n\n"
            self.out += [_HEADS["response.created"] + b"0" + shell, _HEADS["response.in_progress"] + b"1" + shell]

    # ------------------------------------------------------------ items
    def _item_id(self, prefix: str, index: int) -> str:
        return f"{prefix}_{self.tag}_{index}"

    def _open(self, kind: str, prefix: str) -> _Item:
        item = _Item(kind, len(self.items), self._item_id(prefix, len(self.items)))
        self.items.append(None)
        self.encoded.append(None)
        self.open = item
        return item

    def _done(self, item: _Item, body: dict[str, Any]) -> None:
        self.items[item.index] = body
        self._emit("response.output_item.done", {"output_index": item.index, "item": body})

    def _reasoning(self, text: str) -> None:
        item = self.open
        if item is None or item.kind != "reasoning":
            self._close()
            item = self._open("reasoning", "rs")
            where = {"item_id": item.id, "output_index": item.index, "summary_index": 0}
            self._emit("response.output_item.added",
                       {"output_index": item.index, "item": {"id": item.id, "type": "reasoning", "summary": []}})
            self._emit("response.reasoning_summary_part.added", {**where, "part": {"type": "summary_text", "text": ""}})
            item.mid = _mid(where)
        item.parts.append(text)
        self._delta(_REASONING_HEAD, item, text)

    def _text(self, text: str) -> None:
        item = self.open
        if item is None or item.kind != "message":
            self._close()
            item = self._open("message", "msg")
            # fixed shapes around our own ascii ids: written from templates, not encoded (the hot path)
            index, where = str(item.index).encode(), _where(item, b',"content_index":0')
            self._raw("response.output_item.added", b',"output_index":' + index + b',"item":{"id":"' + item.id.encode()
                      + b'","type":"message","status":"in_progress","role":"assistant","content":[]}')
            self._raw("response.content_part.added",
                      where + b',"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}')
            item.mid = where + b',"delta":'
        item.parts.append(text)
        self._delta(_TEXT_HEAD, item, text, _TEXT_TAIL)

    def _tool(self, ev: ToolCallDelta) -> None:
        self.saw_tool = True
        item = self.open
        if item is not None and item.kind == "call" and item.tool_index != ev.index:
            self.queued.setdefault(ev.index, []).append(ev)  # never interleave two calls
            return
        if item is None or item.kind != "call":
            if ev.index in self.closed_calls:
                return  # a fragment of a call already reported whole: nothing can take it any more
            self._close()
            item = self._open_call(ev)
        if ev.arguments:
            item.parts.append(ev.arguments)
            if item.tool.kind == "function":
                self._delta(_ARGS_HEAD, item, ev.arguments)

    def _open_call(self, ev: ToolCallDelta) -> _Item:
        item = self._open("call", "fc")
        item.tool_index = ev.index
        item.call_id = ev.id or new_id("call")
        item.name = ev.name or ""
        item.tool = self.inbound.tools.get(item.name) or ToolKind("function", item.name)
        if item.tool.kind == "function":  # custom and local_shell calls are reported whole at close
            self._emit("response.output_item.added", {"output_index": item.index, "item": call_item(
                item.id, item.call_id, item.name, "", item.tool, "in_progress")})
            item.mid = _mid({"item_id": item.id, "output_index": item.index})
        return item

    def _close(self, status: str = "completed") -> None:
        item = self.open
        if item is None:
            return
        self.open = None
        text = "".join(item.parts)
        if item.kind == "message":
            body = message_item(item.id, text, item.annotations, status)
            if not self.frames:
                self.seq += 2
                self._done(item, body)
                return
            where, text_json = _where(item, b',"content_index":0'), _encode(text)
            part = (b'{"type":"output_text","text":' + text_json + b',"annotations":'
                    + (_encode(item.annotations) if item.annotations else b"[]") + b',"logprobs":[]}')
            self._raw("response.output_text.done", where + b',"text":' + text_json + b',"logprobs":[]')
            self._raw("response.content_part.done", where + b',"part":' + part)
            encoded = (b'{"id":"' + item.id.encode() + b'","type":"message","status":"' + status.encode()
                       + b'","role":"assistant","content":[' + part + b"]}")
            self.items[item.index], self.encoded[item.index] = body, encoded
            self._raw("response.output_item.done", b',"output_index":' + str(item.index).encode() + b',"item":' + encoded)
        elif item.kind == "reasoning":
            where = {"item_id": item.id, "output_index": item.index, "summary_index": 0}
            self._emit("response.reasoning_summary_text.done", {**where, "text": text})
            self._emit("response.reasoning_summary_part.done", {**where, "part": {"type": "summary_text", "text": text}})
            self._done(item, reasoning_item(item.id, text, self.inbound.encrypted_reasoning))
        else:
            self.closed_calls.add(item.tool_index)
            self._close_call(item, text or "{}", status)
            self._drain_queue()

    def _close_call(self, item: _Item, arguments: str, status: str) -> None:
        body = call_item(item.id, item.call_id, item.name, arguments, item.tool, status)
        where = {"item_id": item.id, "output_index": item.index}
        kind = body["type"]
        if kind == "custom_tool_call":  # its input is known only now: reported whole
            self._emit("response.output_item.added", {"output_index": item.index, "item": {**body, "input": ""}})
            self._emit("response.custom_tool_call_input.delta", {**where, "delta": body["input"]})
            self._emit("response.custom_tool_call_input.done", {**where, "input": body["input"]})
        elif kind == "local_shell_call":
            self._emit("response.output_item.added", {"output_index": item.index,
                                                      "item": {**body, "status": "in_progress"}})
        else:
            if item.tool.kind != "function":  # an emulated tool's call that fell back: not announced yet
                self._emit("response.output_item.added", {"output_index": item.index,
                                                          "item": {**body, "status": "in_progress", "arguments": ""}})
            self._emit("response.function_call_arguments.done", {**where, "name": body["name"], "arguments": arguments})
        self._done(item, body)

    def _drain_queue(self) -> None:
        """Report the calls that waited, each whole, in index order."""
        while self.queued and self.open is None:
            index = min(self.queued)
            fragments = self.queued.pop(index)
            first = next((f for f in fragments if f.id or f.name), fragments[0])
            item = self._open_call(ToolCallDelta(index, "", first.id, first.name))
            for f in fragments:
                if f.arguments:
                    item.parts.append(f.arguments)
                    if item.tool.kind == "function":
                        self._delta(_ARGS_HEAD, item, f.arguments)
            self._close()

    def _citations(self, ev: Citations) -> None:
        item = self.open
        if item is None or item.kind != "message":
            return  # the text they cite is already reported whole
        for a in ev.annotations:
            note = citation(a)
            self._emit("response.output_text.annotation.added",
                       {"item_id": item.id, "output_index": item.index, "content_index": 0,
                        "annotation_index": len(item.annotations), "annotation": note})
            item.annotations.append(note)

    # ------------------------------------------------------------ server-side tools (web search)
    def _server_call(self, ev: ServerToolCall) -> None:
        if ev.id in self.searches:
            return
        self._close()
        self._drain_queue()
        args = json_object(ev.arguments) or {}
        if ev.name == "web_search":
            query = str(args.get("query") or "")
            action: dict[str, Any] = {"type": "search", "query": query, "queries": [query]}
        else:  # fetching a page the search found
            action = {"type": "open_page", "url": args.get("url") if isinstance(args.get("url"), str) else None}
        index = len(self.items)
        self.items.append(None)
        self.encoded.append(None)
        item = {"id": self._item_id("ws", index), "type": "web_search_call", "status": "in_progress", "action": action}
        self.searches[ev.id] = (index, item)
        where = {"item_id": item["id"], "output_index": index}
        self._emit("response.output_item.added", {"output_index": index, "item": item})
        self._emit("response.web_search_call.in_progress", where)
        self._emit("response.web_search_call.searching", where)

    def _server_result(self, call_id: str, results: list, error: str | None) -> None:
        found = self.searches.pop(call_id, None)
        if found is None:
            return
        index, item = found
        done = {**item, "status": "failed" if error else "completed"}
        if self.inbound.search_sources and item["action"]["type"] == "search":
            done["action"] = {**item["action"], "sources": [{"type": "url", "url": r["url"]} for r in results
                                                            if isinstance(r, dict) and r.get("url")]}
        self._emit("response.web_search_call.completed", {"item_id": item["id"], "output_index": index})
        self.items[index] = done
        self._emit("response.output_item.done", {"output_index": index, "item": done})


def _where(item: _Item, extra: bytes = b"") -> bytes:
    return b',"item_id":"' + item.id.encode() + b'","output_index":' + str(item.index).encode() + extra


def _mid(where: dict[str, Any]) -> bytes:
    """`,"item_id":...,"delta":` - the fields between an event's sequence_number and its delta."""
    return b"," + _encode(where)[1:-1] + b',"delta":'


def _head(kind: str) -> bytes:
    return b'event: ' + kind.encode() + b'\ndata: {"type":"' + kind.encode() + b'","sequence_number":'


_HEADS = MappingProxyType({kind: _head(kind) for kind in (
    "response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed",
    "response.output_item.added", "response.output_item.done", "response.content_part.added",
    "response.content_part.done", "response.output_text.done", "response.output_text.annotation.added",
    "response.reasoning_summary_part.added", "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.done", "response.function_call_arguments.done",
    "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done",
    "response.web_search_call.in_progress", "response.web_search_call.searching",
    "response.web_search_call.completed")})
_TEXT_HEAD = _head("response.output_text.delta")
_TEXT_TAIL = b',"logprobs":[]}\n\n'
_REASONING_HEAD = _head("response.reasoning_summary_text.delta")
_ARGS_HEAD = _head("response.function_call_arguments.delta")
