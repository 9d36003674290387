"""End to end with the official `anthropic` SDK (and Claude Code's recorded request) against a running
litegate, on every provider's fake: Ollama, OpenAI-compatible, Gemini, and Anthropic natively."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import pytest
from anthropic import AsyncAnthropic

from litegate.config import ConfigHolder, from_dict
from litegate.http import appkeys
from litegate.http.app import create_app
from tests.conftest import base, ollama_config
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes import ollama as fake_ollama
from tests.fakes import openai_compat as fake_openai
from tests.fakes import serper as fake_serper

FIXTURES = Path(__file__).resolve().parent / "data" / "requests" / "anthropic"
KEY, LIMITED = "sk-lg-claude-code", "sk-lg-llama-only"
ENV = {"ANTHROPIC_API_KEY": "test-anthropic-key", "GEMINI_API_KEY": "test-gemini-key", "BACKEND_KEY": "sk-backend",
       "SERPER_KEY": "serper-key", "LG_KEY": KEY, "LG_LIMITED": LIMITED}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
TOOLS = [{"name": "get_weather", "description": "Current weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False,
    "$schema": "http://json-schema.org/draft-07/schema#"}},
         {"name": "get_time", "description": "Current time", "input_schema": {"type": "object", "properties": {}}}]
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def fakes(aiohttp_server, ollama, oai):
    return {"ollama": ollama, "openai": oai,
            "anthropic": await aiohttp_server(fake_anthropic.make_app(api_key="test-anthropic-key")),
            "gemini": await aiohttp_server(fake_gemini.make_app(api_key="test-gemini-key")),
            "serper": await aiohttp_server(fake_serper.make_app(api_key="serper-key"))}


@pytest.fixture
async def lg(fakes, aiohttp_server, tmp_path):
    doc = ollama_config(fakes["ollama"], usage={"path": str(tmp_path / "usage")})
    for m in doc["models"]:
        if m["name"] == "tools-before-done":
            m["max_output_tokens"] = 8192
    a_base, g_base, o_base = base(fakes["anthropic"]), base(fakes["gemini"], "/v1beta"), base(fakes["openai"], "/v1")
    doc["models"] += [
        {"name": "searcher", "provider": "ollama", "model": "searcher:latest", "api_base": base(fakes["ollama"])},
        {"name": "vllm", "provider": "openai", "model": "echo", "api_base": o_base, "api_key_env": "BACKEND_KEY"},
        {"name": "vllm-tools", "provider": "openai", "model": "tools-split", "api_base": o_base,
         "api_key_env": "BACKEND_KEY"},
        {"name": "vllm-broken", "provider": "openai", "model": "midstream-error", "api_base": o_base,
         "api_key_env": "BACKEND_KEY"},
    ]
    for scenario in ("echo", "tools", "thinking-tools", "overloaded"):
        doc["models"].append({"name": f"claude-native-{scenario}", "provider": "anthropic", "model": scenario,
                              "api_base": a_base, "api_key_env": "ANTHROPIC_API_KEY",
                              "options": {"anthropic_beta": "context-1m-2025-08-07"}})
    for scenario in ("echo", "tools", "thinking", "thinking-tools"):
        doc["models"].append({"name": f"gem-{scenario}", "provider": "gemini", "model": scenario,
                              "api_base": g_base, "api_key_env": "GEMINI_API_KEY"})
    doc["router"]["aliases"] = {"claude-opus-4-1": "claude-native-thinking-tools", "*haiku*": "llama",
                                "claude-*": "tools-before-done"}
    doc["web_search"] = {"provider": "serper", "api_base": base(fakes["serper"]), "api_key_env": "SERPER_KEY"}
    doc["auth"] = {"keys": [{"name": "cc", "key_env": "LG_KEY", "admin": True}, {"name": "limited", "key_env": "LG_LIMITED",
                                                                  "models": ["llama"]}]}
    return await aiohttp_server(create_app(ConfigHolder("test", from_dict(doc, env=ENV))))


@pytest.fixture
async def sdk(lg):
    client = AsyncAnthropic(base_url=str(lg.make_url("")).rstrip("/"), api_key=KEY, max_retries=0)
    yield client
    await client.close()


async def post_raw(lg, path: str, doc: dict, query: str = "") -> tuple[int, dict, bytes]:
    import aiohttp
    async with aiohttp.ClientSession() as s:
        async with s.post(str(lg.make_url(path)) + (f"?{query}" if query else ""), data=json.dumps(doc["body"]),
                          headers={**doc["headers"], "authorization": f"Bearer {KEY}"}) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


def sse(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in raw.split(b"\n\n"):
        if block.strip():
            lines = dict(line.split(b": ", 1) for line in block.split(b"\n"))
            out.append((lines[b"event"].decode(), json.loads(lines[b"data"])))
    return out


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# ---------------------------------------------------------------- Claude Code's own request, awkward cases first
async def test_claude_code_turn_on_a_local_model(lg, fakes):
    """The recorded Claude Code turn (?beta=true, betas, 15 tools, cache_control, replayed signed thinking,
    an image inside a tool_result) reaches Ollama through the claude-* pattern: the attribution block is
    dropped, tool ids kept, max_tokens clamped, a small num_ctx warned about; the stream parses."""
    status, headers, raw = await post_raw(lg, "/v1/messages", fixture("claude_code_main_loop"), "beta=true")
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = sse(raw)
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert events[0][1]["message"]["model"] == "claude-sonnet-4-5-20250929"
    assert events[0][1]["message"]["usage"]["input_tokens"] > 1000  # an estimate, never 0
    calls = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert headers["request-id"] == headers["x-request-id"]
    assert "num_ctx" in headers["x-litegate-warning"]
    sent = fakes["ollama"].app[fake_ollama.REQUESTS][-1]["json"]
    assert sent["model"] == "tools-before-done:latest" and sent["options"]["num_predict"] == 8192
    system = sent["messages"][0]
    assert system["role"] == "system" and "x-anthropic-billing-header" not in system["content"]
    tool_msgs = [m for m in sent["messages"] if m["role"] == "tool"]
    assert [m.get("tool_call_id") for m in tool_msgs] == ["toolu_01Lx7hM2x3W9rK5bVj8cQe4N",
                                                        "toolu_01Hq4n2Zt6yP8sDf3Gk7mWa1", "toolu_01Pz9c8Vb7Nm6Xa5Sd4Fg3Hj"]
    assert sent["messages"][-1]["images"] == [PNG]
    assert len(sent["tools"]) == 15


async def test_claude_code_turn_passes_natively_to_anthropic(lg, fakes):
    """Routed to an Anthropic deployment, the request is not translated: cache_control, the attribution block,
    the signed thinking and context_management arrive as sent; the key is the deployment's, betas are passed
    on with the deployment's own; the reply names the client's model; usage is counted."""
    doc = fixture("claude_code_main_loop")
    doc["body"]["model"] = "claude-opus-4-1"
    status, headers, raw = await post_raw(lg, "/v1/messages", doc, "beta=true")
    assert status == 200, raw
    got = fakes["anthropic"].app[fake_anthropic.REQUESTS][-1]
    body = got["json"]
    assert body["model"] == "thinking-tools" and body["max_tokens"] == 32000
    assert body["system"] == doc["body"]["system"] and body["tools"] == doc["body"]["tools"]
    assert body["messages"][1]["content"][0]["signature"] == doc["body"]["messages"][1]["content"][0]["signature"]
    assert body["messages"][2]["content"][2]["cache_control"] == {"type": "ephemeral"}
    assert body["context_management"] == doc["body"]["context_management"]
    assert "thinking" not in body  # its last tool turn has no signed thinking: the API would refuse it
    assert got["headers"]["x-api-key"] == "test-anthropic-key" and "authorization" not in {
        k.lower() for k in got["headers"]}
    assert got["headers"]["anthropic-beta"].startswith("claude-code-20250219,") and \
        got["headers"]["anthropic-beta"].endswith(",context-1m-2025-08-07")
    events = sse(raw)
    assert events[0][1]["message"]["model"] == "claude-opus-4-1"
    assert ("ping", {"type": "ping"}) in events  # the backend's own frames, relayed


async def test_web_search_subrequest_is_run_by_litegate(lg, fakes):
    """Claude Code's WebSearch sub-request (web_search_20250305 only) on a local model: litegate searches with
    its backend and streams server_tool_use + web_search_tool_result blocks, counted in usage."""
    doc = fixture("claude_code_web_search")
    doc["body"]["model"] = "searcher"
    status, _, raw = await post_raw(lg, "/v1/messages", doc, "beta=true")
    assert status == 200, raw
    events = sse(raw)
    blocks = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [b["type"] for b in blocks] == ["text", "server_tool_use", "web_search_tool_result", "text"]
    assert blocks[2]["content"][0]["url"].startswith("https://example.com/")
    assert events[-2][1]["usage"]["server_tool_use"]["web_search_requests"] == 1
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert fakes["serper"].app[fake_serper.REQUESTS][0]["json"]["q"].startswith("Perform a web search")


async def test_web_search_with_the_sdk_not_streaming(sdk):
    """The same server tool through the SDK, not streamed: the SDK's types hold the search blocks."""
    msg = await sdk.messages.create(model="searcher", max_tokens=1024, messages=[{"role": "user", "content": "news?"}],
                                    tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}])
    assert [b.type for b in msg.content] == ["text", "server_tool_use", "web_search_tool_result", "text"]
    assert msg.content[-1].text.startswith("Answer: https://example.com/")
    assert msg.usage.server_tool_use.web_search_requests == 1


