"""Claude and Gemini behind the same OpenAI address: an openai SDK client holds a multi-turn,
tool-using, streamed conversation with each exactly as it does with a local model."""

from __future__ import annotations

import json

import openai
import pytest
from openai import AsyncOpenAI

from litegate.http.app import create_app
from litegate.config import ConfigHolder, from_dict
from tests.conftest import ollama_config
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                      "parameters": {"type": "object", "title": "Weather", "properties": {
                                          "city": {"type": "string", "default": "Oslo"}}, "required": ["city"],
                                          "additionalProperties": False}}},
    {"type": "function", "function": {"name": "get_time", "description": "Current time"}},
]
ENV = {"ANTHROPIC_API_KEY": "test-anthropic-key", "GEMINI_API_KEY": "test-gemini-key"}


@pytest.fixture
async def servers(aiohttp_server, ollama):
    anthropic = await aiohttp_server(fake_anthropic.make_app(api_key="test-anthropic-key"))
    gemini = await aiohttp_server(fake_gemini.make_app(api_key="test-gemini-key"))
    return {"anthropic": anthropic, "gemini": gemini, "ollama": ollama}


@pytest.fixture
async def sdk(servers, aiohttp_server):
    doc = ollama_config(servers["ollama"])
    a_base = str(servers["anthropic"].make_url("")).rstrip("/")
    g_base = str(servers["gemini"].make_url("/v1beta"))
    for scenario in ("echo", "tools", "thinking-tools", "thinking", "cached", "rate-limited", "overloaded", "truncated"):
        doc["models"].append({"name": f"claude-{scenario}", "provider": "anthropic", "model": scenario,
                              "api_base": a_base, "api_key_env": "ANTHROPIC_API_KEY"})
    for scenario in ("echo", "tools", "thinking-tools", "thinking", "safety", "unavailable", "truncated"):
        doc["models"].append({"name": f"gemini-{scenario}", "provider": "gemini", "model": scenario,
                              "api_base": g_base, "api_key_env": "GEMINI_API_KEY"})
    doc["models"].append({"name": "gemini-embed", "provider": "gemini", "model": "text-embedding-004",
                          "api_base": g_base, "api_key_env": "GEMINI_API_KEY"})
    server = await aiohttp_server(create_app(ConfigHolder("test", from_dict(doc, env=ENV))))
    client = AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="unused", max_retries=0)
    yield client
    await client.close()


async def streamed_turn(sdk, model, messages, **kw):
    async with sdk.chat.completions.stream(model=model, messages=messages, tools=TOOLS, **kw) as stream:
        async for _ in stream:
            pass
        return await stream.get_final_completion()


def follow_up(messages, message) -> list:
    messages = messages + [message.model_dump(exclude_none=True, exclude={"parsed"})]
    for call in message.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"ok": call.function.name})})
    return messages


@pytest.mark.parametrize("model", ["claude-tools", "claude-thinking-tools", "gemini-tools", "gemini-thinking-tools",
                                   "tools-before-done"])
async def test_multi_turn_streamed_tool_conversation(sdk, model):
    """Turn 1 streams tool calls; turn 2 sends the calls and results back and is accepted by the vendor."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather and time in Oslo?"}]
    first = await streamed_turn(sdk, model, messages, reasoning_effort="low" if "thinking" in model else None)
    assert first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls
    assert calls[0].function.name == "get_weather" and json.loads(calls[0].function.arguments) == {"city": "Oslo"}
    assert all(json.loads(c.function.arguments) is not None for c in calls)
    assert len({c.id for c in calls}) == len(calls)
    second = await streamed_turn(sdk, model, follow_up(messages, first.choices[0].message))
    assert second.choices[0].message.content
    assert second.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", ["claude-thinking-tools", "gemini-thinking-tools"])
async def test_non_stream_thinking_survives_tool_turn(sdk, model):
    """Non-streamed: thinking reaches the client as reasoning_content and the signed follow-up turn is accepted."""
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    first = await sdk.chat.completions.create(model=model, messages=messages, tools=TOOLS, reasoning_effort="low")
    msg = first.choices[0].message
    assert msg.tool_calls and getattr(msg, "reasoning_content", None)
    second = await sdk.chat.completions.create(model=model, messages=follow_up(messages, msg), tools=TOOLS,
                                               reasoning_effort="low")
    assert second.choices[0].message.content


@pytest.mark.parametrize("model,expected", [("claude-echo", "Hello from echo"), ("gemini-echo", "Hello from echo")])
async def test_text_and_usage(sdk, model, expected):
    """Plain text streams with a final usage chunk, like any OpenAI model."""
    stream = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True,
                                               stream_options={"include_usage": True})
    text, usage = "", None
    async for chunk in stream:
        text += "".join(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    assert text == expected and usage.completion_tokens > 0 and usage.prompt_tokens > 0


async def test_cached_tokens_reported(sdk):
    """Anthropic cache reads come back as prompt_tokens_details.cached_tokens."""
    r = await sdk.chat.completions.create(model="claude-cached", messages=[{"role": "user", "content": "hi"}])
    assert r.usage.prompt_tokens_details.cached_tokens == 100


async def test_gemini_safety_is_content_filter(sdk):
    """A Gemini safety stop is finish_reason content_filter."""
    r = await sdk.chat.completions.create(model="gemini-safety", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize("model,exc", [("claude-overloaded", openai.InternalServerError),
                                       ("claude-rate-limited", openai.RateLimitError),
                                       ("gemini-unavailable", openai.InternalServerError)])
async def test_vendor_errors_mapped(sdk, model, exc):
    """Vendor overload / rate-limit errors arrive as the SDK's matching exceptions."""
    with pytest.raises(exc):
        await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("model", ["claude-truncated", "gemini-truncated"])
async def test_vendor_stream_without_terminal_event_is_an_error(sdk, model):
    """A vendor stream that ends without its terminal event ends with an SSE error, not a silent truncation."""
    stream = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


async def test_unknown_tool_id_rejected_before_upstream(sdk, servers):
    """A tool message answering an unknown id is a 400 naming the field, and nothing reaches the vendor."""
    for model, server, fake in (("claude-echo", servers["anthropic"], fake_anthropic),
                                ("gemini-echo", servers["gemini"], fake_gemini)):
        before = len(server.app[fake.REQUESTS])
        with pytest.raises(openai.BadRequestError) as info:
            await sdk.chat.completions.create(model=model, messages=[
                {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "1"}])
        assert "messages[1].tool_call_id" in str(info.value)
        assert len(server.app[fake.REQUESTS]) == before


async def test_gemini_embeddings(sdk):
    """/v1/embeddings works for Gemini models, in float and in the SDK's default base64."""
    r = await sdk.embeddings.create(model="gemini-embed", input=["a", "b c"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 8
    f = await sdk.embeddings.create(model="gemini-embed", input="a", encoding_format="float")
    assert f.data[0].embedding == pytest.approx(r.data[0].embedding, rel=1e-6)
