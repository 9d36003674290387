"""Routing: groups and their strategies, slots and queues, cooldown, context-window and
ordered fallbacks, rule-based virtual models with a classifier, loaded-model preference."""

from __future__ import annotations

import asyncio

import pytest

from litegate.http import appkeys
from litegate.config import from_dict
from litegate.core.attempts import _backoff
from litegate.errors import RateLimited
from tests.conftest import base, sse_events
from tests.fakes import ollama as fake

USER = [{"role": "user", "content": "hello"}]
NO_POLL = {"num_retries": 0, "ollama_poll_s": 0}


@pytest.fixture
async def mac2(aiohttp_server):
    """A second Ollama, as on a second Mac."""
    return await aiohttp_server(fake.make_app())


def chats(server) -> list[dict]:
    return [r["json"] for r in server.app[fake.REQUESTS] if r["path"] == "/api/chat"]


def dep(server, model: str, name: str = "m", **extra) -> dict:
    return {"name": name, "provider": "ollama", "model": model, "api_base": base(server), **extra}


async def ask(client, model: str = "m", stream: bool = False, **body):
    resp = await client.post("/v1/chat/completions", json={"model": model, "messages": USER, "stream": stream, **body})
    await resp.read()
    return resp


async def test_weights_share_traffic(ollama, mac2, gateway):
    """Weighted groups: a deployment with a negligible weight gets (practically) nothing."""
    client = await gateway({"models": [dep(ollama, "llama3.1:8b", weight=1), dep(mac2, "llama3.1:8b", weight=1e-9)],
                            "router": NO_POLL})
    for _ in range(20):
        assert (await ask(client)).status == 200
    assert len(chats(ollama)) == 20 and chats(mac2) == []


async def test_least_busy_avoids_the_busy_deployment(ollama, mac2, gateway):
    """least_busy: while one deployment holds a long stream, the next request goes to the other."""
    client = await gateway({"models": [dep(ollama, "slow"), dep(mac2, "slow")],
                            "router": {**NO_POLL, "strategy": {"m": "least_busy"}}})
    first = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True})
    await first.content.readuntil(b"\n\n")
    second = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True})
    await second.content.readuntil(b"\n\n")
    assert len(chats(ollama)) == 1 and len(chats(mac2)) == 1
    ollama.app[fake.GATE].set()
    mac2.app[fake.GATE].set()
    await first.read()
    await second.read()


async def test_latency_prefers_the_faster_deployment(loading_ollama, mac2, gateway):
    """latency: once both are measured, requests go to the deployment with the lower p50."""
    slow = await loading_ollama(0.15)
    client = await gateway({"models": [dep(slow, "loading"), dep(mac2, "loading")],
                            "router": {**NO_POLL, "strategy": {"m": "latency"}}})
    for _ in range(8):
        assert (await ask(client)).status == 200
    assert len(chats(slow)) == 1 and len(chats(mac2)) == 7


async def test_max_parallel_queues_then_429(ollama, gateway):
    """A deployment's max_parallel queues extra requests; when the queue is full the client gets 429 + retry-after."""
    client = await gateway({"models": [dep(ollama, "slow", max_parallel=1, max_queue=1)], "router": NO_POLL})
    running = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True})
    await running.content.readuntil(b"\n\n")
    queued = asyncio.ensure_future(ask(client, stream=True))
    backends = client.server.app[appkeys.SERVICES].backends
    while not backends.report(client.server.app[appkeys.HOLDER].current)[0]["queued"]:
        await asyncio.sleep(0.005)
    refused = await ask(client)
    assert refused.status == 429 and refused.headers["retry-after"] == "1"
    assert (await refused.json())["error"]["code"] == "deployment_at_capacity"
    assert len(chats(ollama)) == 1  # the queued one has not reached Ollama yet
    ollama.app[fake.GATE].set()
    await running.read()
    assert (await queued).status == 200 and len(chats(ollama)) == 2


async def test_cooldown_after_failures_and_recovery(aiohttp_server, mac2, gateway):
    """Repeated failures cool a deployment down (skipped, others answer); after the cooldown it is tried again."""
    broken = await aiohttp_server(fake.make_app())
    client = await gateway({"models": [dep(broken, "crash", weight=1), dep(mac2, "llama3.1:8b", weight=1e-9)],
                            "router": {"num_retries": 1, "retry_backoff_s": 0, "ollama_poll_s": 0,
                                       "cooldown": {"failures": 2, "cooldown_s": 60}}})
    backends = client.server.app[appkeys.SERVICES].backends
    now = [1000.0]
    backends.clock = lambda: now[0]
    for _ in range(2):
        resp = await ask(client)
        assert resp.status == 200 and resp.headers["x-litegate-route"] == "direct+retry"
    assert len(chats(broken)) == 2
    report = (await (await client.get("/health/backends")).json())["deployments"]
    assert report[0]["state"] == "cooling_down" and report[0]["cooling_until"] is not None
    for _ in range(3):
        resp = await ask(client)
        assert resp.status == 200 and resp.headers["x-litegate-route"] == "direct"
    assert len(chats(broken)) == 2  # skipped while cooling down
    now[0] += 61
    await ask(client)
    assert len(chats(broken)) == 3  # tried again once the cooldown is over


