"""The Gemini provider's pure functions (litegate.providers.gemini), and their fit with the fake API."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from litegate.core.events import Aggregator
from litegate.config import Deployment
from litegate.errors import BadRequest, ModelNotFound, RateLimited, StreamInterrupted, UpstreamError
from litegate.providers.gemini import PROVIDER
from litegate.providers.gemini.request import DUMMY_SIGNATURE, MEMO_ID, MEMO_NAME, MEMO_SIG
from litegate.providers.gemini.response import UsageMetadata, finish_reason, usage
from litegate.providers.gemini.schema import sanitize
from litegate.wire import (
    EmbeddingsRequest, Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage, UsageEvent, chat_request_decoder,
)
from tests.fakes import gemini as fake

DATA = Path(__file__).resolve().parents[1] / "data" / "gemini"
TARGET = Deployment(name="gem", provider="gemini", model="gemini-2.5-flash", id="gemini/gemini-2.5-flash",
                    api_key="sekret")
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
TOOL_TURN = [
    {"role": "user", "content": "Weather and time in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
    {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp_c\": 4}"},
    {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
]


def chat(doc: dict[str, Any]):
    return chat_request_decoder.decode(orjson.dumps({"model": "gem", **doc}))


def body_of(doc: dict[str, Any], memo: dict | None = None, target: Deployment = TARGET) -> dict[str, Any]:
    return orjson.loads(PROVIDER.build_chat(chat(doc), target, memo or {}).body)


def user(text: str = "Hi") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def frames_of(raw: bytes):
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        if block.startswith(b"data: "):
            yield block[6:]


async def events_of(raw: bytes) -> list:
    return [ev async for ev in PROVIDER.parse_chat_stream(frames_of(raw), TARGET)]


# ---------------------------------------------------------------- request: URL, roles, merging
def test_url_and_key_header_for_both_modes():
    """Non-stream goes to :generateContent, stream to :streamGenerateContent?alt=sse, key in x-goog-api-key."""
    plain = PROVIDER.build_chat(chat({"messages": user()}), TARGET, {})
    streamed = PROVIDER.build_chat(chat({"messages": user(), "stream": True}), TARGET, {})
    base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
    assert plain.url == base + ":generateContent"
    assert streamed.url == base + ":streamGenerateContent?alt=sse"
    assert plain.headers["x-goog-api-key"] == "sekret" and plain.method == "POST"
    other = Deployment(name="g", provider="gemini", model="models/m1", api_base="http://h:1/v1beta/")
    url = PROVIDER.build_chat(chat({"messages": user()}), other, {}).url
    assert url == "http://h:1/v1beta/models/m1:generateContent"


def test_system_and_developer_messages_anywhere_become_system_instruction():
    """system/developer messages, wherever they are, leave contents and become systemInstruction parts."""
    body = body_of({"messages": [{"role": "system", "content": "Be terse."}, *user(),
                                 {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]}]})
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}, {"text": "Use metric."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_same_role_turns_merge_and_assistant_becomes_model():
    """Consecutive same-role messages merge into one content; assistant maps to role model."""
    body = body_of({"messages": [*user("a"), *user("b"), {"role": "assistant", "content": "c"},
                                 {"role": "assistant", "content": "d"}, *user("e")]})
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
                                {"role": "model", "parts": [{"text": "c"}, {"text": "d"}]},
                                {"role": "user", "parts": [{"text": "e"}]}]


def test_system_only_request_is_sent_as_a_user_turn():
    """Gemini needs one content: a system-only request sends the system text as the user's turn."""
    body = body_of({"messages": [{"role": "system", "content": "Say hi."}]})
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Say hi."}]}]
    assert "systemInstruction" not in body


def test_request_with_nothing_to_send_is_400():
    """Only empty messages: a 400 naming `messages` instead of an upstream call."""
    with pytest.raises(BadRequest) as e:
        body_of({"messages": user("")})
    assert e.value.param == "messages"


