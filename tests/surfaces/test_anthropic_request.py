"""The Anthropic face's request side: a Messages body decoded and mapped onto the chat form
(anthropic-messages.md §9, mapping.md §7.1). Pure functions; no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from litegate.errors import BadRequest
from litegate.surfaces.anthropic import decoder, estimate, to_chat
from litegate.surfaces.base import token
from litegate.surfaces.base import decode
from litegate.wire import NamedToolChoice

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "requests" / "anthropic"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def chat_of(body: dict[str, Any]):
    return to_chat(decode(decoder, json.dumps(body).encode()))


def body(**over: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}], **over}


# ---------------------------------------------------------------- the recorded Claude Code turn
def test_claude_code_turn_maps_onto_chat_with_ids_order_and_system_kept():
    """The recorded Claude Code turn: attribution block dropped, other system blocks joined, tool ids
    kept, results first and in order, is_error said in the text, result images moved to the user
    message after the tool messages, replayed thinking kept as reasoning, betas' fields ignored."""
    chat, search = chat_of(fixture("claude_code_main_loop")["body"])
    roles = [m.role for m in chat.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user", "assistant", "tool", "user"]
    system = chat.messages[0].content
    assert "x-anthropic-billing-header" not in system
    assert system.startswith("You are Claude Code") and "<env>" in system
    first = chat.messages[2]
    assert [c.id for c in first.tool_calls] == ["toolu_01Lx7hM2x3W9rK5bVj8cQe4N", "toolu_01Hq4n2Zt6yP8sDf3Gk7mWa1"]
    assert json.loads(first.tool_calls[0].function.arguments) == {"command": "ls *.py", "description": "List python files"}
    assert first.reasoning_content.startswith("The user wants the file list")
    assert [m.tool_call_id for m in chat.messages if m.role == "tool"] == [
        "toolu_01Lx7hM2x3W9rK5bVj8cQe4N", "toolu_01Hq4n2Zt6yP8sDf3Gk7mWa1", "toolu_01Pz9c8Vb7Nm6Xa5Sd4Fg3Hj"]
    assert chat.messages[4].content.startswith("Error: ") and "timed out" in chat.messages[4].content
    last = chat.messages[-1].content
    assert [p.type for p in last] == ["image_url", "text"] and last[1].text == "Go on."
    assert last[0].image_url.url == f"data:image/png;base64,{PNG}"
    assert len(chat.tools) == 15 and chat.tools[1].function.name == "Bash"
    assert chat.tools[1].function.parameters["additionalProperties"] is False
    assert chat.reasoning_effort == "high"  # budget 31999
    assert chat.stream and chat.stream_options.include_usage and chat.max_tokens == 32000
    assert chat.user.startswith("lg-") and len(chat.user) <= 64  # the long JSON user_id is hashed
    assert search is None


def test_claude_code_web_search_subrequest_asks_litegate_to_search():
    """WebSearch's sub-request declares only web_search_20250305: litegate's search is switched on,
    with the tool's name and max_uses, and no function tool is passed to the model."""
    chat, search = chat_of(fixture("claude_code_web_search")["body"])
    assert search is not None and search.name == "web_search" and search.max_uses == 8
    assert chat.web_search_options == {} and chat.tools is None
    assert chat.messages[0].content.endswith("performing a web search tool use")


def test_count_tokens_fixture_decodes_without_max_tokens_and_estimates_from_its_content():
    """count_tokens bodies have no max_tokens; the estimate grows with the prompt and tool schemas."""
    req = decode(decoder, json.dumps(fixture("claude_code_count_tokens")["body"]).encode())
    small = decode(decoder, json.dumps({"model": "m", "messages": [{"role": "user", "content": "foo"}]}).encode())
    assert req.max_tokens is None
    assert estimate(req) > estimate(small) + 100  # tools and system blocks count
    assert estimate(small) >= 1


# ---------------------------------------------------------------- field mapping, table-driven
def _effort(c): return c.reasoning_effort


CASES = [
    ("system string", body(system="Be brief."), lambda c: c.messages[0].content, "Be brief."),
    ("stop_sequences", body(stop_sequences=["\n\nHuman:", "END"]), lambda c: c.stop, ["\n\nHuman:", "END"]),
    ("sampling", body(temperature=0.2, top_p=0.9, top_k=40), lambda c: (c.temperature, c.top_p, c.top_k),
     (0.2, 0.9, 40)),
    ("max_tokens", body(max_tokens=64000), lambda c: c.max_tokens, 64000),
    ("short user id kept", body(metadata={"user_id": "u-1"}), lambda c: c.user, "u-1"),
    ("no stream: no usage option", body(), lambda c: (c.stream, c.stream_options), (False, None)),
    ("thinking 1024 -> low", body(thinking={"type": "enabled", "budget_tokens": 1024}), _effort, "low"),
    ("thinking 8000 -> medium", body(thinking={"type": "enabled", "budget_tokens": 8000}), _effort, "medium"),
    ("thinking 20000 -> high", body(thinking={"type": "enabled", "budget_tokens": 20000}), _effort, "high"),
    ("adaptive -> medium", body(thinking={"type": "adaptive"}), _effort, "medium"),
    ("adaptive + effort", body(thinking={"type": "adaptive"}, output_config={"effort": "low"}), _effort, "low"),
    ("effort max -> high", body(output_config={"effort": "max"}), _effort, "high"),
    ("disabled -> none", body(thinking={"type": "disabled"}), _effort, "none"),
    ("no thinking", body(), _effort, None),
    ("json schema", body(output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}}),
     lambda c: (c.response_format.type, c.response_format.json_schema.schema), ("json_schema", {"type": "object"})),
    ("tool_choice any", body(tools=[{"name": "t", "input_schema": {"type": "object"}}], tool_choice={"type": "any"}),
     lambda c: c.tool_choice, "required"),
    ("tool_choice none", body(tools=[{"name": "t", "input_schema": {"type": "object"}}], tool_choice={"type": "none"}),
     lambda c: c.tool_choice, "none"),
    ("tool_choice tool", body(tools=[{"name": "t", "input_schema": {"type": "object"}}], tool_choice={"type": "tool", "name": "t"}),
     lambda c: isinstance(c.tool_choice, NamedToolChoice) and c.tool_choice.function.name, "t"),
    ("no parallel", body(tools=[{"name": "t", "input_schema": {"type": "object"}}],
                         tool_choice={"type": "auto", "disable_parallel_tool_use": True}),
     lambda c: (c.tool_choice, c.parallel_tool_calls), ("auto", False)),
    ("tool without schema", body(tools=[{"name": "t"}]), lambda c: c.tools[0].function.parameters,
     {"type": "object", "properties": {}}),
    ("unknown fields ignored", body(container="c1", mcp_servers=[], context_management={"edits": []},
                                    service_tier="auto", future_field={"x": 1}),
     lambda c: c.messages[0].content, "Hi"),
    ("image url", body(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}, {"type": "text", "text": "?"}]}]),
     lambda c: c.messages[0].content[0].image_url.url, "https://example.com/cat.jpg"),
    ("text blocks joined", body(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": ""},
                                                                      {"type": "text", "text": "b"}]}]),
     lambda c: c.messages[0].content, "a\n\nb"),
    ("no-argument tool_use", body(messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "LS", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]}]),
     lambda c: (c.messages[1].tool_calls[0].function.arguments, c.messages[2].content), ("{}", "")),
    ("redacted thinking dropped", body(messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "EmwK"}, {"type": "text", "text": "ok"}]},
        {"role": "user", "content": "more"}]),
     lambda c: (c.messages[1].content, c.messages[1].reasoning_content), ("ok", None)),
    ("prefill kept last", body(messages=[{"role": "user", "content": "Say"}, {"role": "assistant", "content": "Sure:"}]),
     lambda c: (c.messages[-1].role, c.messages[-1].content), ("assistant", "Sure:")),
]