async def test_context_window_fallback(ollama, mac2, gateway):
    """A prompt longer than a deployment's context_window goes to a fallback with room; short ones stay."""
    client = await gateway({"models": [dep(ollama, "llama3.1:8b", name="small", context_window=50),
                                       dep(mac2, "llama3.1:8b", name="big", context_window=100_000)],
                            "router": {**NO_POLL, "fallbacks": {"small": ["big"]}}})
    assert (await ask(client, "small")).headers["x-litegate-route"] == "direct"
    long = [{"role": "user", "content": "word " * 400}]
    resp = await client.post("/v1/chat/completions", json={"model": "small", "messages": long})
    assert resp.status == 200 and resp.headers["x-litegate-route"] == "context:big"
    assert len(chats(ollama)) == 1 and len(chats(mac2)) == 1
    resp = await client.post("/v1/chat/completions", json={"model": "big", "messages": [
        {"role": "user", "content": "word " * 500_000}]})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "context_length_exceeded"


async def test_backend_rejecting_long_prompt_falls_back(oai, ollama, gateway):
    """A backend's own context_length_exceeded moves on to the fallback instead of failing the request."""
    client = await gateway({"models": [
        {"name": "vllm", "provider": "openai", "model": "bad-request", "api_base": str(oai.make_url("/v1")),
         "api_key_env": "K"},
        dep(ollama, "llama3.1:8b", name="big")], "router": {**NO_POLL, "fallbacks": {"vllm": ["big"]}}},
        env={"K": "sk-backend"})
    resp = await ask(client, "vllm")
    assert resp.status == 200 and resp.headers["x-litegate-route"] == "fallback:big"


async def test_no_fallback_after_first_byte(ollama, gateway):
    """Once a stream has sent data, a failure is an SSE error: no fallback is tried."""
    client = await gateway({"models": [dep(ollama, "error-midstream", name="a"), dep(ollama, "llama3.1:8b", name="b")],
                            "router": {**NO_POLL, "fallbacks": {"a": ["b"]}}})
    resp = await client.post("/v1/chat/completions", json={"model": "a", "messages": USER, "stream": True})
    events, _ = sse_events(await resp.read())
    assert "error" in events[-1]
    assert [r["model"] for r in chats(ollama)] == ["error-midstream"]


def test_backoff_honours_retry_after():
    """Backoff doubles per retry, is at least the backend's retry-after, and is capped."""
    cfg = from_dict({"models": [{"name": "m", "provider": "ollama", "model": "x"}],
                     "router": {"retry_backoff_s": 0.5}}, env={})
    assert _backoff(cfg, 1, RateLimited("x")) == 0.5
    assert _backoff(cfg, 2, RateLimited("x")) == 1.0
    assert _backoff(cfg, 1, RateLimited("x", retry_after=3)) == 3
    assert _backoff(cfg, 1, RateLimited("x", retry_after=600)) == 10.0


async def test_prefers_loaded_model(ollama, mac2, gateway):
    """An Ollama deployment whose model is loaded (/api/ps) is preferred over one that needs a cold load."""
    client = await gateway({"models": [dep(ollama, "qwen3:8b", weight=1), dep(mac2, "llama3.1:8b", weight=1e-9)],
                            "router": NO_POLL})
    services = client.server.app[appkeys.SERVICES]
    await services.backends.poll_loaded(services.session, client.server.app[appkeys.HOLDER].current)
    for _ in range(5):
        await ask(client)
    assert chats(ollama) == [] and len(chats(mac2)) == 5
    report = await (await client.get("/health/backends")).json()
    assert [d["loaded"] for d in report["deployments"]] == [False, True]
    assert report["loaded_models"][base(mac2)]["models"][0]["name"] == "llama3.1:8b"


AUTO = {
    "rules": [
        {"name": "vision", "when": {"has_images": True}, "model": "vision"},
        {"name": "web", "when": {"keywords": ["latest", "news", "today"]}, "model": "web"},
        {"name": "code", "when": {"has_code": True}, "model": "coder"},
        {"name": "phone", "when": {"header": {"x-device": "phone"}}, "model": "small"},
        {"name": "long", "when": {"min_tokens": 2000}, "model": "big"},
    ],
    "default": "general",
}


@pytest.fixture
async def auto_client(ollama, gateway):
    names = ["vision", "web", "coder", "small", "big", "general", "labeler"]
    models = [dep(ollama, f"{n}:latest", name=n) for n in names]
    models.append(dep(ollama, "needs_web", name="classify"))
    models.append(dep(ollama, "slow", name="stuck"))
    routes = {"auto": AUTO,
              "smart": {"rules": [{"name": "web", "when": {"label": "needs_web"}, "model": "web"}],
                        "default": "general",
                        "classifier": {"model": "classify", "labels": ["coding", "needs_web", "general"],
                                       "default": "general"}},
              "smart-slow": {"rules": [{"when": {"label": "needs_web"}, "model": "web"}], "default": "general",
                             "classifier": {"model": "stuck", "labels": ["needs_web", "general"],
                                            "default": "general", "timeout_s": 0.2}}}
    return await gateway({"models": models, "router": {**NO_POLL, "routes": routes, "aliases": {"gpt-4o": "auto"}}})


