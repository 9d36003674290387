"""litegate.providers.anthropic: request building, replies, streams and errors (mapping.md §1-§5.2).

The pure functions are called directly; recorded payloads live in tests/data/anthropic/. The last
section sends build_chat's output to the fake Anthropic server, whose validation mirrors the API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from litegate.config import Deployment
from litegate.errors import (
    BadRequest, GatewayError, ModelNotFound, PayloadTooLarge, RateLimited, StreamInterrupted, UpstreamError,
    UpstreamTimeout,
)
from litegate.providers.anthropic import PROVIDER, THINKING_MEMO
from litegate.wire import Finish, ReasoningDelta, TextDelta, ToolCallDelta, UsageEvent, chat_request_decoder
from tests.fakes import anthropic as fake

DATA = Path(__file__).resolve().parent.parent / "data" / "anthropic"
TARGET = Deployment(name="claude", provider="anthropic", model="claude-sonnet-4-5", id="anthropic/claude",
                    api_key="test-anthropic-key")
SIG = "EqQBCkgIBRABGAIiQL0kq0b5Zr0Xx2yUe8c3oM5Vg6dQnYHf0w=="
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def req(messages: list[dict[str, Any]], **fields: Any):
    return chat_request_decoder.decode(json.dumps({"model": "claude", "messages": messages, **fields}))


def build(messages: list[dict[str, Any]], memo: dict | None = None, target: Deployment = TARGET, **fields: Any):
    return json.loads(PROVIDER.build_chat(req(messages, **fields), target, memo or {}).body)


def call(id: str, name: str = "get_weather", args: str = '{"city":"Oslo"}') -> dict[str, Any]:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": args}}


def weather_turns(call_id: str = "call_1") -> list[dict[str, Any]]:
    return [{"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [call(call_id)]},
            {"role": "tool", "tool_call_id": call_id, "content": "4 C"}]


def bad_request(messages: list[dict[str, Any]], **fields: Any) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        build(messages, **fields)
    return info.value


def sse_payloads(text: str) -> list[bytes]:
    """The `data:` payloads of an SSE text, as the framing layer hands them over."""
    return [line[6:].encode() for line in text.splitlines() if line.startswith("data: ")]


async def events(payloads: list[bytes]) -> list[Any]:
    async def frames():
        for p in payloads:
            yield p
    return [ev async for ev in PROVIDER.parse_chat_stream(frames(), TARGET)]


def stream_of(*lines: dict[str, Any]) -> list[bytes]:
    return [json.dumps(d).encode() for d in lines]


# ---------------------------------------------------------------- request: envelope and conversation
def test_request_envelope():
    """POST api_base/v1/messages with x-api-key, anthropic-version, the backend model and a default max_tokens."""
    up = PROVIDER.build_chat(req([{"role": "user", "content": "hi"}]), TARGET, {})
    assert (up.method, up.url) == ("POST", "https://api.anthropic.com/v1/messages")
    assert up.headers == {"x-api-key": "test-anthropic-key", "anthropic-version": "2023-06-01",
                          "content-type": "application/json"}
    assert json.loads(up.body) == {"model": "claude-sonnet-4-5", "max_tokens": 4096,
                                   "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}


def test_api_base_with_v1_suffix_is_not_doubled():
    """An api_base configured as .../v1 still yields .../v1/messages."""
    target = Deployment(name="c", provider="anthropic", model="m", api_base="http://127.0.0.1:9/v1/")
    assert PROVIDER.build_chat(req([{"role": "user", "content": "x"}]), target, {}).url == "http://127.0.0.1:9/v1/messages"


def test_system_and_developer_messages_anywhere_become_top_level_system():
    """system/developer messages at any position are joined (blank line) into `system`, in order."""
    body = build([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                  {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
                  {"role": "assistant", "content": "hello"}])
    assert body["system"] == "Be brief.\n\nUse metric units."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]


def test_consecutive_same_role_messages_are_merged_and_blank_text_dropped():
    """Neighbouring user messages merge into one turn; empty/blank text blocks and empty assistant turns vanish."""
    body = build([{"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "b"},
                                                                                 {"type": "text", "text": "  "}]},
                  {"role": "assistant", "content": ""}, {"role": "user", "content": "c"}])
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": t} for t in "abc"]}]


def test_tool_results_and_following_user_text_form_one_user_turn_results_first():
    """Consecutive tool messages plus a following user message -> one user turn, tool_result blocks first."""
    body = build([{"role": "user", "content": "Weather and time?"},
                  {"role": "assistant", "content": "Checking.", "tool_calls": [call("call_1"), call("call_2", "get_time", "")]},
                  {"role": "user", "content": "Quickly please."},
                  {"role": "tool", "tool_call_id": "call_1", "content": "4 C"},
                  {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12:00"}]}])
    assistant, results = body["messages"][1:]
    assert assistant["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}]
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "4 C"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "12:00"},
        {"type": "text", "text": "Quickly please."}]}


def test_leading_assistant_gets_a_placeholder_user_turn():
    """The first turn must be user: a placeholder user turn is inserted before a leading assistant."""
    body = build([{"role": "system", "content": "s"}, {"role": "assistant", "content": "Hi!"},
                  {"role": "user", "content": "hello"}])
    assert body["messages"][0] == {"role": "user", "content": [{"type": "text", "text": "Continue."}]}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


def test_system_only_request_sends_the_system_text_as_the_user_turn():
    """A request holding only a system message sends that text as the user turn (and no `system`)."""
    body = build([{"role": "system", "content": "Write a haiku about rain."}])
    assert "system" not in body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Write a haiku about rain."}]}]


def test_assistant_prefill_loses_trailing_whitespace():
    """A final assistant message (prefill) is sent without trailing whitespace, which the API rejects."""
    body = build([{"role": "user", "content": "JSON please"}, {"role": "assistant", "content": "{\n  "}])
    assert body["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "{"}]}


# ---------------------------------------------------------------- request: images
def test_images_data_uri_to_base64_and_http_to_url_source():
    """data: URIs become base64 sources (image/jpg normalised), http(s) URLs become url sources."""
    content = [{"type": "text", "text": "Compare"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
               {"type": "image_url", "image_url": f"data:image/jpg;base64,{PNG}"},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}}]
    blocks = build([{"role": "user", "content": content}])["messages"][0]["content"]
    assert blocks[1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]


@pytest.mark.parametrize("url", [f"data:image/bmp;base64,{PNG}", "ftp://example.com/a.png", "data:image/png,raw"])
def test_unusable_image_is_a_400_naming_the_part(url):
    """An unsupported media type, scheme or malformed data URI -> 400 naming messages[i].content[j].image_url."""
    err = bad_request([{"role": "user", "content": [{"type": "text", "text": "x"},
                                                    {"type": "image_url", "image_url": {"url": url}}]}])
    assert err.param == "messages[0].content[1].image_url"


def test_audio_part_is_a_400():
    """Content parts Anthropic cannot take (input_audio) -> 400 naming the part."""
    err = bad_request([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}])
    assert err.param == "messages[0].content[0]"


# ---------------------------------------------------------------- request: tool history
def test_malformed_tool_arguments_are_a_400_naming_the_message():
    """Tool-call arguments that are not a JSON object -> 400 naming messages[i].tool_calls[j].function.arguments."""
    messages = weather_turns()
    messages[1]["tool_calls"][0]["function"]["arguments"] = '{"city": '
    assert bad_request(messages).param == "messages[1].tool_calls[0].function.arguments"


def test_tool_message_for_unknown_call_is_a_400():
    """A tool message whose tool_call_id matches no earlier call -> 400 naming messages[i].tool_call_id."""
    messages = weather_turns()
    messages[2]["tool_call_id"] = "call_nope"
    assert bad_request(messages).param == "messages[2].tool_call_id"


def test_tool_message_answering_an_older_turn_is_a_400():
    """A result for a call of an earlier assistant turn (not the one just before) -> 400 on its tool_call_id."""
    messages = weather_turns() + [{"role": "assistant", "content": "Done."},
                                  {"role": "tool", "tool_call_id": "call_1", "content": "again"}]
    err = bad_request(messages)
    assert err.param == "messages[4].tool_call_id" and "before it" in err.message


def test_unanswered_tool_call_is_a_400():
    """An assistant tool call without a tool message before the next assistant turn -> 400 naming the call."""
    messages = weather_turns()[:2] + [{"role": "user", "content": "never mind"}, {"role": "assistant", "content": "ok"}]
    assert bad_request(messages).param == "messages[1].tool_calls[0]"


def test_foreign_tool_ids_are_rewritten_consistently():
    """Ids outside ^[a-zA-Z0-9_-]+$ map to one stable valid id in the tool_use and its tool_result; valid ids stay."""
    first = build(weather_turns("fc:1/abc=="))
    second = build(weather_turns("fc:1/abc=="))
    use_id = first["messages"][1]["content"][0]["id"]
    assert use_id == second["messages"][1]["content"][0]["id"] == first["messages"][2]["content"][0]["tool_use_id"]
    assert use_id != "fc:1/abc==" and all(c.isalnum() or c in "_-" for c in use_id)
    assert build(weather_turns("toolu_01A-b"))["messages"][1]["content"][0]["id"] == "toolu_01A-b"


# ---------------------------------------------------------------- request: tools and parameters
def test_tools_map_to_input_schema():
    """tools[].function -> {name, description, input_schema}; a function without parameters gets an empty object schema."""
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
             {"type": "function", "function": {"name": "get_time"}}]
    body = build([{"role": "user", "content": "x"}], tools=tools)
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}]
    assert "tool_choice" not in body


@pytest.mark.parametrize("choice, parallel, expected", [
    ("auto", None, {"type": "auto"}),
    ("none", None, {"type": "none"}),
    ("required", None, {"type": "any"}),
    ({"type": "function", "function": {"name": "get_time"}}, None, {"type": "tool", "name": "get_time"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ("none", False, {"type": "none"}),
])
def test_tool_choice_mapping(choice, parallel, expected):
    """tool_choice auto/none/required/named and parallel_tool_calls:false map per mapping.md §1."""
    fields = {"tools": [{"type": "function", "function": {"name": "get_time"}}], "tool_choice": choice}
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    assert build([{"role": "user", "content": "x"}], **fields)["tool_choice"] == expected


def test_named_tool_choice_for_unknown_tool_is_a_400():
    """tool_choice naming a tool that is not in tools -> 400 on tool_choice."""
    err = bad_request([{"role": "user", "content": "x"}], tools=[{"type": "function", "function": {"name": "a"}}],
                      tool_choice={"type": "function", "function": {"name": "b"}})
    assert err.param == "tool_choice"


def test_sampling_parameters():
    """max_completion_tokens wins; temperature clamps to 1 (and suppresses top_p); stop, user mapped; seed dropped."""
    body = build([{"role": "user", "content": "x"}], max_completion_tokens=300, max_tokens=50, temperature=1.7,
                 top_p=0.5, stop=["END", " "], user="u-42", seed=7)
    assert body["max_tokens"] == 300 and body["temperature"] == 1.0
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "u-42"}
    assert "top_p" not in body and "seed" not in body
    body = build([{"role": "user", "content": "x"}], max_tokens=50, top_p=0.5, stop="STOP", temperature=-1)
    assert (body["max_tokens"], body["temperature"], body["stop_sequences"]) == (50, 0.0, ["STOP"])
    assert build([{"role": "user", "content": "x"}], top_p=0.5)["top_p"] == 0.5


def test_n_above_one_is_a_400_and_stream_flag_only_when_streaming():
    """n > 1 -> 400 with param n (one choice only); `stream: true` is sent only for streaming requests."""
    assert bad_request([{"role": "user", "content": "x"}], n=2).param == "n"
    assert build([{"role": "user", "content": "x"}], stream=True)["stream"] is True
    assert "stream" not in build([{"role": "user", "content": "x"}])


def test_json_object_adds_a_system_instruction():
    """response_format json_object -> an instruction appended to `system`."""
    body = build([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}],
                 response_format={"type": "json_object"})
    assert body["system"].startswith("Be brief.\n\n") and "JSON object" in body["system"]


def test_json_schema_is_a_forced_tool():
    """response_format json_schema -> the reserved json tool with the schema, forced via tool_choice."""
    schema = {"type": "object", "properties": {"temp": {"type": "number"}}, "required": ["temp"]}
    body = build([{"role": "user", "content": "x"}], reasoning_effort="high",
                 response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema}})
    assert body["tools"] == [{"name": "json_tool_call", "input_schema": schema,
                              "description": "Give the final answer (weather) as this tool's input."}]
    assert body["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
    assert "thinking" not in body  # forced tool use and thinking do not mix


def test_json_schema_with_client_tools_lets_the_model_pick_any():
    """With client tools too, tool_choice becomes `any` so a real tool call stays possible."""
    body = build([{"role": "user", "content": "x"}], tools=[{"type": "function", "function": {"name": "get_time"}}],
                 response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}})
    assert [t["name"] for t in body["tools"]] == ["get_time", "json_tool_call"]
    assert body["tool_choice"] == {"type": "any"}


# ---------------------------------------------------------------- request: thinking
@pytest.mark.parametrize("effort, fields, budget, max_tokens", [
    ("low", {}, 1024, 4096),
    ("medium", {}, 4096, 8192),
    ("high", {}, 16384, 20480),
    ("high", {"max_completion_tokens": 8000}, 7999, 8000),
    ("low", {"max_tokens": 500}, 1024, 1025),
])
def test_reasoning_effort_to_thinking_budget(effort, fields, budget, max_tokens):
    """reasoning_effort -> thinking budget >= 1024 and < max_tokens, shrinking to a client limit or raising it."""
    body = build([{"role": "user", "content": "x"}], reasoning_effort=effort, temperature=0.2, top_p=0.5, **fields)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == max_tokens
    assert "temperature" not in body and body["top_p"] == 0.95  # thinking: no temperature, top_p >= 0.95


def test_reasoning_effort_none_and_unknown():
    """reasoning_effort none -> no thinking; an unknown value -> 400 on reasoning_effort."""
    assert "thinking" not in build([{"role": "user", "content": "x"}], reasoning_effort="none")
    assert bad_request([{"role": "user", "content": "x"}], reasoning_effort="huge").param == "reasoning_effort"


def test_remembered_thinking_opens_the_tool_use_turn():
    """memo[call_id]["anthropic_thinking"] blocks are re-sent first in the assistant turn holding that call."""
    blocks = [{"type": "thinking", "thinking": "Need weather.", "signature": SIG},
              {"type": "redacted_thinking", "data": "EmwKAhgB"}]
    messages = weather_turns("toolu_01A")
    messages[1]["content"] = "Let me check."
    body = build(messages, memo={"toolu_01A": {THINKING_MEMO: blocks}}, reasoning_effort="low")
    assert body["thinking"]["type"] == "enabled"
    assert body["messages"][1]["content"] == blocks + [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Oslo"}}]


def test_missing_memo_turns_thinking_off_instead_of_a_400():
    """Without remembered thinking for the latest tool turn the request goes out without thinking."""
    body = build(weather_turns("toolu_01A"), reasoning_effort="high", temperature=0.3)
    assert "thinking" not in body and body["max_tokens"] == 4096 and body["temperature"] == 0.3


def test_remembered_thinking_is_not_sent_when_thinking_is_off():
    """Without reasoning_effort the remembered blocks are left out of the history."""
    memo = {"toolu_01A": {THINKING_MEMO: [{"type": "thinking", "thinking": "t", "signature": SIG}]}}
    body = build(weather_turns("toolu_01A"), memo=memo)
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use"]


# ---------------------------------------------------------------- non-streaming replies
def test_parse_text_and_tool_use_reply():
    """text -> content, tool_use -> tool_calls (compact JSON arguments), tool_use -> finish tool_calls, usage summed."""
    out = PROVIDER.parse_chat((DATA / "chat_text_tool_call.json").read_bytes(), TARGET)
    choice = out.choices[0]
    assert out.model == "claude" and choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check the weather and the time."
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"city":"Oslo","unit":"celsius"}'),
        ("toolu_01B7nS8uQe6Yk2FvV3c4Tj1m", "get_time", "{}")]
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (412, 58, 470)


def test_parse_thinking_reply_remembers_blocks_for_the_tool_call():
    """thinking -> reasoning_content; thinking + redacted blocks go to memo under the following tool call's id."""
    out = PROVIDER.parse_chat((DATA / "chat_thinking_tool_call.json").read_bytes(), TARGET)
    msg = out.choices[0].message
    assert msg.content is None and msg.reasoning_content.startswith("The user asks")
    assert out.memo == {"toolu_01CTh1nk1ngW3ath3r000001": {THINKING_MEMO: [
        {"type": "thinking", "thinking": "The user asks about Oslo's weather; I need the get_weather tool.",
         "signature": SIG},
        {"type": "redacted_thinking",
         "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj5GdEQKh13w"}]}}
    assert out.usage.prompt_tokens == 380 + 1200 + 2048
    assert out.usage.prompt_tokens_details.cached_tokens == 2048


