"""POST /v1/responses end to end: the official openai SDK (client.responses.*, its stream helper)
and the openai-agents Runner against a running litegate, on each provider's fake backend.

Covers a Codex-style tool loop (store: false, the whole history replayed each turn, reasoning
carried back in encrypted_content), stored responses (GET / DELETE / previous_response_id, per
key), errors before and after the first byte, the length cut as Codex takes it, native
pass-through to a backend that serves the Responses API, and litegate's own web search."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from litegate.config import ConfigError, ConfigHolder, from_dict
from litegate.http.app import create_app
from tests.conftest import base, ollama_config
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes import ollama as fake_ollama
from tests.fakes import openai_compat as fake_openai
from tests.fakes import openai_responses as fake_native
from tests.fakes import serper as fake_serper
from tests.surfaces.test_responses_stream import EVENT_SCHEMAS

ENV = {"ANTHROPIC_API_KEY": "test-anthropic-key", "GEMINI_API_KEY": "test-gemini-key", "BACKEND_KEY": "sk-backend",
       "NATIVE_KEY": "sk-native", "SERPER_KEY": "serper-key", "KEY_ALICE": "sk-alice", "KEY_BOB": "sk-bob"}
SHELL = {"type": "function", "name": "shell", "description": "Run a command", "strict": False,
         "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                        "required": ["command"]}}
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIME = {"type": "function", "name": "get_time", "description": "Current time"}
TEXT_MODELS = [("llama", "Hello from llama3.1:8b"), ("vllm", "Hello from qwen3-8b"),
               ("claude", "Hello from echo"), ("gemini", "Hello from echo")]


@pytest.fixture
async def servers(aiohttp_server, ollama, oai):
    return {"ollama": ollama, "openai": oai,
            "anthropic": await aiohttp_server(fake_anthropic.make_app(api_key="test-anthropic-key")),
            "gemini": await aiohttp_server(fake_gemini.make_app(api_key="test-gemini-key")),
            "native": await aiohttp_server(fake_native.make_app(api_key="sk-native")),
            "serper": await aiohttp_server(fake_serper.make_app(api_key="serper-key"))}


def config(servers: dict, tmp_path, **extra: Any) -> dict:
    doc = ollama_config(servers["ollama"])
    o = base(servers["ollama"])
    doc["models"] += [{"name": n, "provider": "ollama", "model": f"{n}:latest", "api_base": o} for n in ("coder", "searcher")]
    doc["models"] += [{"name": name, "provider": "openai", "model": model, "api_base": base(servers["openai"], "/v1"),
                       "api_key_env": "BACKEND_KEY"} for name, model in (("vllm", "qwen3-8b"), ("vllm-tools", "tools-split"))]
    for name, model in (("claude", "echo"), ("claude-tools", "tools"), ("claude-thinking-tools", "thinking-tools")):
        doc["models"].append({"name": name, "provider": "anthropic", "model": model, "api_base": base(servers["anthropic"]),
                              "api_key_env": "ANTHROPIC_API_KEY"})
    for name, model in (("gemini", "echo"), ("gemini-thinking-tools", "thinking-tools")):
        doc["models"].append({"name": name, "provider": "gemini", "model": model,
                              "api_base": base(servers["gemini"], "/v1beta"), "api_key_env": "GEMINI_API_KEY"})
    for name, model in (("native", "gpt-native"), ("native-bad", "bad-request"), ("native-fail", "midstream-fail")):
        doc["models"].append({"name": name, "provider": "openai", "model": model, "responses_api": True,
                              "api_base": base(servers["native"], "/v1"), "api_key_env": "NATIVE_KEY"})
    doc["web_search"] = {"provider": "serper", "api_base": base(servers["serper"]), "api_key_env": "SERPER_KEY"}
    doc["usage"] = {"path": str(tmp_path / "usage")}
    doc.update(extra)
    return doc


@pytest.fixture
async def lg(servers, aiohttp_server, tmp_path):
    """A running litegate on every fake, and an SDK client for it."""
    server = await aiohttp_server(create_app(ConfigHolder("test", from_dict(config(servers, tmp_path), env=ENV))))
    client = AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="unused", max_retries=0)
    client.server = server  # type: ignore[attr-defined]
    yield client
    await client.close()


def ollama_chats(servers) -> list[dict]:
    return [r["json"] for r in servers["ollama"].app[fake_ollama.REQUESTS] if r["path"] == "/api/chat"]


# ---------------------------------------------------------------- text on every provider
@pytest.mark.parametrize("model,expected", TEXT_MODELS)
async def test_non_stream_text_on_every_provider(lg, model, expected, openai_schema):
    """client.responses.create gives a typed, spec-valid Response with the answer and integer usage."""
    r = await lg.responses.create(model=model, input="hi", instructions="Be brief.")
    assert r.output_text == expected and r.status == "completed" and r.id.startswith("resp_")
    assert r.model == model and r.instructions == "Be brief."
    assert isinstance(r.usage.input_tokens, int) and r.usage.output_tokens == 3
    assert r.usage.total_tokens == r.usage.input_tokens + 3
    openai_schema("Response", r.model_dump(mode="json", exclude_unset=True))


@pytest.mark.parametrize("model,expected", TEXT_MODELS)
async def test_stream_helper_on_every_provider(lg, model, expected):
    """The SDK's stream helper (which checks ordering and output_index) assembles our events into the answer."""
    deltas = []
    async with lg.responses.stream(model=model, input="hi") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == expected
    assert final.status == "completed" and final.usage.output_tokens == 3


