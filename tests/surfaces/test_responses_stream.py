"""litegate.surfaces.responses, answers out: StreamEvents -> the Responses event stream and the
whole Response object (openai-responses.md §3, §4, §7). Every event is checked against the
official OpenAPI schema (skipped visibly when ../shared is absent) and fed to openai-python's own
stream accumulator, which enforces the ordering rules its stream helper depends on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai._models import construct_type
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from litegate.errors import RateLimited, StreamInterrupted, UpstreamError
from litegate.surfaces.responses import ResponsesWriter, decode_reasoning, decode_request, to_chat, to_response
from litegate.wire import (
    Annotation, ChatCompletion, Choice, Citations, Finish, OutFunction, OutMessage, OutToolCall, ReasoningDelta,
    ServerToolCall, ServerToolResult, Started, TextDelta, ToolCallDelta, UrlCitation, Usage, UsageEvent,
)

EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent", "response.in_progress": "ResponseInProgressEvent",
    "response.completed": "ResponseCompletedEvent", "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent", "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent", "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent", "response.output_text.done": "ResponseTextDoneEvent",
    "response.output_text.annotation.added": "ResponseOutputTextAnnotationAddedEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.reasoning_summary_part.added": "ResponseReasoningSummaryPartAddedEvent",
    "response.reasoning_summary_part.done": "ResponseReasoningSummaryPartDoneEvent",
    "response.reasoning_summary_text.delta": "ResponseReasoningSummaryTextDeltaEvent",
    "response.reasoning_summary_text.done": "ResponseReasoningSummaryTextDoneEvent",
    "response.custom_tool_call_input.delta": "ResponseCustomToolCallInputDeltaEvent",
    "response.custom_tool_call_input.done": "ResponseCustomToolCallInputDoneEvent",
    "response.web_search_call.in_progress": "ResponseWebSearchCallInProgressEvent",
    "response.web_search_call.searching": "ResponseWebSearchCallSearchingEvent",
    "response.web_search_call.completed": "ResponseWebSearchCallCompletedEvent",
}
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
         {"type": "function", "name": "get_time"},
         {"type": "custom", "name": "apply_patch", "format": {"type": "text"}}, {"type": "local_shell"},
         {"type": "namespace", "name": "github", "description": "GitHub", "tools": [{"type": "function", "name": "search"}]}]


def inbound(**body: Any):
    return to_chat(decode_request(json.dumps({"model": "qwen3:8b", "input": "Hi", "tools": TOOLS, **body}).encode()))


def frames_of(raw: bytes) -> list[dict[str, Any]]:
    """Parse `event: X\\ndata: {...}` frames; the event line must repeat the payload's type."""
    out = []
    for block in raw.split(b"\n\n"):
        if not block:
            continue
        event_line, data_line = block.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: "), block
        data = json.loads(data_line[6:])
        assert event_line[7:].decode() == data["type"]
        out.append(data)
    return out


def run(events: list[Any], *, fail: Exception | None = None, writer_args: dict | None = None, **body: Any):
    w = ResponsesWriter(inbound(**body), **(writer_args or {}))
    raw = b"".join(b"".join(w.feed(ev)) for ev in events)
    raw += b"".join(w.fail(fail) if fail else w.finish())
    return frames_of(raw), w