def test_tool_results_become_one_user_content_of_function_responses():
    """Consecutive tool messages -> one user content, names from tool_call_id, JSON results parsed."""
    body = body_of({"messages": TOOL_TURN})
    assert body["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"result": {"temp_c": 4}}}},
        {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}}]}
    assert body["contents"][1]["parts"][1] == {"functionCall": {"name": "get_time", "args": {}}}


def test_unknown_tool_call_id_is_400_naming_the_field():
    """A tool message answering no earlier call is refused with param messages[i].tool_call_id."""
    with pytest.raises(BadRequest) as e:
        body_of({"messages": [*user(), {"role": "tool", "tool_call_id": "call_zz", "content": "x"}]})
    assert e.value.param == "messages[1].tool_call_id"


# ---------------------------------------------------------------- request: images
def test_data_uri_image_becomes_inline_data():
    """An image_url data URI becomes inlineData {mimeType, data}; image/jpg is normalised."""
    parts = [{"type": "text", "text": "What is this?"},
             {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
             {"type": "image_url", "image_url": f"data:image/jpg;base64,{PNG}"}]
    body = body_of({"messages": [{"role": "user", "content": parts}]})
    assert body["contents"][0]["parts"] == [{"text": "What is this?"},
                                            {"inlineData": {"mimeType": "image/png", "data": PNG}},
                                            {"inlineData": {"mimeType": "image/jpeg", "data": PNG}}]


@pytest.mark.parametrize("url", [f"data:image/gif;base64,{PNG}", "https://example.com/cat.png", "data:image/png,xx"])
def test_images_gemini_cannot_take_are_400_naming_the_part(url):
    """Unsupported mime types, un-inlined URLs and bad data URIs: 400 naming messages[i].content[j].image_url."""
    parts = [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": url}}]
    with pytest.raises(BadRequest) as e:
        body_of({"messages": [*user(), {"role": "user", "content": parts}]})
    assert e.value.param == "messages[1].content[1].image_url"


def test_input_audio_is_inlined_and_other_part_types_are_400():
    """input_audio -> inlineData audio/<format>; a part type Gemini cannot take -> 400 naming its type."""
    audio = [{"type": "input_audio", "input_audio": {"data": PNG, "format": "wav"}}]
    body = body_of({"messages": [{"role": "user", "content": audio}]})
    assert body["contents"][0]["parts"] == [{"inlineData": {"mimeType": "audio/wav", "data": PNG}}]
    with pytest.raises(BadRequest) as e:
        body_of({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]})
    assert e.value.param == "messages[0].content[0].type"


# ---------------------------------------------------------------- request: signatures and ids
def test_memo_restores_thought_signature_and_gemini_ids():
    """Calls get back the thoughtSignature (and Gemini id) remembered under their OpenAI id."""
    memo = {"call_a": {MEMO_NAME: "get_weather", MEMO_SIG: "SIG-A", MEMO_ID: "g-1"},
            "call_b": {MEMO_NAME: "get_time"}}
    parts = body_of({"messages": TOOL_TURN}, memo)["contents"]
    assert parts[1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}, "id": "g-1"}, "thoughtSignature": "SIG-A"},
        {"functionCall": {"name": "get_time", "args": {}}}]
    assert parts[2]["parts"][0]["functionResponse"]["id"] == "g-1"
    assert "id" not in parts[2]["parts"][1]["functionResponse"]


def test_lost_signature_gets_the_dummy_on_the_first_call_of_the_turn():
    """Without a Gemini memo entry (restart, other provider) the step's first call carries the dummy."""
    memo = {"call_a": {"anthropic_thing": 1}}
    calls = body_of({"messages": TOOL_TURN}, memo)["contents"][1]["parts"]
    assert calls[0]["thoughtSignature"] == DUMMY_SIGNATURE == "skip_thought_signature_validator"
    assert "thoughtSignature" not in calls[1]