@pytest.mark.parametrize("name,raw,get,expected", CASES, ids=[c[0] for c in CASES])
def test_field_maps_onto_chat(name, raw, get, expected):
    """Each Messages field lands on the chat field mapping.md §7.1 names, with the value it says."""
    chat, _ = chat_of(raw)
    assert get(chat) == expected


def test_replayed_server_search_splits_the_assistant_turn():
    """A replayed server_tool_use + web_search_tool_result becomes a web_search call, its result (the
    snippet decoded from litegate's encrypted_content) and the answer text as the next message."""
    chat, _ = chat_of(body(messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Searching."},
            {"type": "server_tool_use", "id": "srvtoolu_lg1", "name": "web_search", "input": {"query": "oslo"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_lg1", "content": [
                {"type": "web_search_result", "url": "https://yr.no", "title": "Yr", "encrypted_content": token("4 °C and rain".encode()),
                 "page_age": None}]},
            {"type": "text", "text": "It is 4 °C."}]},
        {"role": "user", "content": "thanks"}]))
    roles = [m.role for m in chat.messages]
    assert roles == ["user", "assistant", "assistant", "tool", "assistant", "user"]
    assert chat.messages[2].tool_calls[0].id == "srvtoolu_lg1"
    assert json.loads(chat.messages[2].tool_calls[0].function.arguments) == {"query": "oslo"}
    assert "4 °C and rain" in chat.messages[3].content and "https://yr.no" in chat.messages[3].content
    assert chat.messages[4].content == "It is 4 °C."