def check(events: list[dict[str, Any]], validate=None) -> Any:
    """The rules clients depend on (§4); returns what openai-python's accumulator made of the stream."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in TERMINAL and not any(e["type"] in TERMINAL for e in events[:-1])
    opened: dict[int, str] = {}
    done: list[int] = []
    for e in events:
        if validate is not None:
            validate(EVENT_SCHEMAS[e["type"]], e)
        if e["type"] == "response.output_item.added":
            assert e["output_index"] == len(opened), "output_index must be the item's position"
            opened[e["output_index"]] = e["item"]["id"]
        elif e["type"] == "response.output_item.done":
            assert opened[e["output_index"]] == e["item"]["id"]
            done.append(e["output_index"])
        elif "output_index" in e and e["type"] not in TERMINAL:
            assert e["output_index"] in opened and e["output_index"] not in done, e["type"]
            if e["type"].endswith(".delta") and "web_search" not in e["type"]:
                # never interleave: a delta belongs to the most recently opened item
                assert e["output_index"] == max(opened), e
    final = events[-1]["response"]
    if events[-1]["type"] != "response.failed":
        assert sorted(done) == list(range(len(opened))) == list(range(len(final["output"])))
        assert [i["id"] for i in final["output"]] == [opened[k] for k in sorted(opened)]
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for e in events:
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=e))
    return state


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in events]


# ---------------------------------------------------------------- sequences
TEXT = [TextDelta("Hel"), TextDelta(""), TextDelta("lo"), Finish("stop"), UsageEvent(Usage.of(9, 2))]
REASONING_TOOLS = [ReasoningDelta("Let me"), ReasoningDelta(" think"), TextDelta("Checking."),
                   ToolCallDelta(0, '{"city":"Oslo"}', "call_a", "get_weather"), ToolCallDelta(1, "{}", "call_b", "get_time"),
                   Finish("tool_calls"), UsageEvent(Usage.of(20, 8, reasoning=3))]
INTERLEAVED = [ToolCallDelta(0, "", "call_a", "get_weather"), ToolCallDelta(1, "", "call_b", "get_time"),
               ToolCallDelta(0, '{"city":'), ToolCallDelta(1, ""), ToolCallDelta(0, '"Oslo"}'), Finish("tool_calls")]

SEQUENCE_CASES = [
    ("plain text", TEXT, [
        "created", "in_progress", "output_item.added", "content_part.added", "output_text.delta", "output_text.delta",
        "output_text.done", "content_part.done", "output_item.done", "completed"]),
    ("reasoning, text and two whole calls", REASONING_TOOLS, [
        "created", "in_progress",
        "output_item.added", "reasoning_summary_part.added", "reasoning_summary_text.delta", "reasoning_summary_text.delta",
        "reasoning_summary_text.done", "reasoning_summary_part.done", "output_item.done",
        "output_item.added", "content_part.added", "output_text.delta", "output_text.done", "content_part.done",
        "output_item.done",
        "output_item.added", "function_call_arguments.delta", "function_call_arguments.done", "output_item.done",
        "output_item.added", "function_call_arguments.delta", "function_call_arguments.done", "output_item.done",
        "completed"]),
    ("interleaved call fragments are reported one call at a time", INTERLEAVED, [
        "created", "in_progress",
        "output_item.added", "function_call_arguments.delta", "function_call_arguments.delta",
        "function_call_arguments.done", "output_item.done",
        "output_item.added", "function_call_arguments.done", "output_item.done", "completed"]),
    ("an empty answer still completes", [Finish("stop")], ["created", "in_progress", "completed"]),
    ("Started alone opens the stream", [Started(), TextDelta("x")], [
        "created", "in_progress", "output_item.added", "content_part.added", "output_text.delta", "output_text.done",
        "content_part.done", "output_item.done", "completed"]),
]


@pytest.mark.parametrize("events,expected", [c[1:] for c in SEQUENCE_CASES], ids=[c[0] for c in SEQUENCE_CASES])
def test_event_sequences(events, expected, openai_schema):
    """The exact event order of §4, valid per the spec and accepted by openai-python's stream accumulator."""
    got, _ = run(events)
    assert types(got) == expected
    check(got, openai_schema)


def test_output_items_carry_complete_values():
    """output_item.done and response.completed hold whole items: Codex rebuilds history from them alone."""
    got, _ = run(REASONING_TOOLS)
    items = [e["item"] for e in got if e["type"] == "response.output_item.done"]
    assert items == got[-1]["response"]["output"]
    reasoning, message, call_a, call_b = items
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Let me think"}]
    assert "encrypted_content" not in reasoning  # only when include asks for it
    assert message["content"][0]["text"] == "Checking." and message["status"] == "completed"
    assert (call_a["call_id"], call_a["name"], call_a["arguments"]) == ("call_a", "get_weather", '{"city":"Oslo"}')
    assert call_b["arguments"] == "{}" and call_b["status"] == "completed"
    assert len({i["id"] for i in items}) == 4


def test_interleaved_fragments_join_into_valid_json():
    """Fragments of parallel calls, interleaved by index, join per call; a call with none says {}."""
    got, _ = run(INTERLEAVED)
    calls = got[-1]["response"]["output"]
    assert [(c["call_id"], json.loads(c["arguments"])) for c in calls] == [("call_a", {"city": "Oslo"}), ("call_b", {})]


