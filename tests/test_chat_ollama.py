"""Chat completions through the native Ollama API: translation both ways, streaming and not."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import ollama_config, sse_events
from tests.fakes import ollama as fake

USER = [{"role": "user", "content": "What is the weather in Oslo?"}]


def last_request(server) -> dict:
    return server.app[fake.REQUESTS][-1]["json"]


async def test_text_reply_non_stream(ollama, gateway, openai_schema):
    """A plain question gets a chat.completion that validates against the OpenAI spec."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER})
    assert resp.status == 200
    body = await resp.json()
    openai_schema("CreateChatCompletionResponse", body)
    assert body["model"] == "llama"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello from llama3.1:8b", "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}
    sent = last_request(ollama)
    assert sent["stream"] is False and sent["model"] == "llama3.1:8b"
    assert sent["options"] == {"num_ctx": 16384} and sent["keep_alive"] == "30m"


async def test_text_stream_shape(ollama, gateway, openai_schema):
    """A stream has one role chunk, content chunks, an empty-delta finish chunk and [DONE]; no usage unless asked."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER, "stream": True})
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events, _ = sse_events(await resp.read())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for c in chunks:
        openai_schema("CreateChatCompletionStreamResponse", c)
        assert "usage" not in c
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum("role" in c["choices"][0]["delta"] for c in chunks) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Hello from llama3.1:8b"
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


async def test_include_usage_exactly_one_usage_chunk(ollama, gateway, openai_schema):
    """stream_options.include_usage: usage null on every chunk, then exactly one choices:[] chunk with real counts."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={
        "model": "llama", "messages": USER, "stream": True, "stream_options": {"include_usage": True}})
    events, _ = sse_events(await resp.read())
    chunks = events[:-1]
    usage_chunks = [c for c in chunks if c["usage"] is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert usage_chunks[0]["choices"] == []
    assert usage_chunks[0]["usage"] == {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}
    for c in chunks:
        openai_schema("CreateChatCompletionStreamResponse", c)


@pytest.mark.parametrize("scenario", ["tools-before-done", "tools-with-ids"])
async def test_streamed_tool_calls_before_done(ollama, gateway, scenario, openai_schema):
    """Tool calls sent before a done line saying "stop": each its own index, id+name first, JSON args, finish tool_calls."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={
        "model": scenario, "messages": USER, "stream": True,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]})
    events, _ = sse_events(await resp.read())
    chunks = events[:-1]
    for c in chunks:
        openai_schema("CreateChatCompletionStreamResponse", c)
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [tc["index"] for tc in calls] == [0, 1]
    assert all(tc["id"].startswith("call_") and tc["type"] == "function" for tc in calls)
    assert len({tc["id"] for tc in calls}) == 2
    assert [tc["function"]["name"] for tc in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    assert calls[1]["function"]["arguments"] == "{}"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    if scenario == "tools-with-ids":
        assert [tc["id"] for tc in calls] == ["call_ab12cd34", "call_ef56gh78"]


async def test_tool_calls_non_stream(ollama, gateway, openai_schema):
    """Non-streaming tool calls: content null, ids generated, arguments as JSON strings, finish_reason tool_calls."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "tools-before-done", "messages": USER})
    body = await resp.json()
    openai_schema("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == ['{"city":"Oslo"}', "{}"]
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)


async def test_tool_round_trip_translated_for_ollama(ollama, gateway):
    """Assistant tool_calls go back with arguments as objects, tool messages with tool_name resolved from the id."""
    client = await gateway(ollama_config(ollama))
    messages = USER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 4}'},
    ]
    resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": messages})
    assert resp.status == 200
    sent = last_request(ollama)["messages"]
    assert sent[1]["tool_calls"] == [
        {"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        {"id": "call_2", "function": {"name": "get_time", "arguments": {}}}]
    assert sent[1]["content"] == ""
    assert sent[2] == {"role": "tool", "content": "12:00", "tool_name": "get_time", "tool_call_id": "call_2"}
    assert sent[3]["tool_name"] == "get_weather"


async def test_malformed_tool_arguments_is_400_naming_message(ollama, gateway):
    """Invalid JSON in a client's tool-call arguments is a 400 naming the message index, and nothing reaches Ollama."""
    client = await gateway(ollama_config(ollama))
    messages = USER + [{"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]
    resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": messages})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert "messages[1].tool_calls[0].function.arguments" in err["message"]
    assert err["param"] == "messages[1].tool_calls[0].function.arguments"
    assert ollama.app[fake.REQUESTS] == []


async def test_tool_message_with_unknown_id_is_400(ollama, gateway):
    """A tool message answering no known call (and with no name) is a 400 naming its tool_call_id."""
    client = await gateway(ollama_config(ollama))
    messages = USER + [{"role": "tool", "tool_call_id": "call_nope", "content": "x"}]
    resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": messages})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "messages[1].tool_call_id"


async def test_parameters_mapped_to_ollama_options(ollama, gateway):
    """max_completion_tokens, stop, seed, temperature, top_p become options, merged over the model's config options."""
    client = await gateway(ollama_config(ollama))
    await client.post("/v1/chat/completions", json={
        "model": "llama", "messages": USER, "max_tokens": 10, "max_completion_tokens": 20, "stop": "END",
        "seed": 7, "temperature": 0.1, "top_p": 0.5, "presence_penalty": 0.2})
    sent = last_request(ollama)
    assert sent["options"] == {"num_ctx": 16384, "num_predict": 20, "stop": ["END"], "seed": 7,
                               "temperature": 0.1, "top_p": 0.5, "presence_penalty": 0.2}


@pytest.mark.parametrize("fmt,expected", [
    ({"type": "json_object"}, "json"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
     {"type": "object", "properties": {"a": {"type": "integer"}}}),
])
async def test_response_format_to_ollama_format(ollama, gateway, fmt, expected):
    """JSON mode: json_object becomes format "json", json_schema becomes the schema itself."""
    client = await gateway(ollama_config(ollama))
    await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER, "response_format": fmt})
    assert last_request(ollama)["format"] == expected


@pytest.mark.parametrize("effort,think", [("none", False), ("low", "low"), ("high", "high"), ("minimal", "low")])
async def test_reasoning_effort_to_think(ollama, gateway, effort, think):
    """reasoning_effort maps to Ollama's think (none -> false)."""
    client = await gateway(ollama_config(ollama))
    await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER, "reasoning_effort": effort})
    assert last_request(ollama)["think"] == think


