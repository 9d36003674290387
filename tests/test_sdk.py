"""End to end with the official openai SDK against a running litegate (real sockets, fake backends)."""

from __future__ import annotations

import json

import openai
import pytest
from openai import AsyncOpenAI

from litegate.http.app import create_app
from litegate.config import ConfigHolder, from_dict
from tests.conftest import ollama_config
from tests.fakes import ollama as fake_ollama


@pytest.fixture
async def sdk(ollama, oai, aiohttp_server):
    doc = ollama_config(ollama)
    doc["models"] += [
        {"name": "embed", "provider": "ollama", "model": "nomic-embed-text", "api_base": str(ollama.make_url("")).rstrip("/")},
        {"name": "vllm", "provider": "openai", "model": "tools-split", "api_base": str(oai.make_url("/v1")),
         "api_key_env": "BACKEND_KEY"},
        {"name": "vllm-embed", "provider": "openai", "model": "e5", "api_base": str(oai.make_url("/v1")),
         "api_key_env": "BACKEND_KEY"},
    ]
    doc["router"]["aliases"] = {"gpt-4o": "llama"}
    server = await aiohttp_server(create_app(ConfigHolder("test", from_dict(doc, env={"BACKEND_KEY": "sk-backend"}))))
    client = AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="unused", max_retries=0)
    yield client
    await client.close()


async def test_chat_non_stream(sdk):
    """openai SDK: chat.completions.create returns a typed completion with usage."""
    r = await sdk.chat.completions.create(model="llama", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Hello from llama3.1:8b"
    assert r.choices[0].finish_reason == "stop" and r.usage.total_tokens == 4


async def test_alias_reaches_owner_model(sdk):
    """A client hard-coding gpt-4o reaches the model the owner aliased."""
    r = await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.model == "gpt-4o" and r.choices[0].message.content == "Hello from llama3.1:8b"


async def test_chat_stream_with_usage(sdk):
    """openai SDK streaming: text deltas, finish_reason and the final usage chunk."""
    stream = await sdk.chat.completions.create(model="llama", messages=[{"role": "user", "content": "hi"}],
                                               stream=True, stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == "Hello from llama3.1:8b" and finish == "stop" and usage.completion_tokens == 3


@pytest.mark.parametrize("model", ["tools-before-done", "vllm"])
async def test_stream_helper_assembles_tool_calls(sdk, model):
    """The SDK's stream helper assembles our tool-call deltas into complete calls (Ollama and OpenAI-compatible)."""
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    async with sdk.chat.completions.stream(model=model, messages=[{"role": "user", "content": "weather?"}],
                                           tools=tools) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "Oslo"}
    assert final.choices[0].finish_reason == "tool_calls"


async def test_tool_round_trip_conversation(sdk, ollama):
    """A multi-turn tool conversation: the SDK sends back our tool calls and results, Ollama gets them natively."""
    messages = [{"role": "user", "content": "weather in Oslo?"}]
    first = await sdk.chat.completions.create(model="tools-before-done", messages=messages)
    msg = first.choices[0].message
    messages.append(msg.model_dump(exclude_none=True))
    for call in msg.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "4 C"})
    second = await sdk.chat.completions.create(model="llama", messages=messages)
    assert second.choices[0].message.content
    sent = ollama.app[fake_ollama.REQUESTS][-1]["json"]["messages"]
    assert [m.get("tool_name") for m in sent[2:]] == ["get_weather", "get_time"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}


async def test_embeddings_default_base64_and_float(sdk):
    """The SDK asks for base64 by default and decodes it; float works too; index follows the input order."""
    r = await sdk.embeddings.create(model="embed", input=["hello", "hello world"])
    assert [d.index for d in r.data] == [0, 1]
    assert r.data[0].embedding == pytest.approx([0.5, 0.5, -0.25, 0.0])
    assert r.data[1].embedding == pytest.approx([1.1, 0.5, -0.25, 1.0], rel=1e-6)
    r2 = await sdk.embeddings.create(model="vllm-embed", input="hello", encoding_format="float")
    assert r2.data[0].embedding == pytest.approx([0.5, 0.5, -0.25, 0.0])


async def test_completions_fim(sdk, ollama):
    """Legacy completions with suffix go to Ollama /api/generate (fill-in-the-middle for autocomplete)."""
    r = await sdk.completions.create(model="llama", prompt="def add(a, b):", suffix="\n    return c", max_tokens=16)
    assert r.choices[0].text.startswith("fim:")
    sent = ollama.app[fake_ollama.REQUESTS][-1]
    assert sent["path"] == "/api/generate" and sent["json"]["suffix"] == "\n    return c"
    assert sent["json"]["options"]["num_predict"] == 16


async def test_completions_stream(sdk):
    """Streamed legacy completions deliver text chunks and end cleanly."""
    stream = await sdk.completions.create(model="llama", prompt="Say hi", stream=True)
    text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert text == "Hello from llama3.1:8b"


async def test_models_list_and_retrieve(sdk):
    """models.list shows config names and aliases with owned_by = provider; retrieve finds one, 404 otherwise."""
    models = {m.id: m.owned_by async for m in sdk.models.list()}
    assert models["llama"] == "ollama" and models["vllm"] == "openai" and models["gpt-4o"] == "ollama"
    assert (await sdk.models.retrieve("llama")).id == "llama"
    with pytest.raises(openai.NotFoundError):
        await sdk.models.retrieve("nope")


@pytest.mark.parametrize("model,exc", [("nope", openai.NotFoundError), ("no-tools", openai.BadRequestError),
                                       ("crash", openai.InternalServerError)])
async def test_errors_raise_sdk_exceptions(sdk, model, exc):
    """Our error statuses map to the SDK's exception classes (404, 400, 5xx)."""
    with pytest.raises(exc):
        await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}],
                                          tools=[{"type": "function", "function": {"name": "f"}}])


async def test_midstream_error_raises_in_sdk(sdk):
    """An SSE error event after the first chunk raises APIError in the SDK instead of a silent truncation."""
    stream = await sdk.chat.completions.create(model="error-midstream", messages=[{"role": "user", "content": "x"}],
                                               stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