# ---------------------------------------------------------------- the SDK on every provider
PROVIDERS = ["llama", "vllm", "gem-echo", "claude-native-echo"]
GREETING = {"llama": "Hello from llama3.1:8b", "vllm": "Hello from echo", "gem-echo": "Hello from echo",
            "claude-native-echo": "Hello from echo"}


@pytest.mark.parametrize("model", PROVIDERS)
async def test_stream_text_on_every_provider(sdk, model):
    """messages.stream on each provider's fake: the text, end_turn, real output and input counts."""
    async with sdk.messages.stream(model=model, max_tokens=256, messages=HI) as s:
        text = "".join([t async for t in s.text_stream])
        msg = await s.get_final_message()
    assert text == GREETING[model] and msg.stop_reason == "end_turn" and msg.model == model
    assert msg.usage.output_tokens == 3 and msg.usage.input_tokens > 0


@pytest.mark.parametrize("model", PROVIDERS)
async def test_whole_reply_on_every_provider(sdk, model):
    """messages.create without streaming on each provider: one text block and usage."""
    msg = await sdk.messages.create(model=model, max_tokens=256, messages=HI, system="Be brief.")
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == GREETING[model]
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens == 3


@pytest.mark.parametrize("model", ["tools-before-done", "vllm-tools", "gem-tools", "claude-native-tools"])
@pytest.mark.parametrize("stream", [True, False])
async def test_tool_round_trip_keeps_ids(sdk, fakes, model, stream):
    """Parallel tool calls come back as tool_use blocks (`{}` for get_time); sent back as tool_results with
    those ids, the follow-up reaches the backend with the same ids and gets an answer."""
    messages = [{"role": "user", "content": "Weather and time in Oslo?"}]
    if stream:
        async with sdk.messages.stream(model=model, max_tokens=1024, messages=messages, tools=TOOLS) as s:
            first = await s.get_final_message()
    else:
        first = await sdk.messages.create(model=model, max_tokens=1024, messages=messages, tools=TOOLS)
    uses = [b for b in first.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("get_weather", {"city": "Oslo"}), ("get_time", {})]
    assert first.stop_reason == "tool_use" and len({u.id for u in uses}) == 2
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "4 °C"},
                                              {"type": "tool_result", "tool_use_id": uses[1].id, "content": "12:00"}]}]
    second = await sdk.messages.create(model=model, max_tokens=1024, messages=messages, tools=TOOLS)
    assert second.content
    if model == "vllm-tools":
        sent = fakes["openai"].app[fake_openai.REQUESTS][-1]["json"]["messages"]
        assert [c["id"] for c in sent[1]["tool_calls"]] == [u.id for u in uses]
        assert [m["tool_call_id"] for m in sent[2:]] == [u.id for u in uses]