async def test_raw_stream_events_are_spec_valid(lg, openai_schema):
    """stream=True: created first, one terminal event last, sequence numbers 0..n-1, each event per its schema."""
    stream = await lg.responses.create(model="thinking", input="2+2?", stream=True, reasoning={"effort": "low"})
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "response.reasoning_summary_text.delta" in kinds and "response.output_text.delta" in kinds
    for e in events:
        openai_schema(EVENT_SCHEMAS[e.type], e.model_dump(mode="json", exclude_unset=True))
    final = events[-1].response
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "Let me think" and final.output_text == "The answer is 4."


# ---------------------------------------------------------------- the Codex loop
async def codex_turn(lg, model: str, history: list, reasoning: bool = True) -> tuple[list, Any]:
    """One turn as Codex takes it: stream, rebuild history from output_item.done items only, without ids.
    Codex sends reasoning settings and include only for model families it knows reason."""
    settings = ({"reasoning": {"effort": "medium", "summary": "auto"}, "include": ["reasoning.encrypted_content"]}
                if reasoning else {"reasoning": None, "include": []})
    stream = await lg.responses.create(
        model=model, input=history, tools=[SHELL, WEATHER, TIME], tool_choice="auto", parallel_tool_calls=True,
        store=False, stream=True, prompt_cache_key="thread-1", instructions="You are Codex.", **settings,
        extra_headers={"originator": "codex_cli_rs", "user-agent": "codex_cli_rs/0.50.0"})
    items, completed = [], None
    async for event in stream:
        if event.type == "response.output_item.done":
            items.append(event.item.model_dump(mode="json", exclude_none=True, exclude={"id", "status"}))
        elif event.type == "response.completed":
            completed = event.response
    assert completed is not None and isinstance(completed.id, str)
    return items, completed


@pytest.mark.parametrize("model,answer", [("coder", "Files: README.md"), ("claude-thinking-tools", "Got 1 tool results"),
                                          ("gemini-thinking-tools", "Got 2 tool results")])
async def test_codex_style_tool_loop(lg, servers, model, answer):
    """function_call -> function_call_output -> answer, replayed statelessly (store: false) as Codex does; the
    reasoning comes back through encrypted_content, so the backend sees its own thinking with its call."""
    history: list = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files"}]}]
    items, first = await codex_turn(lg, model, history)
    kinds = [i["type"] for i in items]
    assert kinds[0] == "reasoning" and items[0]["encrypted_content"].startswith("lg1.")
    calls = [i for i in items if i["type"] == "function_call"]
    assert calls and all(json.loads(c["arguments"]) is not None for c in calls)
    history += items + [{"type": "function_call_output", "call_id": c["call_id"],
                         "output": "README.md" if c["name"] == "shell" else "sunny"} for c in calls]
    items, second = await codex_turn(lg, model, history)
    assert second.output_text == answer and second.status == "completed"
    if model == "coder":  # Ollama got its own thinking back on the turn that made the call
        replayed = ollama_chats(servers)[-1]["messages"]
        turn = next(m for m in replayed if m["role"] == "assistant")
        assert turn["thinking"] == "I should list the files."
        assert turn["tool_calls"][0]["function"] == {"name": "shell", "arguments": {"command": ["ls"]}}
        assert (replayed[-1]["role"], replayed[-1]["content"]) == ("tool", "README.md")


