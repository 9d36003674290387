"""The official `anthropic` SDK reads what the face writes: its stream accumulator, its whole-message
model and its exception classes, fed through an in-process httpx transport (no server, no network)."""

from __future__ import annotations

import anthropic
import httpx2 as httpx
import msgspec
import pytest

from litegate.errors import BadRequest, GatewayError, ModelNotFound, RateLimited, Unauthorized, UpstreamUnavailable
from litegate.surfaces.anthropic import MessageBuilder, MessagesWriter, render_error
from litegate.wire import (
    Finish, ReasoningDelta, ServerToolCall, ServerToolResult, TextDelta, ToolCallDelta, Usage, UsageEvent,
)




EVENTS = [ReasoningDelta("Need the list."), TextDelta("Listing."), ToolCallDelta(0, "", "toolu_lg1", "Bash"),
          ToolCallDelta(1, '{"pattern":"*.py"}', "call_2", "Glob"), ToolCallDelta(0, '{"command":"ls"}'),
          ToolCallDelta(2, "", "call_3", "TodoRead"), Finish("tool_calls"), UsageEvent(Usage.of(2100, 57))]


def client(status: int, body: bytes, content_type: str) -> anthropic.Anthropic:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": content_type})
    return anthropic.Anthropic(api_key="k", base_url="http://litegate.test", max_retries=0,
                               http_client=httpx.Client(transport=httpx.MockTransport(handler)))


def sse(events, fail: GatewayError | None = None) -> bytes:
    w = MessagesWriter("claude-sonnet-4-5", input_estimate=1800)
    frames = [w.keepalive] + [f for ev in events for f in w.feed(ev)]
    return b"".join(frames + (w.fail(fail) if fail else w.finish()))


def test_sdk_stream_accumulates_thinking_text_and_parallel_tools():
    """MessageStream.get_final_message() from our frames: blocks, parsed inputs ({} for no arguments),
    stop_reason and usage as Claude Code would see them."""
    c = client(200, sse(EVENTS), "text/event-stream")
    with c.messages.stream(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as s:
        msg = s.get_final_message()
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use", "tool_use", "tool_use"]
    assert msg.content[0].thinking == "Need the list." and msg.content[0].signature.startswith("lg1.")
    assert [(b.id, b.name, b.input) for b in msg.content[2:]] == [
        ("toolu_lg1", "Bash", {"command": "ls"}), ("call_2", "Glob", {"pattern": "*.py"}), ("call_3", "TodoRead", {})]
    assert msg.stop_reason == "tool_use" and msg.model == "claude-sonnet-4-5"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (2100, 57)


def test_sdk_stream_reads_server_search_blocks():
    """server_tool_use / web_search_tool_result blocks and usage.server_tool_use parse into the SDK's types."""
    events = [ServerToolCall("srvtoolu_1", "web_search", '{"query":"oslo"}'),
              ServerToolResult("srvtoolu_1", "web_search", [{"url": "https://yr.no", "title": "Yr", "snippet": "4"}]),
              TextDelta("4 °C."), Finish("stop")]
    c = client(200, sse(events), "text/event-stream")
    with c.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as s:
        msg = s.get_final_message()
    assert [b.type for b in msg.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert msg.content[0].input == {"query": "oslo"}
    assert msg.content[1].content[0].url == "https://yr.no"
    assert msg.usage.server_tool_use.web_search_requests == 1


def test_sdk_raises_on_an_error_event_mid_stream():
    """An error after the first byte surfaces as the SDK's APIStatusError subclass for overloaded."""
    c = client(200, sse([TextDelta("partial")], fail=UpstreamUnavailable("backend down")), "text/event-stream")
    with pytest.raises(anthropic.APIStatusError) as info:
        with c.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as s:
            s.get_final_message()
    assert "backend down" in str(info.value)


def test_sdk_reads_a_whole_reply():
    """The non-streaming body validates as the SDK's Message."""
    b = MessageBuilder("claude-haiku-4-5", input_estimate=5)
    for ev in EVENTS:
        b.feed(ev)
    c = client(200, msgspec.json.encode(b.result()), "application/json")
    msg = c.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert msg.stop_reason == "tool_use" and msg.content[4].input == {}


@pytest.mark.parametrize("err,cls", [
    (BadRequest("bad"), anthropic.BadRequestError), (Unauthorized("bad"), anthropic.AuthenticationError),
    (ModelNotFound("bad"), anthropic.NotFoundError), (RateLimited("bad"), anthropic.RateLimitError),
    (UpstreamUnavailable("bad"), anthropic.InternalServerError),
])
def test_sdk_error_classes(err, cls):
    """Our error bodies and statuses become the SDK exception a client catches for that case."""
    status, body = render_error(err)
    c = client(status, body, "application/json")
    with pytest.raises(cls) as info:
        c.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["error"]["message"] == "bad"
