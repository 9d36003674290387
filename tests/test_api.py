"""The HTTP surface around the chat path: health, models, headers, keys, the access log."""

from __future__ import annotations

import io
import json

import structlog

from litegate import log
from tests.conftest import ollama_config

USER = [{"role": "user", "content": "my secret prompt"}]


async def test_health_needs_no_key_and_no_backend(gateway):
    """GET /health answers without a key and without calling any backend."""
    client = await gateway({"models": [{"name": "m", "provider": "ollama", "model": "x", "api_base": "http://127.0.0.1:9"}],
                            "auth": {"keys": [{"name": "k", "key_env": "K"}]}}, env={"K": "secret"})
    resp = await client.get("/health")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    assert resp.headers["x-request-id"]


async def test_response_headers(ollama, gateway):
    """Chat responses carry x-request-id, x-litegate-model (deployment), x-litegate-route and x-litegate-overhead-ms."""
    client = await gateway(ollama_config(ollama))
    for stream in (False, True):
        resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER, "stream": stream},
                                 headers={"x-request-id": "req-from-client"})
        await resp.read()
        assert resp.headers["x-request-id"] == "req-from-client"
        assert resp.headers["x-litegate-model"].startswith("ollama/llama3.1:8b@")
        assert resp.headers["x-litegate-route"] == "direct"
        assert "x-litegate-overhead-ms" in resp.headers


async def test_overhead_header_leaves_out_the_backends_time(loading_ollama, gateway):
    """x-litegate-overhead-ms counts litegate's own time only: a backend that takes 300 ms before its
    first byte does not show up in it, streaming or not."""
    ollama = await loading_ollama(0.3)
    client = await gateway(ollama_config(ollama))
    for stream in (False, True):
        resp = await client.post("/v1/chat/completions", json={"model": "loading", "messages": USER, "stream": stream})
        await resp.read()
        assert 0 <= float(resp.headers["x-litegate-overhead-ms"]) < 300


async def test_paths_without_v1_prefix(ollama, gateway):
    """The same endpoints answer without the /v1 prefix."""
    client = await gateway(ollama_config(ollama))
    assert (await client.get("/models")).status == 200
    assert (await client.post("/chat/completions", json={"model": "llama", "messages": USER})).status == 200


KEYS = {"auth": {"keys": [{"name": "laptop", "key_env": "KEY_LAPTOP", "models": ["llama"]},
                          {"name": "admin", "key_env": "KEY_ADMIN", "admin": True}]}}
ENV = {"KEY_LAPTOP": "sk-laptop-123", "KEY_ADMIN": "sk-admin-456"}


async def test_keys_required_when_configured(ollama, gateway):
    """With keys configured: none or a wrong key is a 401 that does not hint at which keys exist."""
    client = await gateway(ollama_config(ollama, **KEYS), env=ENV)
    for headers in ({}, {"authorization": "Bearer sk-wrong"}, {"authorization": "Basic abc"}):
        resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER}, headers=headers)
        assert resp.status == 401
        err = (await resp.json())["error"]
        assert "laptop" not in err["message"] and "sk-" not in err["message"]
        assert err["code"] == "invalid_api_key"


async def test_key_model_access(ollama, gateway):
    """A key may call only its models (403 naming the model); models list shows only those."""
    client = await gateway(ollama_config(ollama, **KEYS), env=ENV)
    auth = {"authorization": "Bearer sk-laptop-123"}
    assert (await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER}, headers=auth)).status == 200
    resp = await client.post("/v1/chat/completions", json={"model": "thinking", "messages": USER}, headers=auth)
    assert resp.status == 403 and "thinking" in (await resp.json())["error"]["message"]
    ids = [m["id"] for m in (await (await client.get("/v1/models", headers=auth)).json())["data"]]
    assert ids == ["llama"]
    admin = {"authorization": "Bearer sk-admin-456"}
    assert (await client.post("/v1/chat/completions", json={"model": "thinking", "messages": USER}, headers=admin)).status == 200


async def test_access_log_has_no_prompt_completion_or_key(ollama, gateway):
    """One canonical log line per request with model, deployment, tokens and timings, and no prompt, completion or key."""
    out = io.StringIO()
    log.configure("info", "json", stream=out)
    try:
        client = await gateway(ollama_config(ollama, **KEYS), env=ENV)
        await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER},
                          headers={"authorization": "Bearer sk-laptop-123"})
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) == 1
    entry = requests[0]
    assert entry["model"] == "llama" and entry["status"] == 200 and entry["key"] == "laptop"
    assert entry["prompt_tokens"] == 3 and entry["completion_tokens"] == 3
    assert entry["deployment"].startswith("ollama/") and entry["duration_ms"] >= 0
    text = out.getvalue()
    assert "secret prompt" not in text and "Hello from" not in text and "sk-laptop-123" not in text


async def test_client_request_id_kept_only_when_tame(ollama, gateway):
    """A client's x-request-id is echoed when it is a short plain token; anything else is replaced."""
    client = await gateway(ollama_config(ollama))
    ok = await client.get("/v1/models", headers={"x-request-id": "abc-123.x"})
    assert ok.headers["x-request-id"] == "abc-123.x"
    odd = await client.get("/v1/models", headers={"x-request-id": "x" * 500})
    assert odd.headers["x-request-id"].startswith("req_") and len(odd.headers["x-request-id"]) < 64