async def test_codex_without_reasoning_settings_keeps_the_thoughts_too(lg, servers):
    """Codex on a model family it does not think reasons sends reasoning: null and include: []: the reasoning
    items it replays (no encrypted_content) still give the local model its own thinking back."""
    history: list = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files"}]}]
    items, _ = await codex_turn(lg, "coder", history, reasoning=False)
    assert items[0]["type"] == "reasoning" and "encrypted_content" not in items[0]
    calls = [i for i in items if i["type"] == "function_call"]
    history += items + [{"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "README.md"}]
    _, second = await codex_turn(lg, "coder", history, reasoning=False)
    assert second.output_text == "Files: README.md"
    turn = next(m for m in ollama_chats(servers)[-1]["messages"] if m["role"] == "assistant")
    assert turn["thinking"] == "I should list the files."


@pytest.mark.parametrize("model,answer", [("claude-tools", "Got 2 tool results"), ("coder", "Files: README.md")])
async def test_agents_sdk_runner_on_responses_model(lg, model, answer):
    """An openai-agents Runner on OpenAIResponsesModel runs its tool loop through litegate (store left unset),
    with Runner.run and Runner.run_streamed, on Anthropic and on a local reasoning model."""
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    seen: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        seen.append(city)
        return "4 C"

    @function_tool
    def get_time() -> str:
        """Current time."""
        return "noon"

    @function_tool
    def shell(command: list[str]) -> str:
        """Run a command."""
        seen.append(" ".join(command))
        return "README.md"

    agent = Agent(name="helper", instructions="Answer briefly.", tools=[get_weather, get_time, shell],
                  model=OpenAIResponsesModel(model=model, openai_client=lg))
    result = await Runner.run(agent, "Weather in Oslo? Or list the files.")
    assert seen == (["Oslo"] if model == "claude-tools" else ["ls"]) and result.final_output == answer
    streamed = Runner.run_streamed(agent, "Weather in Oslo? Or list the files.")
    async for _ in streamed.stream_events():
        pass
    assert streamed.final_output == answer


async def test_parallel_call_fragments_from_an_openai_compatible_server(lg):
    """Interleaved argument fragments of two parallel calls (vLLM style) become two whole function_call items,
    each with valid JSON arguments ({} for none), streamed and not."""
    whole = await lg.responses.create(model="vllm-tools", input="Weather and time?", tools=[WEATHER, TIME])
    async with lg.responses.stream(model="vllm-tools", input="Weather and time?", tools=[WEATHER, TIME]) as s:
        streamed = await s.get_final_response()
    for r in (whole, streamed):
        calls = [(o.name, json.loads(o.arguments)) for o in r.output if o.type == "function_call"]
        assert calls == [("get_weather", {"city": "Oslo"}), ("get_time", {})]
        assert all(o.call_id for o in r.output if o.type == "function_call")


async def test_an_image_reaches_the_model(lg, servers):
    """An input_image (data URI) goes to Ollama as its base64 image beside the text."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    await lg.responses.create(model="llama", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{png}"}]}])
    sent = ollama_chats(servers)[-1]["messages"][-1]
    assert sent["content"] == "What is this?" and sent["images"] == [png]


# ---------------------------------------------------------------- stored responses
async def test_stored_response_get_continue_delete(lg, servers):
    """store (the default) keeps the answer: GET returns it, previous_response_id continues it (the backend gets
    the earlier turns), DELETE removes it."""
    first = await lg.responses.create(model="llama", input="Hi there")
    got = await lg.responses.retrieve(first.id)
    assert got.id == first.id and got.output_text == first.output_text == "Hello from llama3.1:8b"
    second = await lg.responses.create(model="llama", input="And again?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = [(m["role"], m["content"]) for m in ollama_chats(servers)[-1]["messages"]]
    assert sent == [("user", "Hi there"), ("assistant", "Hello from llama3.1:8b"), ("user", "And again?")]
    await lg.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await lg.responses.retrieve(first.id)


async def test_store_false_is_not_kept(lg):
    """store: false answers but keeps nothing (Codex)."""
    r = await lg.responses.create(model="llama", input="Hi", store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        await lg.responses.retrieve(r.id)


async def test_a_stream_is_stored_before_it_ends(lg):
    """A streamed answer is already stored when response.completed arrives: the next turn can chain at once."""
    async with lg.responses.stream(model="llama", input="Hi") as stream:
        final = await stream.get_final_response()
    follow = await lg.responses.create(model="llama", input="More", previous_response_id=final.id)
    assert follow.status == "completed"


async def test_a_key_reads_only_its_own(servers, aiohttp_server, tmp_path):
    """Another key neither reads, continues nor deletes a response it did not make."""
    doc = config(servers, tmp_path, auth={"keys": [{"name": "alice", "key_env": "KEY_ALICE"},
                                                   {"name": "bob", "key_env": "KEY_BOB"}]})
    server = await aiohttp_server(create_app(ConfigHolder("t", from_dict(doc, env=ENV))))
    url = str(server.make_url("/v1"))
    alice = AsyncOpenAI(base_url=url, api_key="sk-alice", max_retries=0)
    bob = AsyncOpenAI(base_url=url, api_key="sk-bob", max_retries=0)
    try:
        r = await alice.responses.create(model="llama", input="secret")
        with pytest.raises(openai.NotFoundError):
            await bob.responses.retrieve(r.id)
        with pytest.raises(openai.NotFoundError) as e:
            await bob.responses.create(model="llama", input="x", previous_response_id=r.id)
        assert e.value.body["param"] == "previous_response_id"
        with pytest.raises(openai.NotFoundError):
            await bob.responses.delete(r.id)
        assert (await alice.responses.retrieve(r.id)).id == r.id
    finally:
        await alice.close()
        await bob.close()


# ---------------------------------------------------------------- errors and endings
ERRORS = [
    ("an unknown model", {"model": "no-such-model", "input": "x"}, openai.NotFoundError, "model_not_found", None),
    ("a bad item", {"model": "llama", "input": [{"type": "function_call", "name": "f"}]}, openai.BadRequestError,
     None, "input[0].call_id"),
    ("an unknown previous response", {"model": "llama", "input": "x", "previous_response_id": "resp_nope"},
     openai.NotFoundError, None, "previous_response_id"),
    ("a backend refusing the model", {"model": "missing", "input": "x"}, openai.NotFoundError, "model_not_found", None),
]


@pytest.mark.parametrize("body,exc,code,param", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
async def test_errors_before_the_first_byte(lg, body, exc, code, param):
    """Before anything is streamed, a failure is OpenAI's error JSON with the right status (never a traceback)."""
    for stream in (False, True):
        with pytest.raises(exc) as e:
            r = await lg.responses.create(**body, stream=stream)
            if stream:
                async for _ in r:
                    pass
        err = e.value.body
        assert set(err) >= {"message", "type", "param", "code"}
        if code:
            assert err["code"] == code
        if param:
            assert err["param"] == param


async def test_backend_failure_mid_stream_is_response_failed(lg):
    """After the first byte a backend failure ends the stream with response.failed (code server_error)."""
    stream = await lg.responses.create(model="error-midstream", input="x", stream=True)
    events = [e async for e in stream]
    assert events[0].type == "response.created" and events[-1].type == "response.failed"
    assert events[-1].response.status == "failed" and events[-1].response.error.code == "server_error"


async def test_length_cut(lg):
    """A length cut is response.incomplete (max_output_tokens) for SDK clients, and response.completed with status
    incomplete for Codex, which would otherwise retry the turn."""
    stream = await lg.responses.create(model="length", input="x", stream=True, max_output_tokens=3)
    last = [e async for e in stream][-1]
    assert last.type == "response.incomplete" and last.response.incomplete_details.reason == "max_output_tokens"
    stream = await lg.responses.create(model="length", input="x", stream=True, extra_headers={"originator": "codex_cli_rs"})
    last = [e async for e in stream][-1]
    assert last.type == "response.completed" and last.response.status == "incomplete"
    whole = await lg.responses.create(model="length", input="x")
    assert whole.status == "incomplete" and whole.output_text == "Hello from length:latest"


# ---------------------------------------------------------------- native pass-through
async def test_native_pass_through(lg, servers):
    """A model whose deployments serve the Responses API gets the request as sent (model renamed), streamed and not;
    its usage is counted."""
    r = await lg.responses.create(model="native", input="hi", store=False)
    assert r.output_text == "Hello from gpt-native" and r.usage.input_tokens == 7
    async with lg.responses.stream(model="native", input="hi") as stream:
        final = await stream.get_final_response()
    assert final.output_text == "Hello from gpt-native"
    sent = servers["native"].app[fake_native.REQUESTS]
    assert [s["path"] for s in sent] == ["/v1/responses", "/v1/responses"]
    assert sent[0]["json"] == {"model": "gpt-native", "input": "hi", "store": False}
    assert sent[0]["headers"]["Authorization"] == "Bearer sk-native"


async def test_native_errors(lg):
    """A native backend's 400 is the client's 400 before the first byte; its response.failed is relayed."""
    with pytest.raises(openai.BadRequestError):
        await lg.responses.create(model="native-bad", input="x")
    stream = await lg.responses.create(model="native-fail", input="x", stream=True)
    events = [e async for e in stream]
    assert events[-1].type == "response.failed" and events[-1].response.error.message == "boom"


async def test_our_stored_id_continues_on_a_native_model(lg, servers):
    """previous_response_id of a response litegate stored is expanded into input before it goes native."""
    first = await lg.responses.create(model="llama", input="Hi")
    await lg.responses.create(model="native", input="Then?", previous_response_id=first.id)
    sent = servers["native"].app[fake_native.REQUESTS][-1]["json"]
    assert "previous_response_id" not in sent
    assert [i.get("role") for i in sent["input"]] == ["user", "assistant", "user"]


# ---------------------------------------------------------------- litegate's web search
@pytest.mark.parametrize("stream", [False, True])
async def test_hosted_web_search_for_any_model(lg, servers, stream, openai_schema):
    """A web_search tool is run by litegate: web_search_call items, url_citation annotations on the text, and no
    function call for the client to run."""
    kwargs = dict(model="searcher", input="who won the 2026 chess olympiad", tools=[{"type": "web_search"}],
                  include=["web_search_call.action.sources"])
    if stream:
        async with lg.responses.stream(**kwargs) as s:
            r = await s.get_final_response()
    else:
        r = await lg.responses.create(**kwargs)
    openai_schema("Response", r.model_dump(mode="json", exclude_unset=True))
    kinds = [o.type for o in r.output]
    assert kinds == ["message", "web_search_call", "message"]  # "Let me search.", the search, the answer
    search = r.output[1]
    assert search.status == "completed" and search.action.type == "search"
    assert search.action.query == "who won the 2026 chess olympiad" and search.action.sources
    notes = r.output[-1].content[0].annotations
    assert notes and notes[0].type == "url_citation" and notes[0].url in r.output_text
    assert servers["serper"].app[fake_serper.REQUESTS]


async def test_web_search_without_a_search_backend_is_ignored(servers, aiohttp_server, tmp_path):
    """Codex declares web_search on every turn: with no search configured the model just answers."""
    doc = config(servers, tmp_path)
    del doc["web_search"]
    server = await aiohttp_server(create_app(ConfigHolder("t", from_dict(doc, env=ENV))))
    client = AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0)
    try:
        r = await client.responses.create(model="llama", input="hi", tools=[{"type": "web_search"}])
        assert r.output_text == "Hello from llama3.1:8b"
    finally:
        await client.close()


# ---------------------------------------------------------------- accounting
async def test_requests_count_with_their_face(lg):
    """Usage, limits and metrics count /v1/responses like chat, with face="responses"."""
    await lg.responses.create(model="llama", input="hi")
    await lg.responses.create(model="native", input="hi")
    metrics = await _get(lg, "/metrics")
    assert 'face="responses"' in metrics and 'model="llama"' in metrics
    assert 'litegate_tokens_total{model="native",key="anonymous",type="prompt"} 7' in metrics


async def _get(lg, path: str) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.get(lg.server.make_url(path)) as r:
            return await r.text()


# ---------------------------------------------------------------- config
CONFIG_CASES = [
    ("responses_api on a provider that has no Responses API",
     {"models": [{"name": "m", "provider": "ollama", "model": "x", "responses_api": True}]}, "$.models[0].responses_api"),
    ("a retention of zero days", {"models": [{"name": "m", "provider": "ollama", "model": "x"}],
                                  "responses": {"retention_days": 0}}, "$.responses.retention_days"),
    ("an unknown key in the responses block", {"models": [{"name": "m", "provider": "ollama", "model": "x"}],
                                               "responses": {"keep": True}}, "$.responses"),
]


@pytest.mark.parametrize("doc,path", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_config_faults_name_their_path(doc, path):
    """The responses block and the responses_api flag are checked at load, each fault naming its JSON path."""
    with pytest.raises(ConfigError) as e:
        from_dict(doc, env={})
    assert path in [p for p, _ in e.value.problems], e.value.problems