def test_invalid_tool_arguments_are_400():
    """Assistant tool-call arguments that are not a JSON object are refused, naming the field."""
    bad = copy.deepcopy(TOOL_TURN)
    bad[1]["tool_calls"][0]["function"]["arguments"] = "{oops"
    with pytest.raises(BadRequest) as e:
        body_of({"messages": bad})
    assert e.value.param == "messages[1].tool_calls[0].function.arguments"


# ---------------------------------------------------------------- request: tools
def test_tools_become_function_declarations_and_empty_parameters_are_omitted():
    """tools -> one functionDeclarations entry; missing or empty parameters leave out `parameters`."""
    tools = [WEATHER, {"type": "function", "function": {"name": "get_time"}},
             {"type": "function", "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}}}]
    body = body_of({"messages": user(), "tools": tools})
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Current weather",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "get_time"}, {"name": "noop"}]}]
    assert "toolConfig" not in body


@pytest.mark.parametrize("choice, config", [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
def test_tool_choice_maps_to_function_calling_config(choice, config):
    """tool_choice auto/none/required/named -> functionCallingConfig AUTO/NONE/ANY/ANY+allowedFunctionNames."""
    body = body_of({"messages": user(), "tools": [WEATHER], "tool_choice": choice})
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_tool_choice_naming_an_unknown_tool_is_400():
    """A named tool_choice must name a declared tool."""
    with pytest.raises(BadRequest) as e:
        body_of({"messages": user(), "tools": [WEATHER], "tool_choice": {"function": {"name": "nope"}}})
    assert e.value.param == "tool_choice"


# ---------------------------------------------------------------- request: generationConfig
def test_generation_config_maps_sampling_fields():
    """max_completion_tokens wins over max_tokens; temperature is clamped to [0, 2]; the rest map by name."""
    body = body_of({"messages": user(), "max_tokens": 10, "max_completion_tokens": 20, "temperature": 3.5,
                    "top_p": 0.9, "stop": "END", "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.5, "n": 1})
    assert body["generationConfig"] == {"maxOutputTokens": 20, "temperature": 2.0, "topP": 0.9,
                                        "stopSequences": ["END"], "seed": 7, "presencePenalty": 0.5,
                                        "frequencyPenalty": -0.5}


@pytest.mark.parametrize("doc, param", [
    ({"n": 2}, "n"), ({"stop": ["a", "b", "c", "d", "e", "f"]}, "stop"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"tool_choice": "sometimes", "tools": [WEATHER]}, "tool_choice"),
])
def test_values_gemini_cannot_honour_are_400(doc, param):
    """n>1, more than 5 stop sequences, unknown reasoning_effort or tool_choice: 400 naming the param."""
    with pytest.raises(BadRequest) as e:
        body_of({"messages": user(), **doc})
    assert e.value.param == param


def test_response_format_maps_to_mime_type_and_json_schema():
    """json_object -> responseMimeType; json_schema also sends the schema as responseJsonSchema."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    obj = body_of({"messages": user(), "response_format": {"type": "json_object"}})["generationConfig"]
    js = body_of({"messages": user(), "response_format": {"type": "json_schema",
                                                          "json_schema": {"name": "x", "schema": schema}}})
    assert obj == {"responseMimeType": "application/json"}
    assert js["generationConfig"]["responseJsonSchema"] == {k: v for k, v in schema.items() if k != "$schema"}


@pytest.mark.parametrize("effort, thinking", [
    ("none", {"thinkingBudget": 0}), ("low", {"thinkingBudget": 1024, "includeThoughts": True}),
    ("medium", {"thinkingBudget": 8192, "includeThoughts": True}),
    ("high", {"thinkingBudget": 24576, "includeThoughts": True}),
])
def test_reasoning_effort_maps_to_thinking_budget(effort, thinking):
    """reasoning_effort -> thinkingConfig.thinkingBudget (none turns thinking off), thoughts included."""
    assert body_of({"messages": user(), "reasoning_effort": effort})["generationConfig"]["thinkingConfig"] == thinking


def test_deployment_options_are_defaults_under_the_request():
    """options.generationConfig sits under the request's values; options.safetySettings is sent as is."""
    safety = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_NONE"}]
    target = Deployment(name="g", provider="gemini", model="m",
                        options={"generationConfig": {"topK": 40, "temperature": 0.1}, "safetySettings": safety})
    body = body_of({"messages": user(), "temperature": 0.5}, target=target)
    assert body["generationConfig"] == {"topK": 40, "temperature": 0.5}
    assert body["safetySettings"] == safety


# ---------------------------------------------------------------- schema sanitiser
PYDANTIC = {
    "title": "Args", "type": "object", "additionalProperties": False,
    "$defs": {"Unit": {"title": "Unit", "enum": ["c", "f"], "type": "string"},
              "Place": {"title": "Place", "type": "object",
                        "properties": {"city": {"type": "string", "title": "City", "default": "Oslo"}}}},
    "properties": {
        "title": {"type": "string", "description": "a property named title stays"},
        "unit": {"$ref": "#/$defs/Unit", "description": "temperature unit"},
        "place": {"anyOf": [{"$ref": "#/$defs/Place"}, {"type": "null"}], "default": None},
        "days": {"type": ["integer", "null"], "minimum": 1, "exclusiveMaximum": 15},
        "mode": {"const": "fast"},
        "level": {"enum": [1, 2, 3], "description": "how hard"},
        "when": {"type": "string", "format": "date-time"}, "site": {"type": "string", "format": "uri"},
        "pick": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["unit", "ghost"],
}


def test_sanitize_keeps_only_what_gemini_accepts():
    """$ref inlined, title/default/additionalProperties dropped, const->enum, type lists and null anyOf -> nullable."""
    out = sanitize(PYDANTIC)
    props = out["properties"]
    assert out["type"] == "object" and out["required"] == ["unit"] and "$defs" not in out
    assert props["title"] == {"type": "string", "description": "a property named title stays"}
    assert props["unit"] == {"type": "string", "enum": ["c", "f"], "description": "temperature unit"}
    assert props["place"] == {"nullable": True, "type": "object", "properties": {"city": {"type": "string"}}}
    assert props["days"] == {"type": "integer", "nullable": True, "minimum": 1}
    assert props["mode"] == {"enum": ["fast"], "type": "string"}
    assert props["level"] == {"description": "how hard (Allowed values: 1, 2, 3)"}
    assert props["when"] == {"type": "string", "format": "date-time"} and props["site"] == {"type": "string"}
    assert props["pick"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}


def test_sanitize_does_not_mutate_its_input():
    """The client's schema object is left exactly as it was."""
    before = copy.deepcopy(PYDANTIC)
    sanitize(PYDANTIC)
    assert PYDANTIC == before


def test_sanitize_cuts_recursive_refs_and_merges_all_of():
    """A self-referencing $ref becomes a plain object; allOf members merge their properties."""
    node = {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}
    tree = {"$defs": {"Node": node},
            "allOf": [{"$ref": "#/$defs/Node"}, {"properties": {"name": {"type": "string"}}, "required": ["name"]}]}
    out = sanitize(tree)
    assert out["properties"]["kids"] == {"type": "array", "items": {"type": "object"}}
    assert out["properties"]["name"] == {"type": "string"} and out["required"] == ["name"]


def test_tool_parameters_are_sanitized_in_the_request():
    """build_chat runs the sanitiser on tool parameters (a Pydantic schema passes the fake's checks)."""
    tool = {"type": "function", "function": {"name": "weather", "parameters": PYDANTIC}}
    body = body_of({"messages": user(), "tools": [tool]})
    assert fake._tools_problem(body) is None
    assert fake._tools_problem({"tools": [{"functionDeclarations": [{"name": "w", "parameters": PYDANTIC}]}]})


# ---------------------------------------------------------------- non-streaming replies
def test_parse_recorded_reply_with_text_thought_and_calls():
    """Text, thought and functionCall parts -> content, reasoning_content, tool_calls with new ids and a memo."""
    out = PROVIDER.parse_chat((DATA / "chat_text_tool_call.json").read_bytes(), TARGET)
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me look that up."
    assert choice.message.reasoning_content.startswith("The user wants")
    first, second = choice.message.tool_calls
    assert first.function.name == "get_weather"
    assert orjson.loads(first.function.arguments) == {"city": "Oslo", "unit": "celsius"}
    assert (second.function.name, second.function.arguments) == ("get_time", "{}")
    assert first.id.startswith("call_") and first.id != second.id
    sig = "CiQBjz1rX0w5c2lnbmF0dXJlLWZvci1nZXRfd2VhdGhlci0wMDAxEhQKEgoQZ2V0X3dlYXRoZXJfY2FsbA=="
    assert out.memo == {first.id: {MEMO_NAME: "get_weather", MEMO_SIG: sig}, second.id: {MEMO_NAME: "get_time"}}
    usage = out.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (57, 66, 123)
    assert usage.completion_tokens_details.reasoning_tokens == 40


def test_parse_recorded_text_reply_with_cached_tokens():
    """A text reply: finish stop, no memo, cachedContentTokenCount -> prompt_tokens_details.cached_tokens."""
    out = PROVIDER.parse_chat((DATA / "chat_text.json").read_bytes(), TARGET)
    assert out.choices[0].message.content == "It is 4 °C and cloudy in Oslo."
    assert out.choices[0].finish_reason == "stop" and not out.memo
    assert out.usage.prompt_tokens_details.cached_tokens == 64 and out.usage.total_tokens == 132


def test_blocked_prompt_is_content_filter_with_empty_content():
    """promptFeedback.blockReason without candidates -> one choice, content "", finish content_filter."""
    out = PROVIDER.parse_chat((DATA / "chat_blocked.json").read_bytes(), TARGET)
    assert [(c.message.content, c.finish_reason) for c in out.choices] == [("", "content_filter")]


def test_usage_counts_tool_prompts_and_thoughts():
    """prompt = promptTokenCount + toolUsePromptTokenCount; completion = candidates + thoughts (reasoning)."""
    meta = UsageMetadata(prompt_token_count=10, candidates_token_count=5, cached_content_token_count=4,
                         thoughts_token_count=7, tool_use_prompt_token_count=3)
    assert usage(meta) == Usage.of(13, 12, cached=4, reasoning=7)


@pytest.mark.parametrize("reason, saw_tool, expected", [
    ("STOP", False, "stop"), ("STOP", True, "tool_calls"), ("MAX_TOKENS", True, "length"),
    ("SAFETY", False, "content_filter"), ("RECITATION", False, "content_filter"), ("SPII", False, "content_filter"),
    ("IMAGE_SAFETY", False, "content_filter"), ("MALFORMED_FUNCTION_CALL", False, "stop"), ("OTHER", False, "stop"),
    (None, True, None),
])
def test_finish_reason_mapping(reason, saw_tool, expected):
    """Gemini finishReason -> OpenAI finish_reason per mapping.md §3."""
    assert finish_reason(reason, saw_tool) == expected


def test_reply_that_is_not_gemini_json_is_upstream_error():
    """A body that is not Gemini's format is a 502, not a crash."""
    with pytest.raises(UpstreamError):
        PROVIDER.parse_chat(b"<html>oops</html>", TARGET)


@pytest.mark.parametrize("body, message", [
    (b"<html>oops</html>", "deployment gemini/gemini-2.5-flash sent a reply that is not Gemini's format"),
    (b'{"error": {"code": 500, "message": "boom"}}', "Gemini error: boom"),
])
def test_whole_reply_faults_are_upstream_errors_not_stream_interruptions(body, message):
    """A whole reply is read with the stream's frame reader, but its faults stay a whole reply's:
    code upstream_error (not stream_interrupted) and the whole-reply wording."""
    with pytest.raises(UpstreamError) as info:
        PROVIDER.parse_chat(body, TARGET)
    assert type(info.value) is UpstreamError and (info.value.code, info.value.message) == ("upstream_error", message)


# ---------------------------------------------------------------- streaming
async def test_stream_with_function_calls_carries_memo_in_extra():
    """Text deltas, then one complete ToolCallDelta per call with extra {name, sig}; Finish tool_calls."""
    events = await events_of((DATA / "chat_stream_tool_call.sse").read_bytes())
    assert [e.text for e in events if type(e) is TextDelta] == ["Checking the weather", " for you."]
    calls = [e for e in events if type(e) is ToolCallDelta]
    assert [(c.index, c.name, c.arguments) for c in calls] == [
        (0, "get_weather", '{"city":"Oslo"}'), (1, "get_time", '{"tz":"Europe/Oslo"}')]
    sig = "CiQBjz1rX2Z1bmN0aW9uLWNhbGwtc2lnbmF0dXJlLXN0cmVhbS0wMDE="
    assert calls[0].extra == {MEMO_NAME: "get_weather", MEMO_SIG: sig}
    assert calls[1].extra == {MEMO_NAME: "get_time"} and calls[0].id != calls[1].id
    assert events[-1] == Finish("tool_calls")
    usage = [e.usage for e in events if type(e) is UsageEvent][-1]
    assert (usage.prompt_tokens, usage.completion_tokens) == (31, 82)


async def test_stream_thoughts_become_reasoning_and_empty_signed_text_is_silent():
    """thought parts -> ReasoningDelta; the closing {"text": "", thoughtSignature} yields nothing."""
    events = await events_of((DATA / "chat_stream_text.sse").read_bytes())
    kinds = [type(e).__name__ for e in events if type(e) is not UsageEvent]
    assert kinds == ["ReasoningDelta", "TextDelta", "TextDelta", "Finish"]
    agg = Aggregator()
    for ev in events:
        agg.feed(ev)
    result = agg.result("gem")
    assert result.choices[0].message.content == "It is 4 °C in Oslo." and result.choices[0].finish_reason == "stop"
    assert result.usage.completion_tokens_details.reasoning_tokens == 28


async def test_stream_eof_without_finish_reason_still_finishes():
    """EOF ends a Gemini stream: Finish(None) even if no finishReason ever came."""
    raw = b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]},"index":0}]}\r\n\r\n'
    assert await events_of(raw) == [TextDelta("Hi"), Finish(None)]


async def test_stream_blocked_prompt_finishes_with_content_filter():
    """A stream whose only frame is a promptFeedback block finishes with content_filter."""
    raw = b'data: {"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3}}\n\n'
    events = await events_of(raw)
    assert events[-1] == Finish("content_filter")


@pytest.mark.parametrize("raw, words", [
    ((DATA / "chat_stream_error.sse").read_bytes(), "An internal error has occurred"),
    (b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}\n\ndata: {"candidates":[{"cont',
     "broken stream frame"),
])
async def test_stream_error_frame_or_broken_json_is_interrupted(raw, words):
    """An `error` object in a frame, or a frame cut mid-JSON, raises StreamInterrupted with the reason."""
    with pytest.raises(StreamInterrupted) as e:
        await events_of(raw)
    assert words in e.value.message


# ---------------------------------------------------------------- errors
def google(code: int, status: str, message: str = "m") -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "status": status}})