def test_usage_is_integers_with_details():
    """response.completed usage: all five keys, cached and reasoning tokens from the backend's details."""
    got, w = run([TextDelta("x"), UsageEvent(Usage.of(100, 20, cached=60, reasoning=5))])
    assert got[-1]["response"]["usage"] == {
        "input_tokens": 100, "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 0},
        "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 120}
    assert w.usage.prompt_tokens == 100  # what accounting reads


def test_missing_backend_usage_estimates_the_input():
    """No usage from the backend: input estimated from characters (Codex budgets its context from it), output 0;
    accounting is not told a made-up number."""
    got, w = run([TextDelta("x")], input="word " * 400)
    usage = got[-1]["response"]["usage"]
    assert usage["input_tokens"] == 500 and usage["output_tokens"] == 0 and usage["total_tokens"] == 500
    assert w.usage is None


def test_reasoning_round_trips_through_encrypted_content(openai_schema):
    """With include reasoning.encrypted_content the reasoning item carries a token that decodes to the thoughts."""
    got, _ = run(REASONING_TOOLS, include=["reasoning.encrypted_content"])
    reasoning = got[-1]["response"]["output"][0]
    assert decode_reasoning(reasoning["encrypted_content"]) == "Let me think"
    openai_schema("ReasoningItem", reasoning)


# ---------------------------------------------------------------- endings
def test_length_cut_is_response_incomplete(openai_schema):
    """finish_reason length -> response.incomplete, reason max_output_tokens, the cut item marked incomplete."""
    got, _ = run([TextDelta("Once upon"), Finish("length")])
    check(got, openai_schema)
    last = got[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][0]["status"] == "incomplete"


def test_length_cut_for_codex_ends_with_completed(openai_schema):
    """For Codex the cut still ends in response.completed (it retries a turn on response.incomplete),
    and the response inside says what happened."""
    got, _ = run([TextDelta("Once upon"), Finish("length")], writer_args={"cut_as_completed": True})
    check(got, openai_schema)
    last = got[-1]
    assert last["type"] == "response.completed" and isinstance(last["response"]["id"], str)
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert isinstance(last["response"]["usage"]["total_tokens"], int)


def test_content_filter_is_incomplete():
    """finish_reason content_filter -> incomplete, reason content_filter."""
    got, _ = run([Finish("content_filter")])
    assert got[-1]["type"] == "response.incomplete"
    assert got[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}


FAIL_CASES = [
    ("a broken backend stream", StreamInterrupted("backend stream ended early"), "server_error", "backend stream ended early"),
    ("a rate limit tells Codex when to retry", RateLimited("slow down", retry_after=1.5), "rate_limit_exceeded",
     "slow down Please try again in 2s."),
    ("a full context window passes its code", UpstreamError("too long", code="context_length_exceeded"),
     "context_length_exceeded", "too long"),
]


@pytest.mark.parametrize("err,code,message", [c[1:] for c in FAIL_CASES], ids=[c[0] for c in FAIL_CASES])
def test_failure_after_the_first_byte_is_response_failed(err, code, message, openai_schema):
    """A backend failure mid-stream ends with response.failed {code, message}; the half-written item is not
    reported as done; no truthy top-level "error" key (openai-python would raise on it)."""
    got, _ = run([TextDelta("partial")], fail=err)
    last = got[-1]
    assert types(got)[-1] == "failed" and "output_item.done" not in types(got)
    assert last["response"]["status"] == "failed"
    assert last["response"]["error"] == {"code": code, "message": message}
    assert all(not e.get("error") for e in got)
    if code != "context_length_exceeded":  # OpenAI sends it, Codex needs it; the spec's enum lacks it
        check(got, openai_schema)


def test_failure_before_any_event_still_starts_with_created():
    """fail() as the first call still gives response.created first (the SDK helper requires it)."""
    got, _ = run([], fail=StreamInterrupted("gone"))
    assert types(got) == ["created", "in_progress", "failed"]


# ---------------------------------------------------------------- tools the client declared its own way
def test_custom_local_shell_and_namespaced_calls_come_back_as_declared(openai_schema):
    """A custom tool's call is a custom_tool_call with its free text; local_shell is a local_shell_call with an
    exec action; a namespaced function keeps its namespace; an unreadable emulated call stays a function_call."""
    got, _ = run([ToolCallDelta(0, '{"input":"*** Begin Patch\\n"}', "c1", "apply_patch"),
                  ToolCallDelta(1, '{"command":["ls","-la"],"workdir":"/tmp"}', "c2", "local_shell"),
                  ToolCallDelta(2, '{"q":"x"}', "c3", "github__search"),
                  ToolCallDelta(3, "not json", "c4", "apply_patch"), Finish("tool_calls")])
    check(got, openai_schema)
    custom, shell, ns, broken = got[-1]["response"]["output"]
    assert (custom["type"], custom["name"], custom["input"]) == ("custom_tool_call", "apply_patch", "*** Begin Patch\n")
    assert shell["type"] == "local_shell_call"
    assert shell["action"] == {"type": "exec", "command": ["ls", "-la"], "env": {}, "working_directory": "/tmp"}
    assert (ns["type"], ns["name"], ns["namespace"]) == ("function_call", "search", "github")
    assert (broken["type"], broken["arguments"]) == ("function_call", "not json")
    assert "custom_tool_call_input.done" in types(got)


def test_citations_become_url_citation_annotations(openai_schema):
    """Sources of a searched answer arrive as annotation.added events and on the output_text part."""
    cite = Annotation(UrlCitation(url="https://example.com/a", title="A", start_index=0, end_index=4))
    got, _ = run([TextDelta("News"), Citations([cite]), Finish("stop")])
    check(got, openai_schema)
    part = got[-1]["response"]["output"][0]["content"][0]
    assert part["annotations"] == [{"type": "url_citation", "url": "https://example.com/a", "title": "A",
                                    "start_index": 0, "end_index": 4}]
    assert "output_text.annotation.added" in types(got)


def test_the_sdk_accumulator_rebuilds_the_text():
    """openai-python's accumulator ends with the same text and tool calls the events carried."""
    got, _ = run(REASONING_TOOLS)
    state = check(got)
    final = state._completed_response
    assert final.output_text == "Checking."
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call", "function_call"]


# ---------------------------------------------------------------- whole replies
def test_a_whole_chat_reply_becomes_a_response_object(openai_schema):
    """reply.to_response: the same items and usage as a stream would give, valid per the Response schema."""
    msg = OutMessage(content="It is 4 C.", reasoning_content="Look it up.",
                     tool_calls=[OutToolCall("call_x", OutFunction("get_weather", '{"city":"Oslo"}'))])
    completion = ChatCompletion("chatcmpl-1", 0, "qwen3:8b", [Choice(msg, "tool_calls")], usage=Usage.of(12, 7))
    resp = to_response(completion, inbound(include=["reasoning.encrypted_content"], metadata={"k": "v"},
                                           instructions="Be brief", temperature=0.5))
    openai_schema("Response", resp)
    assert resp["status"] == "completed" and resp["object"] == "response" and resp["id"].startswith("resp_")
    assert [o["type"] for o in resp["output"]] == ["reasoning", "message", "function_call"]
    assert decode_reasoning(resp["output"][0]["encrypted_content"]) == "Look it up."
    assert resp["usage"]["input_tokens"] == 12 and resp["usage"]["total_tokens"] == 19
    assert (resp["instructions"], resp["temperature"], resp["metadata"]) == ("Be brief", 0.5, {"k": "v"})
    assert resp["tools"][0]["name"] == "get_weather"


def test_a_whole_reply_cut_by_length_is_incomplete():
    """A non-streaming reply with finish_reason length has status incomplete and says why."""
    completion = ChatCompletion("c", 0, "m", [Choice(OutMessage(content="Once"), "length")])
    resp = to_response(completion, inbound())
    assert resp["status"] == "incomplete" and resp["incomplete_details"] == {"reason": "max_output_tokens"}


# ---------------------------------------------------------------- litegate's own web search
SEARCHED = [Started(), ServerToolCall("call_s1", "web_search", '{"query":"oslo weather"}'),
            ServerToolCall("call_s2", "fetch_url", '{"url":"https://example.com/a"}'),
            ServerToolResult("call_s1", "web_search", [{"url": "https://example.com/a", "title": "A", "snippet": "4 C"}]),
            ServerToolResult("call_s2", "fetch_url", error="timed out"),
            TextDelta("It is 4 C."),
            Citations([Annotation(UrlCitation(url="https://example.com/a", title="A", start_index=0, end_index=10))]),
            UsageEvent(Usage.of(30, 5)), Finish("stop")]


def test_server_side_search_is_reported_as_web_search_call_items(openai_schema):
    """Searches litegate runs appear as web_search_call items (in_progress, searching, completed), a page
    fetch as an open_page action, a failed one as status failed; never as a function call."""
    got, _ = run(SEARCHED, include=["web_search_call.action.sources"])
    check(got, openai_schema)
    search, fetch, message = got[-1]["response"]["output"]
    assert search["type"] == fetch["type"] == "web_search_call"
    assert search["status"] == "completed"
    assert search["action"] == {"type": "search", "query": "oslo weather", "queries": ["oslo weather"],
                                "sources": [{"type": "url", "url": "https://example.com/a"}]}
    assert fetch["status"] == "failed" and fetch["action"] == {"type": "open_page", "url": "https://example.com/a"}
    assert message["content"][0]["annotations"][0]["url"] == "https://example.com/a"
    assert "function_call" not in json.dumps(got)
    assert types(got)[2:6] == ["output_item.added", "web_search_call.in_progress", "web_search_call.searching",
                               "output_item.added"]


def test_search_sources_only_when_included():
    """action.sources is listed only when include asks for web_search_call.action.sources."""
    got, _ = run(SEARCHED)
    assert "sources" not in got[-1]["response"]["output"][0]["action"]