@pytest.mark.parametrize("content,headers,route,model", [
    ("What is the latest news on Ollama?", {}, "rule:web", "web"),
    ("Fix this:\n```python\ndef f(): pass\n```", {}, "rule:code", "coder"),
    ([{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": "data:image/png;base64,iVBORw0KGgo="}],
     {}, "rule:vision", "vision"),
    ("hi", {"x-device": "phone"}, "rule:phone", "small"),
    ("word " * 9000, {}, "rule:long", "big"),
    ("Tell me a story", {}, "default", "general"),
])
async def test_rules_choose_the_model(auto_client, ollama, content, headers, route, model):
    """A virtual model's ordered rules pick the target from the request; the route header says which rule."""
    resp = await auto_client.post("/v1/chat/completions", headers=headers, json={
        "model": "auto", "messages": [{"role": "user", "content": content}]})
    assert resp.status == 200
    assert resp.headers["x-litegate-route"] == route
    assert chats(ollama)[-1]["model"] == f"{model}:latest"


async def test_alias_to_virtual_model_and_listing(auto_client):
    """An alias may point at a virtual model; virtual models appear in /v1/models."""
    resp = await auto_client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [
        {"role": "user", "content": "latest news?"}]})
    assert resp.headers["x-litegate-route"] == "rule:web"
    ids = {m["id"]: m["owned_by"] for m in (await (await auto_client.get("/v1/models")).json())["data"]}
    assert ids["auto"] == "litegate" and "gpt-4o" in ids


async def test_classifier_label_routes_and_is_cached(auto_client, ollama):
    """The classifier model labels the request; its label picks the rule; a repeat is served from the cache."""
    for _ in range(2):
        resp = await auto_client.post("/v1/chat/completions", json={"model": "smart", "messages": [
            {"role": "user", "content": "who won the match yesterday?"}]})
        assert resp.headers["x-litegate-route"] == "rule:web"
    asked = [r for r in chats(ollama) if r["model"] == "needs_web"]
    assert len(asked) == 1 and asked[0]["options"]["num_predict"] == 16


async def test_classifier_timeout_uses_default(auto_client, ollama):
    """A classifier that does not answer within its timeout falls back to its default label, quickly."""
    resp = await auto_client.post("/v1/chat/completions", json={"model": "smart-slow", "messages": USER})
    assert resp.status == 200 and resp.headers["x-litegate-route"] == "default"
    ollama.app[fake.GATE].set()


def test_rules_that_can_never_match_are_config_errors():
    """Unreachable rules, unknown labels, impossible token ranges and bad regexes are load-time errors with paths."""
    from litegate.config import ConfigError
    doc = {"models": [{"name": "a", "provider": "ollama", "model": "x"}],
           "router": {"routes": {"auto": {"default": "a", "rules": [
               {"when": {"always": True}, "model": "a"},
               {"when": {"keywords": ["x"]}, "model": "a"},
               {"when": {"label": "web"}, "model": "a"},
               {"when": {"min_tokens": 10, "max_tokens": 5}, "model": "a"},
               {"when": {"regex": "("}, "model": "a"},
               {"when": {"keys": ["nobody"]}, "model": "nope"}]}}}}
    with pytest.raises(ConfigError) as info:
        from_dict(doc, env={})
    paths = [p for p, _ in info.value.problems]
    for i in range(1, 6):
        assert f"$.router.routes.auto.rules[{i}]" in paths
    assert "$.router.routes.auto.rules[5].model" in paths


def test_route_cli_explains_the_decision(tmp_path):
    """`litegate route` prints the decision and every rule it looked at, offline (label from --label)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"models": [{"name": n, "provider": "ollama", "model": n} for n in
                                          ("web", "coder", "general", "labeler")],
                               "router": {"routes": {"auto": {
                                   "classifier": {"model": "labeler", "labels": ["coding", "general"], "default": "general"},
                                   "rules": [{"name": "web", "when": {"keywords": ["news"]}, "model": "web"},
                                             {"name": "coding", "when": {"label": "coding"}, "model": "coder"}],
                                   "default": "general"}}}}))

    def run(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "litegate", "route", "--config", str(cfg), *args],
                             capture_output=True, text=True, cwd=root, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout

    out = run("--message", "any news today?")
    assert "auto -> web (rule:web)" in out
    out = run("--message", "hello", "--label", "coding")
    assert "auto -> coder (rule:coding)" in out and "rule:web -> web: no (no keyword found)" in out
    out = run("--message", "hello")
    assert "auto -> general (default)" in out and "offline" in out