@pytest.mark.parametrize("status, body, headers, kind, http, retry, retryable", [
    (429, (DATA / "error_rate_limited.json").read_bytes(), {}, RateLimited, 429, 27.0, True),
    (429, google(429, "RESOURCE_EXHAUSTED"), {"retry-after": "3"}, RateLimited, 429, 3.0, True),
    (400, (DATA / "error_invalid_argument.json").read_bytes(), {}, BadRequest, 400, None, False),
    (400, google(400, "FAILED_PRECONDITION"), {}, BadRequest, 400, None, False),
    (400, (DATA / "error_api_key_invalid.json").read_bytes(), {}, UpstreamError, 502, None, False),
    (401, google(401, "UNAUTHENTICATED"), {}, UpstreamError, 502, None, False),
    (403, google(403, "PERMISSION_DENIED"), {}, UpstreamError, 502, None, False),
    (404, google(404, "NOT_FOUND"), {}, ModelNotFound, 404, None, True),  # per deployment: others may have the model
    (500, google(500, "INTERNAL"), {}, UpstreamError, 502, None, True),
    (503, (DATA / "error_unavailable.json").read_bytes(), {}, UpstreamError, 503, None, True),
    (504, google(504, "DEADLINE_EXCEEDED"), {}, UpstreamError, 504, None, True),
    (502, b"<html>Bad Gateway</html>", {}, UpstreamError, 502, None, True),
])
def test_parse_error_maps_google_errors(status, body, headers, kind, http, retry, retryable):
    """Google error bodies -> the GatewayError of the same class; RetryInfo retryDelay or retry-after kept."""
    err = PROVIDER.parse_error(status, body, headers)
    assert isinstance(err, kind) and err.status == http and err.retry_after == retry
    assert err.retryable is retryable