def test_parse_plain_text_reply():
    """A text-only reply: content string, finish stop, no tool_calls, no memo."""
    out = PROVIDER.parse_chat((DATA / "chat_text.json").read_bytes(), TARGET)
    assert out.choices[0].message.content == "It is 4 °C in Oslo." and out.choices[0].finish_reason == "stop"
    assert "tool_calls" not in msgspec.to_builtins(out)["choices"][0]["message"] and out.memo is msgspec.UNSET


@pytest.mark.parametrize("stop_reason, finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("refusal", "content_filter"), ("something_new", "stop"),
])
def test_stop_reason_mapping(stop_reason, finish):
    """Anthropic stop_reason -> OpenAI finish_reason per mapping.md §3."""
    body = {"type": "message", "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason,
            "usage": {"input_tokens": 1, "output_tokens": 1}}
    assert PROVIDER.parse_chat(json.dumps(body).encode(), TARGET).choices[0].finish_reason == finish


def test_json_tool_reply_is_content_with_finish_stop():
    """The json_schema tool's input is returned as message content with finish_reason stop."""
    body = {"type": "message", "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 9},
            "content": [{"type": "tool_use", "id": "toolu_9", "name": "json_tool_call", "input": {"temp": 4}}]}
    choice = PROVIDER.parse_chat(json.dumps(body).encode(), TARGET).choices[0]
    assert (choice.message.content, choice.finish_reason) == ('{"temp":4}', "stop")
    assert choice.message.tool_calls is msgspec.UNSET


