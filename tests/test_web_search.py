"""Server-side web search: a local model searches the web for a client that declared no tool,
streamed and not, with citations, limits, caching, and graceful failure."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from openai import AsyncOpenAI

from litegate.http import appkeys
from litegate.http.app import create_app
from litegate.config import ConfigHolder, from_dict
from tests.conftest import base, sse_events
from tests.fakes import ollama as fake
from tests.fakes import searxng as fake_searxng
from tests.fakes import serper as fake_serper

QUESTION = [{"role": "user", "content": "who won the 2026 chess olympiad"}]


@pytest.fixture
async def serper(aiohttp_server):
    return await aiohttp_server(fake_serper.make_app(api_key="serper-key"))


@pytest.fixture
async def searxng(aiohttp_server):
    return await aiohttp_server(fake_searxng.make_app())


def search_config(ollama, search: dict, **extra) -> dict:
    models = [{"name": n, "provider": "ollama", "model": f"{n}:latest", "api_base": base(ollama),
               "server_tools": ["web_search", "fetch_url"]} for n in ("searcher", "searcher-loop", "searcher-mixed",
                                                                       "fetcher", "no-tools")]
    models.append({"name": "plain", "provider": "ollama", "model": "searcher", "api_base": base(ollama)})
    return {"models": models, "web_search": search, "router": {"num_retries": 0, "ollama_poll_s": 0}, **extra}


def serper_block(serper, **extra) -> dict:
    return {"provider": "serper", "api_base": base(serper), "api_key_env": "SERPER_KEY", **extra}


ENV = {"SERPER_KEY": "serper-key"}


def chats(ollama) -> list[dict]:
    return [r["json"] for r in ollama.app[fake.REQUESTS] if r["path"] == "/api/chat"]


@pytest.fixture
async def sdk(ollama, serper, aiohttp_server, tmp_path):
    doc = search_config(ollama, serper_block(serper), usage={"path": str(tmp_path / "usage")})
    server = await aiohttp_server(create_app(ConfigHolder("t", from_dict(doc, env=ENV))))
    client = AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0)
    client.litegate = server  # type: ignore[attr-defined]
    yield client
    await client.close()


async def test_sdk_non_stream_answer_with_citations(sdk, ollama, serper):
    """A client with no tools gets an answer built from the search results, with url_citation annotations."""
    r = await sdk.chat.completions.create(model="searcher", messages=QUESTION)
    msg = r.choices[0].message
    assert msg.content.startswith("Let me search.Answer: https://example.com/")
    assert msg.tool_calls is None and r.choices[0].finish_reason == "stop"
    urls = [a.url_citation.url for a in msg.annotations]
    assert urls[0] in msg.content and len(urls) == 3
    cited = msg.annotations[0].url_citation
    assert msg.content[cited.start_index:cited.end_index] == cited.url
    assert serper.app[fake_serper.REQUESTS][0]["json"]["q"] == QUESTION[0]["content"]
    second = chats(ollama)[1]["messages"]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "web_search"
    assert second[-1]["role"] == "tool" and second[-1]["tool_name"] == "web_search"
    assert "untrusted" in second[-1]["content"].lower()
    # usage is summed over both rounds: the fake counts prompt words and one token per streamed piece
    prompt_words = sum(len((m.get("content") or "").split()) for c in chats(ollama) for m in c["messages"])
    assert r.usage.prompt_tokens == prompt_words and r.usage.completion_tokens == 2 + 2


async def test_sdk_stream_hides_server_tools(sdk, ollama):
    """Streaming: text then the final answer stream; no tool call, tool message or unknown tool reaches the client."""
    stream = await sdk.chat.completions.create(model="searcher", messages=QUESTION, stream=True,
                                               stream_options={"include_usage": True})
    text, finish, annotations, usage = "", None, [], None
    async for chunk in stream:
        for c in chunk.choices:
            assert not c.delta.tool_calls
            text += c.delta.content or ""
            finish = c.finish_reason or finish
            annotations += getattr(c.delta, "annotations", None) or []
        usage = chunk.usage or usage
    assert text.startswith("Let me search.Answer: https://example.com/") and finish == "stop"
    assert len(annotations) == 3
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0


async def test_stream_is_well_formed_and_counts_searches(ollama, serper, gateway):
    """One role chunk first, keep-alives allowed, citations before the finish; usage rows count the searches."""
    client = await gateway(search_config(ollama, serper_block(serper)), env=ENV)
    resp = await client.post("/v1/chat/completions", json={"model": "searcher", "messages": QUESTION, "stream": True})
    events, _ = sse_events(await resp.read())
    chunks = events[:-1]
    assert events[-1] == "[DONE]"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum("role" in c["choices"][0]["delta"] for c in chunks) == 1
    assert any("annotations" in c["choices"][0]["delta"] for c in chunks)
    assert b"web_search" not in json.dumps(chunks).encode()
    svc = client.server.app[appkeys.SERVICES]
    await svc.usage.flush()
    rows = await svc.usage.recent_errors(10)
    assert rows == []
    totals = await svc.usage.totals(0, None, "model")
    assert totals[0].server_tool_calls == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'litegate_search_calls_total{tool="web_search",outcome="ok"} 1' in metrics


async def test_searxng_backend(ollama, searxng, gateway):
    """The same loop works with a self-hosted SearXNG (format=json)."""
    client = await gateway(search_config(ollama, {"provider": "searxng", "api_base": base(searxng)}))
    body = await (await client.post("/v1/chat/completions", json={"model": "searcher", "messages": QUESTION})).json()
    assert "Answer: http" in body["choices"][0]["message"]["content"]
    assert searxng.app[fake_searxng.REQUESTS][0]["query"]["format"] == "json"


async def test_repeated_identical_call_ends_the_loop(ollama, serper, gateway):
    """A model repeating the same search is stopped and asked to answer with what it has (no tools)."""
    client = await gateway(search_config(ollama, serper_block(serper)), env=ENV)
    body = await (await client.post("/v1/chat/completions", json={"model": "searcher-loop", "messages": QUESTION})).json()
    assert body["choices"][0]["message"]["content"] == "Final answer from what I know."
    assert len(serper.app[fake_serper.REQUESTS]) == 1
    last = chats(ollama)[-1]
    assert "tools" not in last and "answer the user now" in last["messages"][-1]["content"].lower()


async def test_round_ceiling(ollama, serper, gateway):
    """At max_rounds the model gets one last call without tools."""
    client = await gateway(search_config(ollama, serper_block(serper, max_rounds=1)), env=ENV)
    await client.post("/v1/chat/completions", json={"model": "searcher-loop", "messages": QUESTION})
    assert [("tools" in c) for c in chats(ollama)] == [True, False]


async def test_client_and_server_tools_in_one_turn(ollama, serper, gateway):
    """The client's own tool call comes back untouched (server call run first); its follow-up is accepted
    and the backend sees the full history with the server call restored."""
    client = await gateway(search_config(ollama, serper_block(serper)), env=ENV)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    first = await (await client.post("/v1/chat/completions", json={
        "model": "searcher-mixed", "messages": QUESTION, "tools": tools})).json()
    msg = first["choices"][0]["message"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in msg["tool_calls"]] == ["get_weather"]
    assert len(serper.app[fake_serper.REQUESTS]) == 1
    follow = QUESTION + [msg, {"role": "tool", "tool_call_id": msg["tool_calls"][0]["id"], "content": "4 C"}]
    second = await (await client.post("/v1/chat/completions", json={
        "model": "searcher-mixed", "messages": follow, "tools": tools})).json()
    assert second["choices"][0]["message"]["content"] == "Weather and news: done"
    history = chats(ollama)[-1]["messages"]
    assert [c["function"]["name"] for c in history[1]["tool_calls"]] == ["web_search", "get_weather"]
    assert [m.get("tool_name") for m in history[2:4]] == ["web_search", "get_weather"]


@pytest.mark.parametrize("query_word,expect", [("fail500", "failed"), ("garbage", "failed"), ("quota", "failed")])
async def test_search_backend_failure_still_answers(ollama, serper, gateway, query_word, expect):
    """Search down, over quota or returning garbage: the model gets a short tool error and the client an answer."""
    client = await gateway(search_config(ollama, serper_block(serper)), env=ENV)
    resp = await client.post("/v1/chat/completions", json={"model": "searcher", "messages": [
        {"role": "user", "content": f"question {query_word}"}]})
    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"].startswith("Let me search.Answer:")
    tool_msg = chats(ollama)[-1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["content"].startswith("web_search " + expect)


async def test_search_timeout(ollama, serper, gateway):
    """A search backend that hangs past its timeout becomes a tool error, not a hung request."""
    client = await gateway(search_config(ollama, serper_block(serper, timeout_s=0.2)), env=ENV)
    resp = await client.post("/v1/chat/completions", json={"model": "searcher", "messages": [
        {"role": "user", "content": "slow question"}]})
    assert resp.status == 200
    assert "did not answer" in chats(ollama)[-1]["messages"][-1]["content"] or \
        "timed out" in chats(ollama)[-1]["messages"][-1]["content"]
    serper.app[fake_serper.GATE].set()


async def test_cache_and_daily_limits(ollama, serper, gateway):
    """Identical searches are served from the cache; the global daily limit turns further searches into a tool error."""
    client = await gateway(search_config(ollama, serper_block(serper, searches_per_day=2)), env=ENV)
    for _ in range(2):
        await client.post("/v1/chat/completions", json={"model": "searcher", "messages": QUESTION})
    assert len(serper.app[fake_serper.REQUESTS]) == 1  # cached
    for q in ("another question", "third question"):
        await client.post("/v1/chat/completions", json={"model": "searcher", "messages": [{"role": "user", "content": q}]})
    assert len(serper.app[fake_serper.REQUESTS]) == 2
    assert "limit" in chats(ollama)[-1]["messages"][-1]["content"]


async def test_per_request_web_search_options(ollama, serper, gateway):
    """A model without server_tools gets web search when the client sends web_search_options."""
    client = await gateway(search_config(ollama, serper_block(serper)), env=ENV)
    plain = await (await client.post("/v1/chat/completions", json={"model": "plain", "messages": QUESTION})).json()
    assert plain["choices"][0]["message"]["content"] == "I cannot search."
    asked = await (await client.post("/v1/chat/completions", json={"model": "plain", "messages": QUESTION,
                                                                   "web_search_options": {}})).json()
    assert "Answer: http" in asked["choices"][0]["message"]["content"]


async def test_web_search_options_without_backend_is_400(ollama, gateway):
    """Asking for web search on a gateway without a search backend is a 400 naming web_search_options."""
    client = await gateway({"models": [{"name": "m", "provider": "ollama", "model": "x", "api_base": base(ollama)}]})
    resp = await client.post("/v1/chat/completions", json={"model": "m", "messages": QUESTION, "web_search_options": {}})
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "web_search_options"


async def test_model_without_tool_support_gets_results_injected(ollama, serper, gateway):
    """Ollama says the model does not support tools: litegate searches first and injects the results."""
    client = await gateway(search_config(ollama, serper_block(serper)), env=ENV)
    resp = await client.post("/v1/chat/completions", json={"model": "no-tools", "messages": QUESTION, "stream": True})
    events, _ = sse_events(await resp.read())
    assert events[-1] == "[DONE]"
    last = chats(ollama)[-1]
    assert "tools" not in last
    assert any(m["role"] == "system" and "example.com" in m["content"] for m in last["messages"])


async def test_injected_results_cannot_fake_the_delimiters(ollama, serper, gateway):
    """Prompt-injection text in a result stays inside the delimited, untrusted block."""
    client = await gateway(search_config(ollama, serper_block(serper)), env=ENV)
    await client.post("/v1/chat/completions", json={"model": "searcher", "messages": [
        {"role": "user", "content": "inject something"}]})
    tool_text = chats(ollama)[-1]["messages"][-1]["content"]
    closing = tool_text.strip().splitlines()[-1]
    assert tool_text.count(closing) == 1


@pytest.fixture
async def page(aiohttp_server):
    async def article(request):
        return web.Response(text="<html><head><title>T</title><script>evil()</script></head><body>"
                                 "<p>The answer is forty-two.</p></body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/article", article)
    return await aiohttp_server(app)


async def test_fetch_url_reads_a_page_and_refuses_private(ollama, serper, page, gateway):
    """fetch_url reads one page as clean text (when private addresses are allowed) and refuses them by default."""
    doc = search_config(ollama, serper_block(serper))
    client = await gateway(doc, env=ENV)
    ask = {"model": "fetcher", "messages": [{"role": "user", "content": f"read {page.make_url('/article')}"}]}
    body = await (await client.post("/v1/chat/completions", json=ask)).json()
    assert "private" in chats(ollama)[-1]["messages"][-1]["content"]
    assert body["choices"][0]["message"]["content"].startswith("Page says:")
    client2 = await gateway({**doc, "fetch_url": {"allow_private": True}}, env=ENV)
    body = await (await client2.post("/v1/chat/completions", json=ask)).json()
    assert body["choices"][0]["message"]["content"] == "Page says: The answer is forty-two."
    assert "evil" not in chats(ollama)[-1]["messages"][-1]["content"]


async def test_keepalives_while_searching(ollama, serper, gateway):
    """While a search runs the stream has already begun (role chunk) and carries keep-alive comments."""
    client = await gateway(search_config(ollama, serper_block(serper), server={"sse_keepalive_s": 0.05}), env=ENV)
    resp = await client.post("/v1/chat/completions", json={"model": "searcher", "stream": True, "messages": [
        {"role": "user", "content": "slow question"}]})
    seen = b""
    while b": keep-alive" not in seen:
        seen += await resp.content.readuntil(b"\n\n")
    assert b'"role":"assistant"' in seen
    serper.app[fake_serper.GATE].set()
    events, _ = sse_events(seen + await resp.read())
    assert events[-1] == "[DONE]"


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_non_stream_answer_with_server_tools_on_sse_backends(provider, serper, aiohttp_server,
                                                                 gateway):
    """A non-streaming chat request to a model with server tools is still read as a stream from the backend
    (the loop parses rounds as events), on backends whose whole reply is not SSE (Anthropic, OpenAI-compatible)."""
    from tests.fakes import anthropic as fake_anthropic
    from tests.fakes import openai_compat as fake_openai

    if provider == "anthropic":
        backend = await aiohttp_server(fake_anthropic.make_app(api_key="k"))
        model = {"provider": "anthropic", "model": "echo", "api_base": base(backend)}
    else:
        backend = await aiohttp_server(fake_openai.make_app(api_key="k"))
        model = {"provider": "openai", "model": "echo", "api_base": base(backend, "/v1")}
    doc = {"models": [{"name": "m", **model, "api_key_env": "BACKEND_KEY", "server_tools": ["web_search"]}],
           "web_search": serper_block(serper), "router": {"num_retries": 0}}
    client = await gateway(doc, env={**ENV, "BACKEND_KEY": "k"})
    resp = await client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == "Hello from echo"