async def test_bad_reasoning_effort_is_400(ollama, gateway):
    """An unknown reasoning_effort value is a 400 naming the field."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER, "reasoning_effort": "huge"})
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "reasoning_effort"


async def test_thinking_streams_as_reasoning_content(ollama, gateway, openai_schema):
    """Every Ollama thinking delta reaches the client as reasoning_content, before the answer's content."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "thinking", "messages": USER, "stream": True})
    events, _ = sse_events(await resp.read())
    deltas = [c["choices"][0]["delta"] for c in events[:-1] if c["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Let me think"
    assert "".join(d.get("content") or "" for d in deltas) == "The answer is 4."
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all("reasoning_content" not in d for d in deltas[first_content:])


async def test_thinking_non_stream(ollama, gateway):
    """Non-streaming thinking comes back as message.reasoning_content."""
    client = await gateway(ollama_config(ollama))
    body = await (await client.post("/v1/chat/completions", json={"model": "thinking", "messages": USER})).json()
    assert body["choices"][0]["message"]["reasoning_content"] == "Let me think"
    assert body["choices"][0]["message"]["content"] == "The answer is 4."


async def test_reasoning_content_can_be_switched_off(ollama, gateway):
    """server.reasoning_content=false hides thinking from clients that choke on unknown fields."""
    client = await gateway(ollama_config(ollama, server={"reasoning_content": False}))
    body = await (await client.post("/v1/chat/completions", json={"model": "thinking", "messages": USER})).json()
    assert "reasoning_content" not in body["choices"][0]["message"]
    resp = await client.post("/v1/chat/completions", json={"model": "thinking", "messages": USER, "stream": True})
    assert b"reasoning_content" not in await resp.read()


async def test_n_greater_than_one_is_400(ollama, gateway):
    """n > 1 is refused with a 400 naming n (Ollama returns one choice)."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER, "n": 2})
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "n"


async def test_data_uri_image_becomes_bare_base64(ollama, gateway):
    """A data-URI image part goes to Ollama as raw base64 in images, text parts joined into content."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    client = await gateway(ollama_config(ollama))
    await client.post("/v1/chat/completions", json={"model": "llama", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "text", "text": "this?"}]}]})
    sent = last_request(ollama)["messages"][0]
    assert sent["images"] == [png] and sent["content"] == "What is\nthis?"


async def test_bad_data_uri_is_400(ollama, gateway):
    """An image data URI that is not base64 is a 400 naming the content part."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": "data:image/png;base64,@@@"}]}]})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "messages[0].content[0].image_url"


async def test_empty_completion_still_has_role_and_finish(ollama, gateway):
    """An empty answer still streams a role chunk then the finish chunk, and no empty content chunk."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "empty", "messages": USER, "stream": True})
    events, _ = sse_events(await resp.read())
    assert len(events) == 3 and events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[1]["choices"][0]["finish_reason"] == "stop"


async def test_length_finish_reason(ollama, gateway):
    """Ollama done_reason length becomes finish_reason length."""
    client = await gateway(ollama_config(ollama))
    body = await (await client.post("/v1/chat/completions", json={"model": "length", "messages": USER})).json()
    assert body["choices"][0]["finish_reason"] == "length"


async def test_missing_prompt_count_is_zero(ollama, gateway):
    """A done line without prompt_eval_count (cached prompt) counts 0 prompt tokens instead of failing."""
    client = await gateway(ollama_config(ollama))
    body = await (await client.post("/v1/chat/completions", json={"model": "no-prompt-count", "messages": USER})).json()
    assert body["usage"]["prompt_tokens"] == 0 and body["usage"]["completion_tokens"] == 3


async def test_keepalive_comments_while_model_loads(loading_ollama, gateway):
    """While Ollama loads a model (no bytes yet), the client gets SSE keep-alive comments, then the answer."""
    ollama = await loading_ollama(0.35)
    client = await gateway(ollama_config(ollama, server={"sse_keepalive_s": 0.1}))
    resp = await client.post("/v1/chat/completions", json={"model": "loading", "messages": USER, "stream": True})
    assert resp.status == 200
    first = await resp.content.readuntil(b"\n\n")
    assert first == b": keep-alive\n\n"
    events, comments = sse_events(first + await resp.read())
    assert len(comments) >= 2
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in events[:-1]) == "Hello from loading:latest"