def test_reply_that_is_not_anthropic_json_is_an_upstream_error():
    """A body that is not a Messages object -> UpstreamError (502), not a crash."""
    with pytest.raises(UpstreamError):
        PROVIDER.parse_chat(b"<html>bad gateway</html>", TARGET)


# ---------------------------------------------------------------- streams
async def test_stream_tool_calls_from_recorded_sse():
    """Tool stream: id+name with "" first, input_json_delta fragments, "{}" for a tool with no fragments, finish tool_calls."""
    out = await events(sse_payloads((DATA / "chat_stream_tool_call.sse").read_text()))
    assert out == [
        TextDelta("Let me check"), TextDelta(" the weather."),
        ToolCallDelta(0, "", "toolu_01A09q90qw90lq917835lq9", "get_weather"),
        ToolCallDelta(0, '{"city": "Os'), ToolCallDelta(0, 'lo", "unit"'), ToolCallDelta(0, ': "celsius"}'),
        ToolCallDelta(1, "", "toolu_01B7nS8uQe6Yk2FvV3c4Tj1m", "get_time"), ToolCallDelta(1, "{}"),
        UsageEvent(out[-2].usage), Finish("tool_calls")]
    assert (out[-2].usage.prompt_tokens, out[-2].usage.completion_tokens) == (412, 58)