def test_parse_error_keeps_googles_message_and_503_type():
    """The client sees Google's message; 503 is a retryable service_unavailable_error."""
    err = PROVIDER.parse_error(503, (DATA / "error_unavailable.json").read_bytes(), {})
    assert err.message == "The model is overloaded. Please try again later."
    assert err.type == "service_unavailable_error"


# ---------------------------------------------------------------- embeddings
def test_embeddings_requests_for_one_and_many_inputs():
    """A string -> :embedContent; a list -> :batchEmbedContents with models/<m> per request."""
    one = PROVIDER.build_embeddings(EmbeddingsRequest(model="e", input="hi", dimensions=4), TARGET)
    many = PROVIDER.build_embeddings(EmbeddingsRequest(model="e", input=["a", "b"]), TARGET)
    assert one.url.endswith("/models/gemini-2.5-flash:embedContent")
    assert orjson.loads(one.body) == {"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 4}
    assert many.url.endswith(":batchEmbedContents") and many.headers["x-goog-api-key"] == "sekret"
    assert orjson.loads(many.body) == {"requests": [
        {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "b"}]}}]}


@pytest.mark.parametrize("value", [[1, 2, 3], [[1, 2]], []])
def test_token_array_embeddings_are_400(value):
    """Token arrays (and an empty list) cannot be embedded by Gemini: 400 naming `input`."""
    with pytest.raises(BadRequest) as e:
        PROVIDER.build_embeddings(EmbeddingsRequest(model="e", input=value), TARGET)
    assert e.value.param == "input"


