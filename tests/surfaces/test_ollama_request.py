"""litegate.surfaces.ollama.request: Ollama bodies -> the internal chat form (ollama.md §8, mapping.md §7.1).

Table-driven over the habits of real clients: Home Assistant's id-less tool replays, Zed's
tool_name results, Enchanted's bare base64 images, Open WebUI's empty-prompt unload.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson
import pytest

from litegate.errors import BadRequest
from litegate.surfaces.ollama import request
from litegate.wire import encoder

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDA=="
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def raw(**body: Any) -> bytes:
    return json.dumps({"model": "gpt", **body}).encode()


def chat(**body: Any):
    return request.chat(raw(**body))


def internal(**body: Any) -> dict[str, Any]:
    """The ChatRequest as the JSON an OpenAI backend would see (unset fields left out)."""
    return json.loads(encoder.encode(chat(**body).chat))


def test_defaults_stream_true_and_keeps_client_model_name():
    """Ollama streams unless told not to; the reply echoes the name the client wrote (with its tag)."""
    got = chat(model="gpt:latest", messages=[{"role": "user", "content": "hi"}])
    assert got.stream is True and got.chat.stream is True
    assert got.model == "gpt:latest" and got.kind == "chat" and got.load is None
    assert not chat(messages=[{"role": "user", "content": "hi"}], stream=False).stream


@pytest.mark.parametrize("options,expected", [
    ({"temperature": 0.2}, {"temperature": 0.2}),
    ({"top_p": 0.9, "seed": 7}, {"top_p": 0.9, "seed": 7}),
    ({"num_predict": 256}, {"max_tokens": 256}),
    ({"num_predict": -1}, {}),  # -1: unlimited, i.e. no cap at all
    ({"num_predict": -2}, {}),  # -2: fill the context
    ({"stop": ["\n\n", "END"]}, {"stop": ["\n\n", "END"]}),
    ({"stop": "END"}, {"stop": ["END"]}),
    ({"presence_penalty": 0.5, "frequency_penalty": 0.25}, {"presence_penalty": 0.5, "frequency_penalty": 0.25}),
    ({"seed": 7.0}, {"seed": 7}),
    ({"num_gpu": 99, "use_mmap": False, "repeat_penalty": 1.1}, {}),  # runner settings: Ollama's only
])
def test_options_map_onto_chat_fields(options, expected):
    """options -> the chat fields they mean; anything else stays out of a translated request."""
    body = internal(messages=[{"role": "user", "content": "hi"}], options=options)
    mapped = {k: body[k] for k in ("temperature", "top_p", "seed", "max_tokens", "stop", "presence_penalty",
                                   "frequency_penalty") if k in body}
    assert mapped == expected
    assert "num_gpu" not in body and "options" not in body


def test_num_ctx_and_keep_alive_kept_for_ollama_top_k_mapped():
    """num_ctx and keep_alive have no chat field: they ride on Inbound (HA sends keep_alive -1);
    top_k is a chat field (Anthropic and Gemini take it)."""
    got = chat(messages=[{"role": "user", "content": "hi"}], options={"num_ctx": 8192, "top_k": 20}, keep_alive=-1)
    assert (got.num_ctx, got.keep_alive, got.chat.top_k) == (8192, -1, 20)
    assert chat(messages=[{"role": "user", "content": "x"}], keep_alive="5m").keep_alive == "5m"


@pytest.mark.parametrize("options,param", [
    ({"temperature": "hot"}, "options.temperature"),
    ({"temperature": True}, "options.temperature"),
    ({"num_predict": 1.5}, "options.num_predict"),
    ({"num_ctx": "big"}, "options.num_ctx"),
    ({"stop": [1, 2]}, "options.stop"),
])
def test_bad_option_types_are_400_naming_the_option(options, param):
    """A wrong option type is a 400 that names options.<key>, never a traceback."""
    with pytest.raises(BadRequest) as e:
        chat(messages=[{"role": "user", "content": "hi"}], options=options)
    assert e.value.param == param and param in e.value.message


@pytest.mark.parametrize("think,effort", [(True, "medium"), (False, None), ("low", "low"), ("high", "high"),
                                          ("max", "high"), (None, None)])
def test_think_becomes_reasoning_effort(think, effort):
    """think true -> medium, a level as is; false asks for nothing (non-reasoning models refuse any effort)."""
    body = internal(messages=[{"role": "user", "content": "hi"}], think=think)
    assert body.get("reasoning_effort") == effort


def test_bad_think_value_is_400():
    """Only booleans and levels are valid, as in Ollama."""
    with pytest.raises(BadRequest, match="think"):
        chat(messages=[{"role": "user", "content": "hi"}], think="very")


@pytest.mark.parametrize("fmt,expected", [
    ("json", {"type": "json_object"}),
    ({"type": "object", "properties": {"a": {"type": "integer"}}},
     {"type": "json_schema", "json_schema": {"name": "response",
                                             "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}),
    ("", None),
    (None, None),
])
def test_format_json_or_schema(fmt, expected):
    """format "json" -> json_object; a schema object -> json_schema named "response"."""
    assert internal(messages=[{"role": "user", "content": "hi"}], format=fmt).get("response_format") == expected


def test_bad_format_is_400():
    """Any other format string is refused naming `format`."""
    with pytest.raises(BadRequest) as e:
        chat(messages=[{"role": "user", "content": "hi"}], format="yaml")
    assert e.value.param == "format"


@pytest.mark.parametrize("image,mime", [(PNG, "image/png"), (JPEG, "image/jpeg"), ("R0lGODlhAQABAAAAACw=", "image/gif"),
                                        ("UklGRiQAAABXRUJQVlA4IBgAAAAwAQCdASoBAAEAAQAcJaQAA3AA/v3AgAA=", "image/webp"),
                                        ("data:image/png;base64," + PNG, "image/png")])
def test_images_become_data_uris_with_sniffed_type(image, mime):
    """Bare base64 images get a data URI whose type comes from the image's first bytes."""
    body = internal(messages=[{"role": "user", "content": "what is this?", "images": [image]}])
    parts = body["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "what is this?"}
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"].startswith(f"data:{mime};base64,")
    assert parts[1]["image_url"]["url"].endswith(image.rpartition(",")[2])


@pytest.mark.parametrize("image", ["not-an-image", "iVBOR!!!notbase64"])
def test_bad_images_are_400_naming_the_image(image):
    """What is not a base64 image is Ollama's 400 "invalid image input", naming messages[i].images[k]."""
    with pytest.raises(BadRequest, match="invalid image input") as e:
        chat(messages=[{"role": "user", "content": "hi"}, {"role": "user", "content": "x", "images": [PNG, image]}])
    assert e.value.param == "messages[1].images[1]"


def _round(result_msgs: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    history = [{"role": "user", "content": "Weather and time in Oslo?"},
               {"role": "assistant", "content": "", "tool_calls": calls}, *result_msgs]
    return internal(messages=history, tools=[WEATHER])["messages"]


HA_CALLS = [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
            {"function": {"name": "get_time", "arguments": {}}}]


@pytest.mark.parametrize("results,expected", [
    # Home Assistant: no ids anywhere, results by position
    ([{"role": "tool", "content": "4 C"}, {"role": "tool", "content": "10:00"}],
     [("call_1_0", "get_weather", "4 C"), ("call_1_1", "get_time", "10:00")]),
    # Zed: results carry tool_name, possibly in another order
    ([{"role": "tool", "tool_name": "get_time", "content": "10:00"},
      {"role": "tool", "tool_name": "get_weather", "content": "4 C"}],
     [("call_1_1", "get_time", "10:00"), ("call_1_0", "get_weather", "4 C")]),
])
def test_id_less_tool_results_pair_with_calls(results, expected):
    """Replayed calls without ids get stable ids; results pair by tool name, else by position."""
    msgs = _round(results, HA_CALLS)
    calls = msgs[1]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_1_0", "call_1_1"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "Oslo"}, {}]
    assert msgs[1].get("content") is None
    assert [(m["tool_call_id"], m["name"], m["content"]) for m in msgs[2:]] == expected


def test_tool_results_pair_by_id_when_given():
    """A newer server's ids round-trip: the result names its call by tool_call_id."""
    calls = [{"id": "call_a", "function": {"name": "f", "arguments": {}}},
             {"id": "call_b", "function": {"name": "f", "arguments": {"x": 1}}}]
    msgs = _round([{"role": "tool", "tool_call_id": "call_b", "content": "B"},
                   {"role": "tool", "tool_call_id": "call_a", "content": "A"}], calls)
    assert [(m["tool_call_id"], m["content"]) for m in msgs[2:]] == [("call_b", "B"), ("call_a", "A")]


def test_orphan_tool_result_becomes_text():
    """A result that answers no call is read as user text, since chat APIs refuse such a tool message."""
    msgs = internal(messages=[{"role": "user", "content": "q"},
                              {"role": "tool", "tool_name": "lookup", "content": "42"}])["messages"]
    assert msgs[1] == {"role": "user", "content": "[result of tool lookup]\n42"}


@pytest.mark.parametrize("arguments,expected", [({"a": 1}, {"a": 1}), ("{\"a\": 1}", {"a": 1}), (None, {}), ("", {})])
def test_tool_call_arguments_object_or_string(arguments, expected):
    """Arguments are objects on Ollama's wire; the OpenAI string form is accepted too; none is {}."""
    msgs = _round([], [{"function": {"name": "f", "arguments": arguments}}])
    assert json.loads(msgs[1]["tool_calls"][0]["function"]["arguments"]) == expected


@pytest.mark.parametrize("arguments", [[1, 2], "not json", 5])
def test_non_object_arguments_are_400(arguments):
    """Arguments that are not an object are a 400 naming the call."""
    with pytest.raises(BadRequest) as e:
        _round([], [{"function": {"name": "f", "arguments": arguments}}])
    assert e.value.param == "messages[1].tool_calls[0].function.arguments"


def test_roles_lower_cased_thinking_replayed_and_tools_passed():
    """Roles are lower-cased like Ollama does; replayed thinking becomes reasoning_content; tools as is."""
    body = internal(messages=[{"role": "System", "content": "terse"}, {"role": "USER", "content": "q"},
                              {"role": "assistant", "content": "a", "thinking": "hmm"}], tools=[WEATHER])
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant"]
    assert body["messages"][2]["reasoning_content"] == "hmm"
    assert body["tools"] == [WEATHER]


def test_unknown_role_is_400():
    """A role Ollama does not know is named in the error."""
    with pytest.raises(BadRequest) as e:
        chat(messages=[{"role": "wizard", "content": "q"}])
    assert e.value.param == "messages[0].role"


@pytest.mark.parametrize("body,message", [
    (b"", "empty"),
    (b"{not json", "JSON"),
    (b'{"messages": []}', "model is required"),
    (b'{"model": "  ", "messages": []}', "model is required"),
    (b'{"model": "m", "messages": "hi"}', "messages"),
    (b'{"model": "m", "messages": [], "top_logprobs": 30}', "top_logprobs must be between 0 and 20"),
])
def test_malformed_bodies_are_400(body, message):
    """Bad input is a 400 with a message that says what is wrong."""
    with pytest.raises(BadRequest, match=message):
        request.chat(body)


@pytest.mark.parametrize("keep_alive,load", [(None, "load"), ("5m", "load"), (0, "unload"), ("0", "unload"),
                                             ("0s", "unload")])
def test_empty_messages_load_or_unload(keep_alive, load):
    """No messages: nothing to answer, the model is loaded (or unloaded with keep_alive 0)."""
    assert chat(messages=[], keep_alive=keep_alive).load == load


def test_generate_maps_to_system_and_user():
    """/api/generate is chat with [system?, user(prompt, images)]; suffix needs an Ollama model."""
    got = request.generate(raw(prompt="Why is the sky blue?", system="Be brief", images=[PNG],
                               options={"num_predict": 5}, stream=False))
    body = json.loads(encoder.encode(got.chat))
    assert got.kind == "generate" and got.stream is False and got.native_only is None
    assert body["messages"][0] == {"role": "system", "content": "Be brief"}
    assert body["messages"][1]["content"][0]["text"] == "Why is the sky blue?"
    assert body["messages"][1]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert body["max_tokens"] == 5
    assert "suffix" in request.generate(raw(prompt="def f(", suffix="return x")).native_only


@pytest.mark.parametrize("body,load", [({"prompt": ""}, "load"), ({}, "load"), ({"prompt": "", "keep_alive": 0}, "unload"),
                                       ({"prompt": "hi"}, None)])
def test_generate_empty_prompt_loads(body, load):
    """Open WebUI unloads with {"model", "prompt": "", "keep_alive": 0}."""
    assert request.generate(raw(**body)).load == load


@pytest.mark.parametrize("body,inputs,legacy", [
    ({"input": "one"}, "one", False),
    ({"input": ["a", "b"], "dimensions": 8}, ["a", "b"], False),
    ({"input": []}, None, False),
])
def test_embed_requests(body, inputs, legacy):
    """/api/embed: input string or list (dimensions kept); empty input needs no backend."""
    got = request.embed(raw(**body))
    assert got.legacy is legacy
    assert (got.request.input if got.request else None) == inputs
    if "dimensions" in body:
        assert got.request.dimensions == 8


def test_legacy_embeddings_request():
    """/api/embeddings takes one `prompt`; an empty prompt needs no backend."""
    got = request.embeddings(raw(prompt="hello"))
    assert got.legacy and got.request.input == "hello"
    assert request.embeddings(raw(prompt="")).request is None


@pytest.mark.parametrize("body,model", [(b'{"model": "gpt"}', "gpt"), (b'{"name": "gpt:latest"}', "gpt:latest")])
def test_show_takes_model_or_legacy_name(body, model):
    """/api/show accepts `model` and the older `name`; neither is a 400 "model is required"."""
    assert request.show(body).model == model
    with pytest.raises(BadRequest, match="model is required"):
        request.show(b"{}")


def test_chat_request_is_a_valid_internal_request():
    """What the face builds survives the internal codec (it is what the core and providers read)."""
    got = chat(messages=[{"role": "user", "content": "hi", "images": [PNG]}], tools=[WEATHER], format="json")
    again = msgspec.json.decode(encoder.encode(got.chat), type=type(got.chat))
    assert again == got.chat
