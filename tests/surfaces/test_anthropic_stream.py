"""The Anthropic face's answer side: the SSE sequence Claude Code parses (anthropic-messages.md
§4, §9.4), the whole reply (§3) and the error shape (§6, §9.5). Pure; no server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from litegate.errors import (
    BadRequest, Forbidden, GatewayError, InternalError, ModelNotFound, PayloadTooLarge, RateLimited,
    StreamInterrupted, Unauthorized, UpstreamError, UpstreamTimeout, UpstreamUnavailable,
)
from litegate.surfaces.anthropic import PING, MessageBuilder, MessagesWriter, from_completion, render_error
from litegate.surfaces.base import untoken
from litegate.wire import (
    ChatCompletion, Choice, Finish, OutFunction, OutMessage, OutToolCall, ReasoningDelta, Started, TextDelta,
    ToolCallDelta, Usage, UsageEvent, ServerToolCall, ServerToolResult,
)




def run(events: list[Any], estimate: int = 0, fail: GatewayError | None = None) -> tuple[bytes, MessagesWriter]:
    w = MessagesWriter("claude-sonnet-4-5", input_estimate=estimate)
    out = [f for ev in events for f in w.feed(ev)]
    out += w.fail(fail) if fail else w.finish()
    return b"".join(out), w


def parse(raw: bytes) -> list[tuple[str, dict]]:
    """(event name, data) per SSE frame; every frame must carry both lines, with matching type."""
    frames = []
    for block in raw.split(b"\n\n"):
        if not block:
            continue
        lines = block.split(b"\n")
        assert len(lines) == 2 and lines[0].startswith(b"event: ") and lines[1].startswith(b"data: "), block
        name, data = lines[0][7:].decode(), json.loads(lines[1][6:])
        assert data["type"] == name
        frames.append((name, data))
    return frames


def assemble(frames: list[tuple[str, dict]]) -> dict:
    """What a client builds from the frames (the SDK's accumulate rules), checking the block order."""
    msg, open_ = None, None
    for name, d in frames:
        if name == "message_start":
            assert msg is None
            msg = d["message"]
        elif name == "content_block_start":
            assert open_ is None and d["index"] == len(msg["content"]), "blocks must not interleave"
            msg["content"].append({**d["content_block"], "_json": ""})
            open_ = d["index"]
        elif name == "content_block_delta":
            assert d["index"] == open_
            block, delta = msg["content"][open_], d["delta"]
            kind = delta["type"]
            if kind == "text_delta":
                block["text"] += delta["text"]
            elif kind == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif kind == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                assert kind == "input_json_delta"
                block["_json"] += delta["partial_json"]
        elif name == "content_block_stop":
            assert d["index"] == open_
            block = msg["content"][open_]
            if block["type"] in ("tool_use", "server_tool_use"):
                block["input"] = json.loads(block["_json"])
                assert isinstance(block["input"], dict)
            open_ = None
        elif name == "message_delta":
            assert open_ is None
            msg.update(d["delta"])
            msg["usage"].update(d["usage"])
    for block in msg["content"]:
        block.pop("_json")
    return msg


# ---------------------------------------------------------------- sequences
def test_text_stream_is_the_exact_event_sequence():
    """message_start (prompt estimate as input_tokens) -> one text block -> message_delta with end_turn
    and the backend's counts -> message_stop, each frame with its event line; no [DONE]."""
    raw, w = run([Started(), TextDelta("Hel"), TextDelta(""), TextDelta("lo"), Finish("stop"),
                  UsageEvent(Usage.of(2100, 57, cached=100))], estimate=1999)
    frames = parse(raw)
    assert [n for n, _ in frames] == ["message_start", "content_block_start", "content_block_delta",
                                      "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert frames[0][1]["message"]["usage"]["input_tokens"] == 1999
    assert frames[5][1]["usage"] == {"input_tokens": 2000, "output_tokens": 57, "cache_creation_input_tokens": 0,
                                     "cache_read_input_tokens": 100}
    assert assemble(frames)["content"] == [{"type": "text", "text": "Hello"}]
    assert b"[DONE]" not in raw and w.usage.prompt_tokens == 2100


def test_usage_estimated_when_the_backend_counts_nothing():
    """Without backend usage the final input_tokens is the estimate, never 0 (Claude Code compacts by it)."""
    raw, w = run([TextDelta("x"), Finish("stop")], estimate=321)
    assert assemble(parse(raw))["usage"]["input_tokens"] == 321
    assert w.usage is None


def test_thinking_then_text_then_tool_call():
    """Thinking starts empty with a signature key, gets a signature_delta just before its stop; the tool
    call streams as input_json_delta fragments that join into its arguments; stop_reason tool_use."""
    raw, _ = run([ReasoningDelta("Need "), ReasoningDelta("files."), TextDelta("Listing."),
                  ToolCallDelta(0, "", "toolu_lg7f3a", "Bash"), ToolCallDelta(0, '{"command":'), ToolCallDelta(0, '"ls"}'),
                  Finish("tool_calls")])
    frames = parse(raw)
    start = [d for n, d in frames if n == "content_block_start"][0]
    assert start["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    stop_at = next(i for i, (n, _) in enumerate(frames) if n == "content_block_stop")
    assert frames[stop_at - 1][1]["delta"]["type"] == "signature_delta"
    msg = assemble(frames)
    assert [b["type"] for b in msg["content"]] == ["thinking", "text", "tool_use"]
    assert msg["content"][0]["thinking"] == "Need files."
    assert msg["content"][2] == {"type": "tool_use", "id": "toolu_lg7f3a", "name": "Bash", "input": {"command": "ls"}}
    assert msg["stop_reason"] == "tool_use"


def test_tool_call_without_arguments_sends_an_empty_object():
    """A call with no argument fragments (Ollama `{}`-less calls, "" from OpenAI servers) sends "{}"."""
    raw, _ = run([ToolCallDelta(0, "", "call_1", "TodoRead"), Finish("tool_calls")])
    deltas = [d["delta"]["partial_json"] for n, d in parse(raw) if n == "content_block_delta"]
    assert deltas == ["{}"]


def test_interleaved_parallel_calls_become_consecutive_blocks():
    """Fragments of two calls that interleave by index come out as two whole, ordered blocks."""
    raw, _ = run([ToolCallDelta(0, "", "call_a", "Read"), ToolCallDelta(1, '{"pattern"', "call_b", "Glob"),
                  ToolCallDelta(0, '{"file_path":"/a"'), ToolCallDelta(1, ':"*.py"}'), ToolCallDelta(0, "}"),
                  Finish("tool_calls")])
    msg = assemble(parse(raw))
    assert [(b["id"], b["input"]) for b in msg["content"]] == [("call_a", {"file_path": "/a"}),
                                                              ("call_b", {"pattern": "*.py"})]


def test_text_after_a_tool_call_closes_it_and_keeps_order():
    """Text that follows a call (Gemini may send both) stops the tool block first; one block open at a time."""
    raw, _ = run([ToolCallDelta(0, '{"a":1}', "call_a", "t"), TextDelta("done"), Finish("stop")])
    msg = assemble(parse(raw))
    assert [b["type"] for b in msg["content"]] == ["tool_use", "text"] and msg["stop_reason"] == "tool_use"


@pytest.mark.parametrize("call_id,expected", [("call_ab12", "call_ab12"), ("toolu_01A", "toolu_01A"),
                                              ("functions.get_weather:0", None), (None, None)])
def test_tool_ids_match_anthropics_pattern(call_id, expected):
    """Ids pass through when Anthropic accepts them; others are rewritten (stable for the same input)."""
    raw, _ = run([ToolCallDelta(0, "{}", call_id, "t"), Finish("tool_calls")])
    got = assemble(parse(raw))["content"][0]["id"]
    assert got.replace("_", "").replace("-", "").isalnum()
    if expected:
        assert got == expected
    elif call_id:
        assert got == assemble(parse(run([ToolCallDelta(0, "{}", call_id, "t")])[0]))["content"][0]["id"]


@pytest.mark.parametrize("reason,tool,expected", [
    ("stop", False, "end_turn"), (None, False, "end_turn"), ("length", False, "max_tokens"),
    ("content_filter", False, "refusal"), ("tool_calls", True, "tool_use"), ("stop", True, "tool_use"),
    ("length", True, "max_tokens"),
])
def test_stop_reasons(reason, tool, expected):
    """The internal finish_reason maps onto Anthropic's stop_reason (mapping.md §7.2)."""
    events = ([ToolCallDelta(0, "{}", "c", "t")] if tool else [TextDelta("x")]) + [Finish(reason)]
    frames = parse(run(events)[0])
    assert frames[-2][1]["delta"] == {"stop_reason": expected, "stop_sequence": None}


def test_empty_answer_still_opens_and_closes_the_message():
    """A backend that says nothing still gets message_start, message_delta and message_stop."""
    frames = parse(run([Finish("stop")])[0])
    assert [n for n, _ in frames] == ["message_start", "message_delta", "message_stop"]


def test_failure_after_the_first_byte_is_an_error_event_without_message_stop():
    """An error mid-stream ends with `event: error` in Anthropic's shape, and no message_stop."""
    raw, _ = run([TextDelta("partial")], fail=UpstreamUnavailable("backend went away"))
    frames = parse(raw)
    assert frames[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error",
                                                               "message": "backend went away"}})
    assert "message_stop" not in [n for n, _ in frames]


def test_ping_is_a_named_event():
    """The keep-alive is a named `ping` event with {"type":"ping"}, as Anthropic sends it (the SDK skips it)."""
    assert parse(PING) == [("ping", {"type": "ping"})]
    assert MessagesWriter("m").media_type == "text/event-stream"


def test_server_search_blocks_and_usage():
    """The tool loop's server search becomes server_tool_use + a whole web_search_tool_result block
    (snippets in litegate's encrypted_content), counted in usage.server_tool_use."""
    raw, _ = run([ServerToolCall("srv_1", "web_search", '{"query":"oslo"}'),
                  ServerToolResult("srv_1", "web_search", [{"url": "https://yr.no", "title": "Yr", "snippet": "4 °C"}]),
                  ServerToolCall("srv_2", "web_search", '{"query":"bergen"}'),
                  ServerToolResult("srv_2", "web_search", [], error="too_many_requests"),
                  TextDelta("It is 4 °C."), Finish("stop")])
    frames = parse(raw)
    result_starts = [d for n, d in frames if n == "content_block_start"
                     and d["content_block"]["type"] == "web_search_tool_result"]
    assert all(not (n == "content_block_delta" and d["index"] == result_starts[0]["index"]) for n, d in frames)
    msg = assemble(frames)
    assert [b["type"] for b in msg["content"]] == ["server_tool_use", "web_search_tool_result", "server_tool_use",
                                                  "web_search_tool_result", "text"]
    assert msg["content"][0]["input"] == {"query": "oslo"}
    hit = msg["content"][1]["content"][0]
    assert hit["url"] == "https://yr.no" and untoken(hit["encrypted_content"]) == "4 °C".encode()
    assert msg["content"][3]["content"] == {"type": "web_search_tool_result_error", "error_code": "too_many_requests"}
    assert msg["usage"]["server_tool_use"] == {"web_search_requests": 2, "web_fetch_requests": 0}
    assert msg["stop_reason"] == "end_turn"


# ---------------------------------------------------------------- whole replies
def test_builder_gives_what_the_stream_gives():
    """A non-streaming reply holds the same blocks a client assembles from the stream of the same events."""
    events = [ReasoningDelta("hm"), TextDelta("Hi"), ToolCallDelta(0, '{"x":', "c1", "t"), ToolCallDelta(1, "", "c2", "u"),
              ToolCallDelta(0, "2}"), Finish("tool_calls"), UsageEvent(Usage.of(10, 3))]
    b = MessageBuilder("claude-sonnet-4-5")
    for ev in events:
        b.feed(ev)
    whole = b.result()
    streamed = assemble(parse(run(events)[0]))
    assert whole["content"] == streamed["content"]
    assert (whole["stop_reason"], whole["usage"]) == (streamed["stop_reason"], streamed["usage"])
    assert whole["type"] == "message" and whole["id"].startswith("msg_")


def test_from_completion_maps_reasoning_text_calls_and_usage():
    """A ChatCompletion becomes thinking, text and tool_use blocks (invalid JSON input -> {}), with usage."""
    done = ChatCompletion("chatcmpl-1", 0, "backend", [Choice(OutMessage(
        content="Checking.", reasoning_content="Think.",
        tool_calls=[OutToolCall("call_1", OutFunction("Read", '{"file_path":"/x"}')),
                    OutToolCall("call_2", OutFunction("Bad", "{not json"))]), "tool_calls")],
        usage=Usage.of(40, 9))
    msg = from_completion(done, "claude-haiku-4-5")
    assert msg["model"] == "claude-haiku-4-5"
    assert [b["type"] for b in msg["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    assert msg["content"][2]["input"] == {"file_path": "/x"} and msg["content"][3]["input"] == {}
    assert msg["stop_reason"] == "tool_use"
    assert msg["usage"] == {"input_tokens": 40, "output_tokens": 9, "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0}


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("err,status,kind", [
    (BadRequest("x"), 400, "invalid_request_error"),
    (Unauthorized("x"), 401, "authentication_error"),
    (Forbidden("x"), 403, "permission_error"),
    (ModelNotFound("x"), 404, "not_found_error"),
    (PayloadTooLarge("x"), 413, "request_too_large"),
    (RateLimited("x", retry_after=2), 429, "rate_limit_error"),
    (InternalError("x"), 500, "api_error"),
    (UpstreamError("x"), 502, "api_error"),
    (StreamInterrupted("x"), 502, "api_error"),
    (UpstreamUnavailable("x"), 529, "overloaded_error"),
    (UpstreamUnavailable("x", status=503, error_type="service_unavailable_error"), 529, "overloaded_error"),
    (UpstreamTimeout("x"), 504, "timeout_error"),
    (GatewayError("x", status=405), 405, "invalid_request_error"),
])
def test_errors_in_anthropics_shape(err, status, kind):
    """Every GatewayError renders as Anthropic's error object with the status its SDK maps to the right class."""
    got_status, raw = render_error(err)
    assert got_status == status
    assert json.loads(raw) == {"type": "error", "error": {"type": kind, "message": "x"}}
