"""OpenAI-compatible backends: forwarded almost verbatim, output normalised like every provider."""

from __future__ import annotations

import json

import pytest

from tests.conftest import sse_events
from tests.fakes import openai_compat as fake

USER = [{"role": "user", "content": "hello there"}]
SCENARIOS = ("echo", "tools-split", "tools-no-id", "usage-in-choice-chunk", "no-finish-reason", "no-done",
             "truncated", "keepalive-comments", "bad-request", "rate-limited", "server-error", "overloaded",
             "midstream-error", "missing")


def oai_config(server, **router) -> dict:
    models = [{"name": s, "provider": "openai", "model": s, "api_base": str(server.make_url("/v1")),
               "api_key_env": "BACKEND_KEY"} for s in SCENARIOS]
    return {"models": models, "router": {"num_retries": 0, **router}}


@pytest.fixture
async def client(oai, gateway):
    return await gateway(oai_config(oai), env={"BACKEND_KEY": "sk-backend"})


def text_of(events) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in events if isinstance(c, dict) and c.get("choices"))


async def test_forwarded_with_backend_key_and_model(client, oai, openai_schema):
    """The request reaches the backend with its own key and model name; the reply carries ours."""
    resp = await client.post("/v1/chat/completions", json={"model": "echo", "messages": USER, "temperature": 0.3,
                                                           "logit_bias": {"42": 1}, "user": "u1"})
    body = await resp.json()
    openai_schema("CreateChatCompletionResponse", body)
    seen = oai.app[fake.REQUESTS][-1]
    assert seen["headers"]["Authorization"] == "Bearer sk-backend"
    assert seen["json"]["temperature"] == 0.3 and seen["json"]["logit_bias"] == {"42": 1} and seen["json"]["user"] == "u1"
    assert body["model"] == "echo" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"]["content"] == "Hello from echo"


async def test_stream_asks_backend_for_usage(client, oai):
    """Streams always ask the backend for usage (the gateway accounts for tokens), without leaking it to the client."""
    resp = await client.post("/v1/chat/completions", json={"model": "echo", "messages": USER, "stream": True})
    events, _ = sse_events(await resp.read())
    assert oai.app[fake.REQUESTS][-1]["json"]["stream_options"] == {"include_usage": True}
    assert all("usage" not in c for c in events[:-1])
    assert text_of(events) == "Hello from echo"


@pytest.mark.parametrize("scenario", ["tools-split", "tools-no-id"])
async def test_split_tool_arguments_reassemble(client, scenario, openai_schema):
    """Tool-call fragments keep their index; the first has id + name (generated when the backend gave none)."""
    resp = await client.post("/v1/chat/completions", json={"model": scenario, "messages": USER, "stream": True})
    events, _ = sse_events(await resp.read())
    chunks = events[:-1]
    for c in chunks:
        openai_schema("CreateChatCompletionStreamResponse", c)
    calls: dict[int, dict] = {}
    for c in chunks:
        for tc in c["choices"][0]["delta"].get("tool_calls", []):
            entry = calls.setdefault(tc["index"], {"id": tc.get("id"), "name": tc["function"].get("name"), "args": ""})
            if "id" in tc:
                assert entry["id"] == tc["id"] and entry["args"] == ""
            entry["args"] += tc["function"]["arguments"]
    assert sorted(calls) == [0, 1]
    assert all(c["id"] and c["id"].startswith("call") for c in calls.values())
    assert json.loads(calls[0]["args"]) == {"city": "Oslo"} and calls[1]["args"] == "{}"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_usage_on_choice_chunk_becomes_one_usage_chunk(client):
    """A backend that puts usage on its finish chunk still yields exactly one choices:[] usage chunk."""
    resp = await client.post("/v1/chat/completions", json={"model": "usage-in-choice-chunk", "messages": USER,
                                                           "stream": True, "stream_options": {"include_usage": True}})
    events, _ = sse_events(await resp.read())
    with_usage = [c for c in events[:-1] if c.get("usage")]
    assert len(with_usage) == 1 and with_usage[0]["choices"] == []
    assert with_usage[0]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("scenario", ["no-finish-reason", "no-done", "keepalive-comments"])
async def test_stream_normalised(client, scenario):
    """Missing finish_reason is synthesised, a missing [DONE] added, backend comments dropped: one clean stream."""
    resp = await client.post("/v1/chat/completions", json={"model": scenario, "messages": USER, "stream": True})
    raw = await resp.read()
    events, comments = sse_events(raw)
    assert events.count("[DONE]") == 1 and events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert comments == [] and b"ping" not in raw
    assert sum("role" in c["choices"][0]["delta"] for c in events[:-1]) == 1


@pytest.mark.parametrize("scenario", ["truncated", "midstream-error"])
async def test_broken_stream_ends_with_error_event(client, scenario):
    """A backend stream that breaks after the first chunk ends with an SSE error event and no [DONE]."""
    resp = await client.post("/v1/chat/completions", json={"model": scenario, "messages": USER, "stream": True})
    events, _ = sse_events(await resp.read())
    assert "[DONE]" not in events and "error" in events[-1]


async def test_backend_400_passed_on_with_message_and_code(client):
    """The backend's own 400 reaches the client with its message, param and code."""
    resp = await client.post("/v1/chat/completions", json={"model": "bad-request", "messages": USER})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert "maximum context length" in err["message"] and err["code"] == "context_length_exceeded"
    assert err["param"] == "messages"


async def test_rate_limit_passed_on_with_retry_after(client):
    """A backend 429 becomes a 429 with retry-after, once retries are exhausted."""
    resp = await client.post("/v1/chat/completions", json={"model": "rate-limited", "messages": USER})
    assert resp.status == 429 and resp.headers["retry-after"] == "1"
    assert (await resp.json())["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("scenario,status", [("server-error", 502), ("overloaded", 503), ("missing", 404)])
async def test_backend_errors_mapped(client, scenario, status):
    """Backend 500 -> 502, 503 -> 503, 404 -> 404, each in the OpenAI envelope."""
    resp = await client.post("/v1/chat/completions", json={"model": scenario, "messages": USER})
    assert resp.status == status
    assert set((await resp.json())["error"]) == {"message", "type", "param", "code"}


async def test_backend_key_rejected_is_502(oai, gateway):
    """A backend refusing litegate's key is a 502 (the client's key is litegate's, not the backend's)."""
    client = await gateway(oai_config(oai), env={"BACKEND_KEY": "wrong"})
    resp = await client.post("/v1/chat/completions", json={"model": "echo", "messages": USER})
    assert resp.status == 502 and (await resp.json())["error"]["code"] == "backend_auth_error"


async def test_n_passes_through_non_stream(client, oai):
    """n > 1 is forwarded to OpenAI-compatible backends (they can return several choices)."""
    await client.post("/v1/chat/completions", json={"model": "echo", "messages": USER, "n": 2})
    assert oai.app[fake.REQUESTS][-1]["json"]["n"] == 2