async def test_stream_text_with_ping_and_cache_usage():
    """Text stream: pings ignored, text deltas in order, cache reads counted in prompt and cached_tokens."""
    out = await events(sse_payloads((DATA / "chat_stream_text.sse").read_text()))
    assert out[:3] == [TextDelta("It is"), TextDelta(" 4 °C"), TextDelta(" in Oslo.")]
    assert out[4] == Finish("stop")
    usage = out[3].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens) == (1821, 14, 1800)


async def test_stream_thinking_rides_on_the_first_tool_fragment_and_round_trips():
    """thinking_delta -> ReasoningDelta; thinking + signature go in extra of the tool's first fragment, and
    build_chat re-sends them from that memo."""
    out = await events(sse_payloads((DATA / "chat_stream_thinking_tool_call.sse").read_text()))
    assert out[:2] == [ReasoningDelta("The user asks about Oslo's weather;"), ReasoningDelta(" I need the get_weather tool.")]
    first = out[2]
    assert (first.id, first.name, first.arguments) == ("toolu_01CTh1nk1ngW3ath3r000001", "get_weather", "")
    blocks = [{"type": "thinking", "thinking": "The user asks about Oslo's weather; I need the get_weather tool.",
               "signature": SIG}]
    assert first.extra == {THINKING_MEMO: blocks}
    assert all(ev.extra is None for ev in out[3:] if isinstance(ev, ToolCallDelta))
    body = build(weather_turns(first.id), memo={first.id: first.extra}, reasoning_effort="medium")
    assert body["messages"][1]["content"][0] == blocks[0]


