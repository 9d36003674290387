"""Bad input and failing backends: always the OpenAI error JSON with the right status, never a 500 or a hang."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import ollama_config, sse_events
from tests.fakes import ollama as fake

USER = [{"role": "user", "content": "hello"}]


async def error_of(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.headers["content-type"].startswith("application/json")
    body = await resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_invalid_json_is_400(ollama, gateway, openai_schema):
    """A body that is not JSON gets a 400 in the OpenAI envelope."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", data=b"{nope", headers={"content-type": "application/json"})
    err = await error_of(resp, 400)
    openai_schema("ErrorResponse", {"error": err})
    assert "JSON" in err["message"]


async def test_missing_field_is_400_naming_it(ollama, gateway):
    """A missing required field is a 400 whose param names it."""
    client = await gateway(ollama_config(ollama))
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "llama"}), 400)
    assert err["param"] == "messages" and "messages" in err["message"]


async def test_wrong_type_is_400_naming_path(ollama, gateway):
    """A wrongly typed field is a 400 naming its JSON path."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": [{"role": "user", "content": 5}]})
    err = await error_of(resp, 400)
    assert err["param"] == "messages[0].content"


async def test_empty_messages_is_400(ollama, gateway):
    """An empty messages array is a 400 naming messages."""
    client = await gateway(ollama_config(ollama))
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "llama", "messages": []}), 400)
    assert err["param"] == "messages"


async def test_unknown_model_is_404_naming_it(ollama, gateway):
    """An unknown model is a 404 model_not_found naming the model."""
    client = await gateway(ollama_config(ollama))
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": USER}), 404)
    assert "gpt-9" in err["message"] and err["code"] == "model_not_found" and err["param"] == "model"


async def test_oversized_body_is_413(ollama, gateway):
    """A body over server.max_body_mb is a 413 in the OpenAI envelope."""
    client = await gateway(ollama_config(ollama, server={"max_body_mb": 0.01}))
    big = "x" * 20_000
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "llama", "messages": [
        {"role": "user", "content": big}]}), 413)
    assert err["code"] == "request_too_large"


async def test_unknown_route_and_method_are_json(ollama, gateway):
    """Unknown paths are a JSON 404 and wrong methods a JSON 405, never an HTML page."""
    client = await gateway(ollama_config(ollama))
    await error_of(await client.get("/v1/nothing-here"), 404)
    await error_of(await client.get("/v1/chat/completions"), 405)


async def test_backend_model_missing_is_404_naming_deployment(ollama, gateway):
    """Ollama's model-not-found is passed on as 404 with its message and the deployment named."""
    client = await gateway(ollama_config(ollama))
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "missing", "messages": USER}), 404)
    assert "try pulling it first" in err["message"] and "ollama/missing:latest" in err["message"]


async def test_backend_capability_error_is_400(ollama, gateway):
    """Ollama's "does not support tools" is the client's 400, passed on with its message."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "no-tools", "messages": USER, "tools": [
        {"type": "function", "function": {"name": "f"}}]})
    err = await error_of(resp, 400)
    assert "does not support tools" in err["message"]


@pytest.mark.parametrize("scenario,status", [("crash", 502), ("busy", 503)])
async def test_backend_server_errors(ollama, gateway, scenario, status):
    """A crashed runner is a 502, a full queue a 503, each naming the deployment."""
    client = await gateway(ollama_config(ollama))
    err = await error_of(await client.post("/v1/chat/completions", json={"model": scenario, "messages": USER}), status)
    assert f"ollama/{scenario}:latest" in err["message"]


async def test_backend_down_is_502(gateway):
    """A backend that refuses connections is a 502 naming the deployment, streaming or not."""
    port = free_port()
    client = await gateway({"models": [{"name": "m", "provider": "ollama", "model": "x",
                                        "api_base": f"http://127.0.0.1:{port}"}], "router": {"num_retries": 0}})
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "m", "messages": USER}), 502)
    assert f"127.0.0.1:{port}" in err["message"] and err["code"] == "backend_unavailable"
    resp = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True})
    await error_of(resp, 502)


async def test_backend_timeout_is_504(ollama, gateway):
    """A backend that never answers within first_token_s is a 504."""
    doc = ollama_config(ollama)
    doc["models"].append({"name": "hang", "provider": "ollama", "model": "slow", "api_base": doc["models"][0]["api_base"],
                          "timeouts": {"first_token_s": 0.2}})
    client = await gateway(doc)
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "hang", "messages": USER}), 504)
    assert err["type"] == "timeout_error"


@pytest.mark.parametrize("scenario", ["error-midstream", "truncated"])
async def test_stream_failing_after_first_byte_ends_with_sse_error(ollama, gateway, scenario):
    """A stream that fails after its first chunk ends with an SSE error event and no [DONE]."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": scenario, "messages": USER, "stream": True})
    assert resp.status == 200
    events, _ = sse_events(await resp.read())
    assert "[DONE]" not in events
    assert events[0]["choices"][0]["delta"]["content"]
    err = events[-1]["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == "stream_interrupted"


async def test_fallback_after_failure_before_first_byte(ollama, gateway):
    """When a model's deployment fails before any byte, its configured fallback answers and the route says so."""
    doc = ollama_config(ollama)
    doc["router"].update({"num_retries": 0, "fallbacks": {"crash": ["llama"]}})
    client = await gateway(doc)
    for stream in (False, True):
        resp = await client.post("/v1/chat/completions", json={"model": "crash", "messages": USER, "stream": stream})
        assert resp.status == 200
        assert resp.headers["x-litegate-route"] == "fallback:llama"
        assert resp.headers["x-litegate-model"].startswith("ollama/llama3.1:8b")
        assert b"Hello from llama3.1:8b" in await resp.read() or stream


async def test_all_targets_failing_lists_tried(ollama, gateway):
    """When every target fails, the client gets the last error with the deployments tried."""
    doc = ollama_config(ollama)
    doc["router"].update({"num_retries": 1, "retry_backoff_s": 0, "fallbacks": {"crash": ["busy"]}})
    client = await gateway(doc)
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "crash", "messages": USER}), 503)
    assert "tried:" in err["message"] and "crash" in err["message"] and "busy" in err["message"]
    assert len(ollama.app[fake.REQUESTS]) == 4


async def test_client_error_is_not_retried(ollama, gateway):
    """A 400 from the backend is the client's fault: no retry, no fallback."""
    doc = ollama_config(ollama)
    doc["router"].update({"num_retries": 2, "fallbacks": {"no-tools": ["llama"]}})
    client = await gateway(doc)
    resp = await client.post("/v1/chat/completions", json={"model": "no-tools", "messages": USER, "tools": [
        {"type": "function", "function": {"name": "f"}}]})
    assert resp.status == 400
    assert len(ollama.app[fake.REQUESTS]) == 1