@pytest.mark.parametrize("model,thought", [("thinking", "Let me think"), ("gem-thinking", "Let me think")])
async def test_thinking_comes_back_as_thinking_blocks(sdk, model, thought):
    """thinking {enabled, budget} turns the backend's reasoning on; it streams back as a thinking block
    (with a signature) before the text."""
    async with sdk.messages.stream(model=model, max_tokens=4096, messages=HI,
                                   thinking={"type": "enabled", "budget_tokens": 2048}) as s:
        msg = await s.get_final_message()
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == thought and msg.content[0].signature
    assert msg.content[1].text == "The answer is 4."


async def test_image_reaches_ollama(sdk, fakes):
    """A base64 image block arrives at Ollama as its raw base64 image."""
    await sdk.messages.create(model="llama", max_tokens=64, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "What is this?"}]}])
    sent = fakes["ollama"].app[fake_ollama.REQUESTS][-1]["json"]["messages"][-1]
    assert sent["images"] == [PNG] and sent["content"] == "What is this?"


async def test_sampling_and_stop_sequences_reach_ollama(sdk, fakes):
    """temperature, top_p, top_k, stop_sequences and max_tokens land in Ollama's options (this SDK version
    no longer types the sampling fields, so they go as extra_body, as older clients send them)."""
    await sdk.messages.create(model="llama", max_tokens=77, messages=HI, stop_sequences=["END"],
                              metadata={"user_id": "u1"}, extra_body={"temperature": 0.3, "top_p": 0.8, "top_k": 20})
    options = fakes["ollama"].app[fake_ollama.REQUESTS][-1]["json"]["options"]
    assert {k: options[k] for k in ("temperature", "top_p", "top_k", "stop", "num_predict")} == {
        "temperature": 0.3, "top_p": 0.8, "top_k": 20, "stop": ["END"], "num_predict": 77}


