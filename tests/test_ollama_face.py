"""End to end with the official `ollama` Python client against a running litegate (ollama.md §8).

One litegate serves three backends: the fake Ollama (answers pass through natively), the fake
OpenAI-compatible server and the fake Anthropic (answers are translated). The client is the
library most Ollama apps copy; `AsyncClient` is `Client` on the event loop the servers share.
"""

from __future__ import annotations

import ollama as ollama_sdk
import pytest

from litegate.config import ConfigHolder, from_dict
from litegate.http.app import create_app
from tests.conftest import base, ollama_config
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import ollama as fake_ollama
from tests.fakes import openai_compat as fake_openai

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
HI = [{"role": "user", "content": "hi there"}]
ENV = {"BACKEND_KEY": "sk-backend", "ANTHROPIC_KEY": "sk-ant"}


def face_config(ollama_srv, oai, ant) -> dict:
    doc = ollama_config(ollama_srv)
    oai_base, ant_base = base(oai, "/v1"), base(ant)
    doc["models"] += [
        {"name": "embed", "provider": "ollama", "model": "nomic-embed-text", "api_base": base(ollama_srv)},
        {"name": "gpt", "provider": "openai", "model": "gpt-4o", "api_base": oai_base, "api_key_env": "BACKEND_KEY",
         "context_window": 128000},
        {"name": "gpt-tools", "provider": "openai", "model": "tools-split", "api_base": oai_base,
         "api_key_env": "BACKEND_KEY"},
        {"name": "oai-embed", "provider": "openai", "model": "e5", "api_base": oai_base, "api_key_env": "BACKEND_KEY"},
        {"name": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5", "api_base": ant_base,
         "api_key_env": "ANTHROPIC_KEY"},
        {"name": "claude-tools", "provider": "anthropic", "model": "tools", "api_base": ant_base,
         "api_key_env": "ANTHROPIC_KEY", "capabilities": ["completion", "tools"]},
    ]
    doc["router"]["aliases"] = {"assistant": "claude"}
    return doc


@pytest.fixture
async def ant(aiohttp_server):
    return await aiohttp_server(fake_anthropic.make_app(api_key="sk-ant"))


@pytest.fixture
async def lg_host(ollama, oai, ant, aiohttp_server) -> str:
    """The address of a running litegate on the three fakes."""
    server = await aiohttp_server(create_app(ConfigHolder("test", from_dict(face_config(ollama, oai, ant), env=ENV))))
    return base(server)


@pytest.fixture
def lg(lg_host):
    """An ollama client pointed at litegate."""
    return ollama_sdk.AsyncClient(host=lg_host)


def sent(backend, path: str) -> list[dict]:
    """What litegate sent to a fake backend on `path`."""
    return [r["json"] for r in backend.app[fake_ollama.REQUESTS if path.startswith("/api") else
                                          fake_openai.REQUESTS] if r["path"] == path]


# ---------------------------------------------------------------- model info
async def test_list_shows_every_model_tagged(lg):
    """list(): every configured name and alias, as name:tag, with the fields strict clients require."""
    listed = await lg.list()
    names = [m.model for m in listed.models]
    assert {"llama:latest", "gpt:latest", "claude:latest", "assistant:latest", "embed:latest"} <= set(names)
    gpt = next(m for m in listed.models if m.model == "gpt:latest")
    assert gpt.details.family == "gpt" and gpt.details.parameter_size == "" and gpt.size == 0
    assert len(gpt.digest) == 64 and gpt.modified_at is not None


async def test_show_local_model_from_ollama_itself(lg):
    """show() of a local model: Ollama's own capabilities and details; the context is the num_ctx litegate sends."""
    shown = await lg.show("llama:latest")
    assert shown.capabilities == ["completion", "tools", "insert"]
    assert shown.details.parameter_size == "8.0B"
    assert shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["llama.context_length"] == 16384


@pytest.mark.parametrize("name,caps,key,ctx", [
    ("gpt", ["completion", "tools", "vision"], "gpt.context_length", 128000),
    ("claude", ["completion", "tools", "vision", "thinking"], "claude.context_length", 200000),
    ("assistant:latest", ["completion", "tools", "vision", "thinking"], "claude.context_length", 200000),
    ("claude-tools", ["completion", "tools"], "tools.context_length", 200000),
])
async def test_show_cloud_model_from_config(lg, name, caps, key, ctx):
    """show() of a cloud model: capabilities from config or a guess, a context length always present."""
    shown = await lg.show(name)
    assert shown.capabilities == caps and shown.modelinfo[key] == ctx


async def test_show_unknown_model_is_404(lg):
    """An unknown model is Ollama's 404 naming it."""
    with pytest.raises(ollama_sdk.ResponseError) as e:
        await lg.show("nope")
    assert e.value.status_code == 404 and "nope" in e.value.error