def test_parse_recorded_embeddings():
    """Both reply shapes -> Vectors in order, with prompt_tokens 0 (Gemini reports none)."""
    batch = PROVIDER.parse_embeddings((DATA / "embed_batch.json").read_bytes(), TARGET)
    one = PROVIDER.parse_embeddings((DATA / "embed_one.json").read_bytes(), TARGET)
    assert len(batch.vectors) == 2 and batch.vectors[1][0] == -0.020214341 and batch.prompt_tokens == 0
    assert one.vectors == [batch.vectors[0]]


# ---------------------------------------------------------------- against the fake API
@pytest.fixture
async def gemini(aiohttp_server):
    return await aiohttp_server(fake.make_app(api_key="sekret"))


def at(server, model: str) -> Deployment:
    return Deployment(name="gem", provider="gemini", model=model, api_base=str(server.make_url("/v1beta")),
                      api_key="sekret")


async def send(request) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.post(request.url, data=request.body, headers=dict(request.headers)) as resp:
            return resp.status, await resp.read()


async def test_thinking_tool_round_trip_through_the_fake(gemini):
    """Stream calls, keep their extras as memo, send the results back: the signatures are accepted."""
    target = at(gemini, "thinking-tools")
    ask = {"messages": user("Weather?"), "tools": [WEATHER], "stream": True}
    status, raw = await send(PROVIDER.build_chat(chat(ask), target, {}))
    assert status == 200
    events = [ev async for ev in PROVIDER.parse_chat_stream(frames_of(raw), target)]
    calls = [e for e in events if type(e) is ToolCallDelta]
    assert [type(e) for e in events][:1] == [ReasoningDelta] and len(calls) == 2
    memo = {c.id: c.extra for c in calls}
    follow = {"messages": [*user("Weather?"), {"role": "assistant", "tool_calls": [
        {"id": c.id, "function": {"name": c.name, "arguments": c.arguments}} for c in calls]},
        *[{"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in calls]], "tools": [WEATHER]}
    status, raw = await send(PROVIDER.build_chat(chat(follow), target, memo))
    assert status == 200 and PROVIDER.parse_chat(raw, target).choices[0].message.content == "Got 2 tool results"
    status, _ = await send(PROVIDER.build_chat(chat(follow), target, {}))  # memo lost: dummy signature
    assert status == 200
    forged = {k: {**v, MEMO_SIG: "forged"} for k, v in memo.items()}
    status, raw = await send(PROVIDER.build_chat(chat(follow), target, forged))
    assert status == 400 and "thought_signature" in PROVIDER.parse_error(status, raw, {}).message


async def test_fake_rejects_unsanitized_parameters_and_missing_responses(gemini):
    """The fake refuses raw JSON Schema and a short functionResponse turn (so the tests above can fail)."""
    target = at(gemini, "tools")
    raw_body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "tools": [{"functionDeclarations": [{"name": "w", "parameters": PYDANTIC}]}]}
    request = PROVIDER.build_chat(chat({"messages": user()}), target, {})
    status, _ = await send(type(request)("POST", request.url, orjson.dumps(raw_body), request.headers))
    assert status == 400
    short = TOOL_TURN[:3]
    status, raw = await send(PROVIDER.build_chat(chat({"messages": short}), target, {}))
    assert status == 400 and "number of function response parts" in raw.decode()


@pytest.mark.parametrize("model, kind, http, retry", [
    ("rate-limited", RateLimited, 429, 2.0), ("unavailable", UpstreamError, 503, None),
    ("bad-request", BadRequest, 400, None), ("missing", ModelNotFound, 404, None),
])
async def test_fake_error_scenarios_map_through_parse_error(gemini, model, kind, http, retry):
    """The fake's error scenarios come back as the documented GatewayErrors."""
    status, raw = await send(PROVIDER.build_chat(chat({"messages": user()}), at(gemini, model), {}))
    err = PROVIDER.parse_error(status, raw, {})
    assert isinstance(err, kind) and err.status == http and err.retry_after == retry


async def test_fake_checks_the_api_key(gemini):
    """A wrong key gets Google's 403 body, which litegate reports as a 502 (its own credentials)."""
    wrong = Deployment(name="g", provider="gemini", model="m", api_base=str(gemini.make_url("/v1beta")), api_key="x")
    status, raw = await send(PROVIDER.build_chat(chat({"messages": user()}), wrong, {}))
    assert status == 403 and orjson.loads(raw)["error"]["status"] == "PERMISSION_DENIED"
    assert PROVIDER.parse_error(status, raw, {}).status == 502


async def test_fake_echo_and_embeddings_parse(gemini):
    """Echo replies parse to text with usage; batch embeddings come back in order with the asked size."""
    status, raw = await send(PROVIDER.build_chat(chat({"messages": user("one two")}), at(gemini, "m1"), {}))
    out = PROVIDER.parse_chat(raw, TARGET)
    assert status == 200 and out.choices[0].message.content == "Hello from m1" and out.usage.prompt_tokens == 2
    request = PROVIDER.build_embeddings(EmbeddingsRequest(model="e", input=["a", "b"], dimensions=5), at(gemini, "emb"))
    status, raw = await send(request)
    vectors = PROVIDER.parse_embeddings(raw, TARGET).vectors
    assert status == 200 and [len(v) for v in vectors] == [5, 5] and vectors[0] != vectors[1]
    assert gemini.app[fake.REQUESTS][-1]["path"] == "/v1beta/models/emb:batchEmbedContents"