async def test_stream_error_event_raises_mapped_error():
    """An `error` event mid-stream raises the mapped GatewayError (overloaded -> 503) with the backend message."""
    with pytest.raises(GatewayError) as info:
        await events(sse_payloads((DATA / "chat_stream_error.sse").read_text()))
    assert info.value.status == 503 and info.value.retryable and "Overloaded" in info.value.message


async def test_stream_eof_before_message_stop_is_interrupted():
    """EOF before message_stop -> StreamInterrupted."""
    payloads = sse_payloads((DATA / "chat_stream_text.sse").read_text())[:-1]
    with pytest.raises(StreamInterrupted):
        await events(payloads)


async def test_stream_json_tool_streams_as_content():
    """The json_schema tool's input_json_delta fragments stream as text and the finish is stop."""
    out = await events(stream_of(
        {"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_9", "name": "json_tool_call", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"te'}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": 'mp": 4}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}},
        {"type": "message_stop"}))
    assert out[:2] == [TextDelta('{"te'), TextDelta('mp": 4}')] and out[-1] == Finish("stop")


async def test_stream_tool_with_only_empty_fragment_gets_empty_object_and_redacted_thinking_is_kept():
    """A tool whose only input_json_delta is "" gets "{}" at its stop; redacted_thinking rides in extra."""
    out = await events(stream_of(
        {"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "RDX"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
         "usage": {"output_tokens": 7, "input_tokens": 6, "cache_read_input_tokens": 2}},
        {"type": "message_stop"}))
    assert out[:2] == [ToolCallDelta(0, "", "toolu_1", "get_time", {THINKING_MEMO: [{"type": "redacted_thinking",
                                                                                       "data": "RDX"}]}),
                       ToolCallDelta(0, "{}")]
    assert (out[2].usage.prompt_tokens, out[2].usage.completion_tokens) == (8, 7)  # later counts win


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("status, kind, cls, code_status, retryable", [
    (400, "invalid_request_error", BadRequest, 400, False),
    (401, "authentication_error", UpstreamError, 502, False),
    (403, "permission_error", UpstreamError, 502, False),
    (404, "not_found_error", ModelNotFound, 404, True),  # per deployment: others may have the model
    (413, "request_too_large", PayloadTooLarge, 413, False),
    (429, "rate_limit_error", RateLimited, 429, True),
    (500, "api_error", UpstreamError, 502, True),
    (504, "timeout_error", UpstreamTimeout, 504, True),
    (529, "overloaded_error", UpstreamError, 503, True),
])
def test_error_body_mapping(status, kind, cls, code_status, retryable):
    """Anthropic error types map to the GatewayError tree with the right status and retryable flag."""
    body = json.dumps({"type": "error", "error": {"type": kind, "message": "boom"}, "request_id": "req_1"}).encode()
    err = PROVIDER.parse_error(status, body, {"retry-after": "2"})
    assert isinstance(err, cls) and err.status == code_status and err.retryable is retryable
    assert "boom" in err.message


def test_recorded_errors():
    """Recorded bodies: rate limit keeps retry-after; overloaded is 503 service_unavailable; invalid request keeps text."""
    rate = PROVIDER.parse_error(429, (DATA / "error_rate_limited.json").read_bytes(), {"retry-after": "2"})
    assert isinstance(rate, RateLimited) and rate.retry_after == 2.0 and rate.headers() == {"retry-after": "2"}
    over = PROVIDER.parse_error(529, (DATA / "error_overloaded.json").read_bytes(), {})
    assert (over.status, over.type, over.message) == (503, "service_unavailable_error", "Overloaded")
    bad = PROVIDER.parse_error(400, (DATA / "error_invalid_request.json").read_bytes(), {})
    assert isinstance(bad, BadRequest) and bad.message.startswith("messages.1: `tool_use` ids")
    auth = PROVIDER.parse_error(401, (DATA / "error_authentication.json").read_bytes(), {})
    assert auth.status == 502 and not auth.retryable


def test_non_json_error_body_falls_back_to_status():
    """A non-JSON error body (e.g. a proxy's 529/502 page) maps by status."""
    assert PROVIDER.parse_error(529, b"<html>overloaded</html>", {}).status == 503
    assert PROVIDER.parse_error(502, b"Bad Gateway", {}).status == 502


# ---------------------------------------------------------------- against the fake server
async def post(client, up) -> Any:
    return await client.post("/v1/messages", data=up.body, headers=dict(up.headers))


async def test_fake_accepts_a_translated_thinking_tool_round_trip(aiohttp_client):
    """thinking-tools reply -> memo -> next request with the same effort passes the API's thinking/tool rules."""
    client = await aiohttp_client(fake.make_app())
    first = req([{"role": "user", "content": "Weather in Oslo?"}], model="thinking-tools", reasoning_effort="low")
    reply = PROVIDER.parse_chat(await (await post(client, PROVIDER.build_chat(first, _model("thinking-tools"), {}))).read(),
                                TARGET)
    call_id = reply.choices[0].message.tool_calls[0].id
    follow = [{"role": "user", "content": "Weather in Oslo?"},
              {"role": "assistant", "content": None, "tool_calls": [call(call_id)]},
              {"role": "tool", "tool_call_id": call_id, "content": "4 C"}]
    up = PROVIDER.build_chat(req(follow, reasoning_effort="low"), _model("thinking-tools"), reply.memo)
    resp = await post(client, up)
    assert resp.status == 200, await resp.text()
    assert json.loads(up.body)["thinking"]["budget_tokens"] == 1024


async def test_fake_rejects_what_build_chat_avoids(aiohttp_client):
    """The fake 400s a tool turn without its thinking; build_chat without memo drops thinking and passes."""
    client = await aiohttp_client(fake.make_app())
    up = PROVIDER.build_chat(req(weather_turns("toolu_1"), reasoning_effort="low"), TARGET, {})
    assert (await post(client, up)).status == 200
    raw = {**json.loads(up.body), "thinking": {"type": "enabled", "budget_tokens": 1024}}
    resp = await client.post("/v1/messages", json=raw, headers=dict(up.headers))
    assert resp.status == 400 and "thinking" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("model, expect", [
    ("tools", Finish("tool_calls")), ("thinking", Finish("stop")), ("refusal", Finish("content_filter")),
    ("max-tokens", Finish("length")), ("echo", Finish("stop")), ("truncated", StreamInterrupted),
    ("error-event", GatewayError),
])
async def test_fake_streams_parse(aiohttp_client, model, expect):
    """Each fake stream scenario parses into events ending in the mapped Finish, or raises when it breaks."""
    client = await aiohttp_client(fake.make_app())
    resp = await post(client, PROVIDER.build_chat(req([{"role": "user", "content": "hi"}], stream=True), _model(model), {}))
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
    if isinstance(expect, type):
        with pytest.raises(expect):
            await events(sse_payloads(await resp.text()))
        return
    out = await events(sse_payloads(await resp.text()))
    assert out[-1] == expect and isinstance(out[-2], UsageEvent)


@pytest.mark.parametrize("model, status, cls", [("overloaded", 529, UpstreamError), ("rate-limited", 429, RateLimited)])
async def test_fake_http_errors_map(aiohttp_client, model, status, cls):
    """Fake 529/429 answers map through parse_error (503 / 429 with retry-after 2)."""
    client = await aiohttp_client(fake.make_app())
    resp = await post(client, PROVIDER.build_chat(req([{"role": "user", "content": "hi"}]), _model(model), {}))
    assert resp.status == status
    err = PROVIDER.parse_error(resp.status, await resp.read(), resp.headers)
    assert isinstance(err, cls) and err.retryable
    assert err.retry_after == (2.0 if model == "rate-limited" else None)


async def test_fake_checks_the_api_key(aiohttp_client):
    """A wrong x-api-key gets 401 authentication_error, which maps to a non-retryable 502."""
    resp = await post(await aiohttp_client(fake.make_app(api_key="other")), PROVIDER.build_chat(req([]), TARGET, {}))
    assert resp.status == 401 and PROVIDER.parse_error(401, await resp.read(), resp.headers).status == 502


def _model(name: str) -> Deployment:
    return Deployment(name="claude", provider="anthropic", model=name, api_key="test-anthropic-key")