# ---------------------------------------------------------------- count_tokens
async def test_count_tokens_is_anthropics_own_count_natively(sdk, fakes):
    """For an Anthropic model the count is the backend's (its endpoint, the client's betas), not an estimate."""
    r = await sdk.messages.count_tokens(model="claude-native-echo", messages=[{"role": "user", "content": "one two"}],
                                        tools=TOOLS)
    assert r.input_tokens == 3 + 2 + 2 + 5 * 2  # the fake's own rule: words of texts and descriptions + 5 per tool
    assert fakes["anthropic"].app[fake_anthropic.REQUESTS][-1]["path"] == "/v1/messages/count_tokens"


async def test_count_tokens_is_geminis_own_count(sdk, fakes):
    """For a Gemini model the count comes from its countTokens (the request generateContent would get)."""
    r = await sdk.messages.count_tokens(model="gem-echo", system="Be brief.",
                                        messages=[{"role": "user", "content": "one two three"}], tools=TOOLS)
    assert r.input_tokens == 2 + 3 + 4 * 2  # the fake's rule: words of all texts + 4 per function
    got = fakes["gemini"].app[fake_gemini.REQUESTS][-1]
    assert got["path"].endswith(":countTokens") and got["json"]["generateContentRequest"]["model"] == "models/echo"


async def test_count_tokens_estimates_for_local_models(sdk, lg):
    """For other backends the count is an estimate of the prompt (chars/4), growing with it, never a constant;
    Claude Code's recorded count_tokens request (?beta=true) is answered too."""
    small = await sdk.messages.count_tokens(model="llama", messages=HI)
    big = await sdk.messages.count_tokens(model="llama", messages=[{"role": "user", "content": "word " * 400}],
                                          tools=TOOLS)
    assert 1 <= small.input_tokens < big.input_tokens and big.input_tokens >= 500
    status, _, raw = await post_raw(lg, "/v1/messages/count_tokens", fixture("claude_code_count_tokens"), "beta=true")
    assert status == 200 and json.loads(raw)["input_tokens"] > 100


# ---------------------------------------------------------------- keys, models, errors
async def test_bearer_and_x_api_key_are_both_litegate_keys(lg):
    """ANTHROPIC_AUTH_TOKEN (Bearer) and ANTHROPIC_API_KEY (x-api-key) both work; a wrong key is
    Anthropic's authentication_error; a key without the model is permission_error."""
    url = str(lg.make_url("")).rstrip("/")
    for client in (AsyncAnthropic(base_url=url, auth_token=KEY, max_retries=0),
                   AsyncAnthropic(base_url=url, api_key=KEY, max_retries=0)):
        msg = await client.messages.create(model="llama", max_tokens=16, messages=HI)
        assert msg.content[0].text == "Hello from llama3.1:8b"
        await client.close()
    bad = AsyncAnthropic(base_url=url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        await bad.messages.create(model="llama", max_tokens=16, messages=HI)
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "authentication_error"
    await bad.close()
    limited = AsyncAnthropic(base_url=url, api_key=LIMITED, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError):
        await limited.messages.create(model="vllm", max_tokens=16, messages=HI)
    await limited.close()


async def test_model_names_map_through_patterns(sdk, fakes):
    """Claude Code's names reach the configured models: *haiku* before claude-*, exact aliases first;
    the reply names what the client asked for."""
    msg = await sdk.messages.create(model="claude-haiku-4-5-20251001", max_tokens=16, messages=HI)
    assert msg.content[0].text == "Hello from llama3.1:8b" and msg.model == "claude-haiku-4-5-20251001"
    msg = await sdk.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=HI, tools=TOOLS)
    assert msg.stop_reason == "tool_use"