# ---------------------------------------------------------------- faults, in the client's terms
def _pair(result_id: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": result_id, "content": "x"}]}]


BAD = [
    ("missing model", {"max_tokens": 5, "messages": []}, "model"),
    ("role system", body(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
    ("input not object", body(messages=[{"role": "user", "content": "go"}, {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "t", "input": "ls"}]}]), "messages[1].content[0].input"),
    ("no messages", body(messages=[]), "messages"),
    ("max_tokens 0", body(max_tokens=0), "max_tokens"),
    ("temperature 1.5", body(temperature=1.5), "temperature"),
    ("unknown tool_use_id", body(messages=_pair("toolu_9")), "messages[2].content[0].tool_use_id"),
    ("tool_use unanswered", body(messages=_pair("toolu_1")[:2] + [{"role": "user", "content": "hm"},
                                                                  {"role": "assistant", "content": "x"}]),
     "messages[2].content"),
    ("image media type", body(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PNG}}]}]),
     "messages[0].content[0].source.media_type"),
    ("image base64", body(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "data:image/png;base64,xx"}}]}]),
     "messages[0].content[0].source.data"),
    ("pdf document", body(messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]}]),
     "messages[0].content[0].type"),
    ("empty user turn", body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]), "messages[0]"),
    ("tool_choice unknown", body(tools=[{"name": "t"}], tool_choice={"type": "tool", "name": "u"}), "tool_choice.name"),
    ("tool_choice any without tools", body(tool_choice={"type": "any"}), "tool_choice"),
    ("thinking budget", body(thinking={"type": "enabled", "budget_tokens": 500}), "thinking.budget_tokens"),
    ("effort", body(output_config={"effort": "extreme"}), "output_config.effort"),
    ("anthropic-only server tool", body(tools=[{"type": "bash_20250124", "name": "bash"}]), "tools[0].type"),
    ("schema not object", body(tools=[{"name": "t", "input_schema": {"type": "array"}}]), "tools[0].input_schema.type"),
    ("system image", body(system=[{"type": "image", "source": {"type": "url", "url": "https://x"}}]), "system[0].type"),
]


@pytest.mark.parametrize("name,raw,param", BAD, ids=[b[0] for b in BAD])
def test_bad_request_names_the_field(name, raw, param):
    """A faulty body is a 400 whose param names the field as the client wrote it."""
    with pytest.raises(BadRequest) as info:
        chat_of(raw)
    assert info.value.param == param
    assert info.value.status == 400


def test_empty_and_non_json_bodies_are_400s():
    """An empty or non-JSON body is a BadRequest, not a decoder traceback."""
    for raw in (b"", b"{not json", b"[]"):
        with pytest.raises(BadRequest):
            decode(decoder, raw)