async def test_ps_lists_loaded_local_models(lg):
    """ps(): what the Ollama has loaded, under the name litegate serves it by."""
    running = await lg.ps()
    assert [m.model for m in running.models] == ["llama:latest"]
    assert running.models[0].size_vram == 6_654_289_920 and running.models[0].context_length == 4096


# ---------------------------------------------------------------- chat: pass-through to Ollama
async def test_chat_passes_through_to_ollama_untouched(lg, ollama):
    """chat() on a local model: the body reaches Ollama with only the model renamed; the client's
    options win over the deployment's, keep_alive and unknown options are kept."""
    r = await lg.chat(model="llama:latest", messages=HI, options={"temperature": 0.1, "mirostat": 2, "num_ctx": 4096},
                      keep_alive=-1, stream=False)
    assert r.message.content == "Hello from llama3.1:8b" and r.done and r.done_reason == "stop"
    assert r.eval_count == 3 and r.model == "llama:latest"  # the name asked for, as every path answers
    body = sent(ollama, "/api/chat")[-1]
    assert body["model"] == "llama3.1:8b" and body["keep_alive"] == -1 and body["stream"] is False
    assert body["options"] == {"num_ctx": 4096, "temperature": 0.1, "mirostat": 2}


async def test_chat_stream_from_ollama(lg, ollama):
    """Streamed chat from a local model: Ollama's own lines, ending with its done line."""
    parts = [p async for p in await lg.chat(model="llama", messages=HI, stream=True)]
    assert "".join(p.message.content for p in parts) == "Hello from llama3.1:8b"
    assert [p.done for p in parts][-1] is True and parts[-1].eval_count == 3
    assert {p.model for p in parts} == {"llama"}
    assert sent(ollama, "/api/chat")[-1]["keep_alive"] == "30m"  # the deployment's, as the client sent none


async def test_chat_tools_from_ollama(lg):
    """Tool calls from a local model keep Ollama's object arguments."""
    r = await lg.chat(model="tools-before-done", messages=HI, tools=[WEATHER], stream=False)
    assert [(c.function.name, c.function.arguments) for c in r.message.tool_calls] == [
        ("get_weather", {"city": "Oslo"}), ("get_time", {})]


# ---------------------------------------------------------------- chat: translated
async def test_chat_translated_to_openai(lg, oai):
    """chat() on an OpenAI-compatible model: translated there, answered in Ollama's shape."""
    r = await lg.chat(model="gpt:latest", messages=HI, options={"num_predict": 64, "temperature": 0.3}, stream=False)
    assert r.message.content == "Hello from gpt-4o" and r.done_reason == "stop" and r.model == "gpt:latest"
    assert (r.prompt_eval_count, r.eval_count) == (2, 3)
    body = sent(oai, "/v1/chat/completions")[-1]
    assert body["model"] == "gpt-4o" and body["max_tokens"] == 64 and body["temperature"] == 0.3


async def test_chat_stream_translated_to_anthropic(lg):
    """Streamed chat from an Anthropic model: NDJSON lines with content, then a done line with counts."""
    parts = [p async for p in await lg.chat(model="assistant", messages=HI, stream=True)]
    assert "".join(p.message.content for p in parts) == "Hello from claude-sonnet-4-5"
    assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].eval_count > 0
    assert all(p.message.role == "assistant" for p in parts)


async def test_chat_tools_streamed_from_openai_arrive_whole(lg):
    """Fragmented OpenAI tool calls reach the Ollama client whole, arguments as objects."""
    calls = []
    async for p in await lg.chat(model="gpt-tools", messages=HI, tools=[WEATHER], stream=True):
        calls += p.message.tool_calls or []
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_weather", {"city": "Oslo"}),
                                                                        ("get_time", {})]


async def test_home_assistant_tool_round_trip_on_anthropic(lg, ant):
    """Home Assistant replays tool calls and results without ids: results pair with calls by position,
    and Anthropic (which checks every tool_result answers a tool_use) accepts the history."""
    first = await lg.chat(model="claude-tools", messages=HI, tools=[WEATHER], stream=False)
    calls = [{"function": {"name": c.function.name, "arguments": c.function.arguments}}
             for c in first.message.tool_calls]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    history = HI + [{"role": "assistant", "content": "", "tool_calls": calls},
                    {"role": "tool", "content": "4 C"}, {"role": "tool", "content": "10:00"}]
    r = await lg.chat(model="claude-tools", messages=history, tools=[WEATHER], stream=False)
    assert r.message.content == "Got 2 tool results"
    turn = ant.app[fake_anthropic.REQUESTS][-1]["json"]["messages"]
    ids = [b["id"] for b in turn[1]["content"] if b["type"] == "tool_use"]
    assert [b["tool_use_id"] for b in turn[2]["content"] if b["type"] == "tool_result"] == ids