async def test_models_list_in_anthropics_shape(sdk, lg):
    """GET /v1/models with anthropic-version answers Anthropic's list shape (patterns are not listed);
    without the header it stays OpenAI's."""
    page = await sdk.models.list()
    ids = [m.id for m in page.data]
    assert "llama" in ids and "claude-opus-4-1" in ids and "claude-*" not in ids
    assert page.data[0].type == "model" and page.data[0].created_at.year >= 1970
    import aiohttp
    async with aiohttp.ClientSession() as s:
        async with s.get(str(lg.make_url("/v1/models")), headers={"x-api-key": KEY}) as r:
            assert (await r.json())["object"] == "list"


@pytest.mark.parametrize("model,cls,kind", [
    ("nope", anthropic.NotFoundError, "not_found_error"),
    ("crash", anthropic.InternalServerError, "api_error"),
    ("busy", anthropic.OverloadedError, "overloaded_error"),
    ("claude-native-overloaded", anthropic.OverloadedError, "overloaded_error"),
])
async def test_errors_before_the_stream_in_anthropics_shape(sdk, model, cls, kind):
    """Unknown model, a crashed or busy backend: the SDK's matching exception, Anthropic's error body."""
    with pytest.raises(cls) as info:
        async with sdk.messages.stream(model=model, max_tokens=16, messages=HI) as s:
            await s.get_final_message()
    assert info.value.body["error"]["type"] == kind


@pytest.mark.parametrize("model", ["error-midstream", "vllm-broken"])
async def test_error_after_the_first_byte_is_an_error_event(sdk, model):
    """A backend failing mid-stream ends the stream with an `error` event, which the SDK raises."""
    with pytest.raises(anthropic.APIStatusError):
        async with sdk.messages.stream(model=model, max_tokens=16, messages=HI) as s:
            async for _ in s:
                pass


async def test_bad_request_names_the_field(sdk):
    """A body litegate cannot serve is invalid_request_error naming the field the client wrote."""
    with pytest.raises(anthropic.BadRequestError) as info:
        await sdk.messages.create(model="llama", max_tokens=16, messages=[
            {"role": "user", "content": "go"},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}]}])
    assert "messages[1].content[0].tool_use_id" in info.value.body["error"]["message"]


async def test_usage_counts_the_face(sdk, lg):
    """Requests on this face are counted like any other, with the face recorded (metrics label)."""
    await sdk.messages.create(model="llama", max_tokens=16, messages=HI)
    import aiohttp
    async with aiohttp.ClientSession() as s:
        async with s.get(str(lg.make_url("/metrics")), headers={"x-api-key": KEY}) as r:
            text = await r.text()
    assert 'face="anthropic"' in text


async def test_usage_groups_by_face(sdk, lg):
    """The usage store records the face: /admin/usage?group_by=face separates Anthropic from OpenAI clients."""
    import aiohttp
    from openai import AsyncOpenAI
    await sdk.messages.create(model="llama", max_tokens=16, messages=HI)
    oai = AsyncOpenAI(base_url=str(lg.make_url("/v1")), api_key=KEY, max_retries=0)
    await oai.chat.completions.create(model="llama", messages=HI)
    await oai.close()
    assert await lg.app[appkeys.SERVICES].usage.flush()
    async with aiohttp.ClientSession() as s:
        async with s.get(str(lg.make_url("/admin/usage?since=1d&group_by=face")), headers={"x-api-key": KEY}) as r:
            rows = {row["group"]: row["requests"] for row in (await r.json())["rows"]}
    assert rows == {"anthropic": 1, "openai": 1}


async def test_gemini_thought_signatures_survive_a_claude_code_tool_turn(sdk):
    """Gemini's thinking tool calls need their thoughtSignature back on the next turn (the fake refuses a
    call without one): the tool ids the client replays carry them through litegate's memo, and the
    thinking block it echoes (signed with litegate's own token) does not get in the way."""
    messages = [{"role": "user", "content": "Weather and time in Oslo?"}]
    async with sdk.messages.stream(model="gem-thinking-tools", max_tokens=4096, messages=messages, tools=TOOLS,
                                   thinking={"type": "enabled", "budget_tokens": 2048}) as s:
        first = await s.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "tool_use", "tool_use"]
    uses = first.content[1:]
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": u.id, "content": "ok"}
                                              for u in uses]}]
    second = await sdk.messages.create(model="gem-thinking-tools", max_tokens=4096, messages=messages, tools=TOOLS,
                                       thinking={"type": "enabled", "budget_tokens": 2048})
    assert second.content[-1].text == "Got 2 tool results"
