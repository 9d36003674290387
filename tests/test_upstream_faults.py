"""The upstream-fault matrix: every provider x every way a backend fails, streamed and whole.

A fault before the first byte is a whole error in the OpenAI shape with the right status (502, 504,
429) and a message naming the deployment; a fault after it is the face's error event as the last
frame, no `[DONE]`, and the end of the stream. Never a 500, never a hang (tests/fakes/faulty.py).
"""

from __future__ import annotations

import pytest

from tests.conftest import base, sse_events
from tests.fakes import faulty

PROVIDERS = ("ollama", "openai", "anthropic", "gemini")
# fault -> (status of a whole reply, status of a stream that failed before its first byte, or None
# when the stream fails after it: 200 and an error event)
EXPECT = {
    "down": (502, 502), "timeout": (504, 504), "hang": (504, None), "early-eof": (502, None),
    "garbage": (502, 502), "wrong-shape": (502, None), "html": (502, 502), "rate-limited": (429, 429),
    "server-error": (502, 502), "huge": (502, 502),
}
ENV = {"K": "sk-test"}


@pytest.fixture
async def faulty_backend(aiohttp_server):
    server = await aiohttp_server(faulty.make_app())
    yield server
    server.app[faulty.GATE].set()  # let the hanging handlers go


def api_base(provider: str, root: str) -> str:
    return {"openai": root + "/v1", "gemini": root + "/v1beta"}.get(provider, root)


def fault_config(server, provider: str) -> dict:
    root = base(server)
    models = []
    for fault in EXPECT:
        where = "http://127.0.0.1:9" if fault == "down" else api_base(provider, root)  # port 9: nothing listens
        d = {"name": fault, "provider": provider, "model": fault if fault != "down" else "ok", "api_base": where,
             "timeouts": {"connect_s": 2, "first_token_s": 0.2, "total_s": 10}}
        if provider in ("anthropic", "gemini", "openai"):
            d["api_key_env"] = "K"
        models.append(d)
    models.append({**models[0], "name": "ok", "model": "ok", "api_base": api_base(provider, root)})
    return {"models": models, "router": {"num_retries": 0, "ollama_poll_s": 0},
            "server": {"max_upstream_reply_mb": 1}, "usage": {"enabled": False}}


async def deployment_id(client, name: str) -> str:
    cfg = client.server.app[faulty_app_holder()].current
    return next(d.id for d in cfg.models if d.name == name)


def faulty_app_holder():
    from litegate.http.appkeys import HOLDER
    return HOLDER


def chat(model: str, stream: bool) -> dict:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_healthy_backend_answers_through_every_provider(provider, faulty_backend, gateway):
    """The control case: the fake's valid replies are read by each provider, whole and streamed."""
    client = await gateway(fault_config(faulty_backend, provider), env=ENV)
    whole = await client.post("/v1/chat/completions", json=chat("ok", False))
    assert whole.status == 200, await whole.text()
    assert (await whole.json())["choices"][0]["message"]["content"] == "Hello"
    streamed = await client.post("/v1/chat/completions", json=chat("ok", True))
    events, _ = sse_events(await streamed.read())
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"])
    assert streamed.status == 200 and text == "Hello" and events[-1] == "[DONE]"


@pytest.mark.parametrize("fault", list(EXPECT))
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_failing_backend_is_a_clear_error_never_a_500(provider, fault, faulty_backend, gateway):
    """Whole reply: the fault's status in the OpenAI error shape, naming the deployment. Stream: the same
    before the first byte; after it, 200 whose last event is the error and no [DONE]."""
    client = await gateway(fault_config(faulty_backend, provider), env=ENV)
    label = await deployment_id(client, fault)
    whole_status, stream_status = EXPECT[fault]

    resp = await client.post("/v1/chat/completions", json=chat(fault, False))
    body = await resp.json()
    assert resp.status == whole_status, body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert label in body["error"]["message"], body

    resp = await client.post("/v1/chat/completions", json=chat(fault, True))
    raw = await resp.read()
    if stream_status is not None:
        assert resp.status == stream_status, raw
        assert label in (await resp.json())["error"]["message"]
        return
    assert resp.status == 200, raw
    events, _ = sse_events(raw)
    assert "Hel" in raw.decode()  # the answer had begun
    assert "[DONE]" not in events
    assert set(events[-1]) == {"error"} and label in events[-1]["error"]["message"], events[-1]