async def test_chat_image_reaches_openai_as_data_uri(lg, oai):
    """Ollama's bare base64 image becomes a data URI for a translated model."""
    await lg.chat(model="gpt", messages=[{"role": "user", "content": "what is it", "images": [PNG]}], stream=False)
    parts = sent(oai, "/v1/chat/completions")[-1]["messages"][0]["content"]
    assert parts[1]["image_url"]["url"] == "data:image/png;base64," + PNG


# ---------------------------------------------------------------- generate
async def test_generate_native_keeps_raw_and_template(lg, ollama):
    """generate() on a local model keeps raw, template and system for Ollama (nothing lost)."""
    r = await lg.generate(model="llama", prompt="Why?", system="brief", template="{{ .Prompt }}", raw=True)
    assert r.response == "Hello from llama3.1:8b" and r.done
    body = sent(ollama, "/api/generate")[-1]
    assert (body["raw"], body["template"], body["system"], body["model"]) == (True, "{{ .Prompt }}", "brief",
                                                                              "llama3.1:8b")


async def test_generate_stream_translated(lg, oai):
    """Streamed generate() on an OpenAI model: `response` fragments, then the done line."""
    parts = [p async for p in await lg.generate(model="gpt", prompt="Why?", system="brief", stream=True)]
    assert "".join(p.response for p in parts) == "Hello from gpt-4o" and parts[-1].done
    assert sent(oai, "/v1/chat/completions")[-1]["messages"] == [{"role": "system", "content": "brief"},
                                                                 {"role": "user", "content": "Why?"}]


async def test_unload_reaches_ollama_and_is_answered_for_cloud_models(lg, ollama):
    """Open WebUI's unload ({"prompt": "", "keep_alive": 0}) unloads a local model for real; a cloud
    model gets the same single-object answer."""
    local = await lg.generate(model="llama", prompt="", keep_alive=0)
    cloud = await lg.generate(model="gpt", prompt="", keep_alive=0)
    assert local.done_reason == "unload" and cloud.done_reason == "unload"
    assert sent(ollama, "/api/generate")[-1]["keep_alive"] == 0


# ---------------------------------------------------------------- embeddings
@pytest.mark.parametrize("model", ["embed", "oai-embed"])
async def test_embed(lg, model):
    """embed(): one vector per input, in order, from Ollama and from an OpenAI-compatible server."""
    r = await lg.embed(model=model, input=["a b", "c"])
    assert [v[:3] for v in r.embeddings] == [[0.3, 0.5, -0.25], [0.1, 0.5, -0.25]]


async def test_legacy_embeddings(lg):
    """embeddings(): the older route's single vector."""
    r = await lg.embeddings(model="embed:latest", prompt="a b")
    assert list(r.embedding[:3]) == [0.3, 0.5, -0.25]


async def test_server_side_web_search_through_the_ollama_face(ollama, aiohttp_server):
    """A model with litegate's web_search answers an Ollama client from the web: the search runs in
    litegate's tool loop, the client sees only the answer (no tool calls it never declared)."""
    from tests.fakes import serper as fake_serper

    serper = await aiohttp_server(fake_serper.make_app(api_key="serper-key"))
    doc = {"models": [{"name": "search-llama", "provider": "ollama", "model": "searcher:latest",
                       "api_base": base(ollama), "server_tools": ["web_search"]}],
           "web_search": {"provider": "serper", "api_base": base(serper), "api_key_env": "SERPER_KEY"},
           "router": {"num_retries": 0, "ollama_poll_s": 0}}
    server = await aiohttp_server(create_app(ConfigHolder("t", from_dict(doc, env={"SERPER_KEY": "serper-key"}))))
    client = ollama_sdk.AsyncClient(host=base(server))
    whole = await client.chat(model="search-llama:latest", messages=[{"role": "user", "content": "chess olympiad"}])
    assert "Answer: https://example.com/" in whole.message.content and not whole.message.tool_calls
    parts = [p async for p in await client.chat(model="search-llama", stream=True,
                                                messages=[{"role": "user", "content": "chess olympiad"}])]
    assert "Answer: https://example.com/" in "".join(p.message.content for p in parts)
    assert not any(p.message.tool_calls for p in parts) and parts[-1].done


async def test_sync_client_in_a_thread(lg_host):
    """The blocking `ollama.Client` (what most scripts use) works the same, from another thread."""
    import asyncio

    def use() -> tuple[list[str], str]:
        client = ollama_sdk.Client(host=lg_host)
        names = [m.model for m in client.list().models]
        return names, client.chat(model="gpt:latest", messages=HI).message.content

    names, answer = await asyncio.to_thread(use)
    assert "gpt:latest" in names and answer == "Hello from gpt-4o"
