"""Telling the truth about failures: every refused or failed model request is accounted (usage row,
metrics, dashboard) with its class (backend, policy, client); an unknown model's 404 suggests the nearest
names; a retried failure names each deployment once; a deployment on a down Ollama is down everywhere;
x-litegate-overhead-ms leaves out retry back-off; with no keys, what came through a proxy is refused."""

from __future__ import annotations

import asyncio

from litegate.errors import error_class
from litegate.http import appkeys
from tests.conftest import ollama_config
from tests.test_errors import error_of, free_port

USER = [{"role": "user", "content": "hi"}]
ENV = {"K_ADMIN": "sk-admin", "K_PHONE": "sk-phone"}


def keyed(ollama, **extra):
    return ollama_config(ollama, auth={"keys": [
        {"name": "admin", "key_env": "K_ADMIN", "admin": True},
        {"name": "phone", "key_env": "K_PHONE", "models": ["llama", "crash"], "rpm": 2}]}, **extra)


def test_error_classes():
    """Limits, budgets and key rights are policy; 5xx and backend codes are backend; other 4xx are client."""
    assert error_class(200, None) is None
    assert error_class(429, "budget_exceeded") == "policy"
    assert error_class(429, "rate_limit_requests") == "policy"
    assert error_class(403, "model_not_allowed") == "policy"
    assert error_class(429, "rate_limit_exceeded") == "backend"  # a backend's own 429
    assert error_class(502, "backend_unavailable") == "backend"
    assert error_class(200, "stream_interrupted") == "backend"
    assert error_class(404, "model_not_found") == "client"
    assert error_class(401, "invalid_api_key") == "client"
    assert error_class(499, "client_disconnected") == "client"


async def test_refusals_are_counted_by_class(ollama, gateway):
    """401 (wrong key), 403 (a model the key may not use), 404 (a misspelled model), 429 (the key's rpm) and a
    backend 500 each leave a usage row with its class, a metrics line, and the admin totals split by class."""
    client = await gateway(keyed(ollama), env=ENV)
    phone = {"authorization": "Bearer sk-phone"}
    for headers, model, status in ((phone, "llama", 200), ({"authorization": "Bearer sk-wrong"}, "llama", 401),
                                   (phone, "thinking", 403), ({"authorization": "Bearer sk-admin"}, "lama", 404),
                                   (phone, "crash", 502), (phone, "llama", 429)):
        resp = await client.post("/v1/chat/completions", json={"model": model, "messages": USER}, headers=headers)
        assert resp.status == status, await resp.text()
        await resp.read()
    store = client.app[appkeys.SERVICES].usage
    assert await store.flush()
    admin = {"authorization": "Bearer sk-admin"}
    log = (await (await client.get("/admin/requests?since=1h", headers=admin)).json())["requests"]
    got = sorted((r["status"], r["error_class"], r["key"]) for r in log)
    assert got == [(200, None, "phone"), (401, "client", "unauthenticated"), (403, "policy", "phone"),
                   (404, "client", "admin"), (429, "policy", "phone"), (502, "backend", "phone")]
    assert all("messages" not in r and "prompt" not in r for r in log)  # no prompt text, ever
    total = (await (await client.get("/admin/usage?since=1h", headers=admin)).json())["rows"][0]
    assert (total["backend_errors"], total["policy_errors"], total["client_errors"]) == (1, 2, 2)
    only = (await (await client.get("/admin/requests?since=1h&error_class=policy&key=phone",
                                    headers=admin)).json())["requests"]
    assert sorted(r["status"] for r in only) == [403, 429]
    metrics = await (await client.get("/metrics", headers=admin)).text()
    assert 'litegate_request_errors_total{model="lama",key="admin",class="client",code="model_not_found"} 1' in metrics
    assert 'class="policy",code="model_not_allowed"} 1' in metrics
    assert 'key="unauthenticated",class="client",code="invalid_api_key"} 1' in metrics


async def test_unknown_model_suggests_nearest(ollama, gateway):
    """A misspelled model's 404 names the nearest models the caller may use."""
    client = await gateway(ollama_config(ollama))
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "lama", "messages": USER}), 404)
    assert "'lama' does not exist" in err["message"] and "Did you mean 'llama'" in err["message"]
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "zzzzzz", "messages": USER}), 404)
    assert "Models here:" in err["message"] and "llama" in err["message"]


async def test_retried_connection_error_names_each_deployment_once(ollama, gateway):
    """Three attempts on one unreachable deployment: its id appears once in the message, not once per try."""
    doc = ollama_config(ollama)
    doc["models"].append({"name": "gone", "provider": "ollama", "model": "gone:1b",
                          "api_base": f"http://127.0.0.1:{free_port()}"})
    doc["router"].update({"num_retries": 2, "retry_backoff_s": 0, "fallbacks": {"gone": ["crash"]}})
    client = await gateway(doc)
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "gone", "messages": USER}), 502)
    assert err["message"].count("ollama/gone:1b") == 1, err["message"]
    assert err["message"].count("ollama/crash:latest") == 1, err["message"]


async def test_deployment_on_a_down_ollama_is_down(ollama, gateway):
    """When its Ollama does not answer /api/ps, a deployment is "down" in /health/backends and the metrics,
    beside one on a live Ollama that stays healthy."""
    doc = ollama_config(ollama)
    doc["models"] = [doc["models"][0], {"name": "far", "provider": "ollama", "model": "llama3.1:8b",
                                        "api_base": f"http://127.0.0.1:{free_port()}"}]
    doc["router"]["ollama_poll_s"] = 1
    client = await gateway(doc)
    backends = client.app[appkeys.SERVICES].backends
    for _ in range(200):  # the first poll runs as the app starts
        if len(backends.loaded_models) == 2:
            break
        await asyncio.sleep(0.02)
    body = await (await client.get("/health/backends")).json()
    states = {d["name"]: d["state"] for d in body["deployments"]}
    assert states == {"llama": "healthy", "far": "down"}
    metrics = await (await client.get("/metrics")).text()
    assert 'litegate_deployment_healthy{deployment="ollama/llama3.1:8b@127.0.0.1:' in metrics
    far = next(line for line in metrics.splitlines() if line.startswith("litegate_deployment_healthy") and
               'model="far"' in line)
    assert far.endswith(" 0")


async def test_overhead_excludes_retry_backoff(ollama, gateway):
    """A retry that waits out a 1 s back-off: the request takes over a second, litegate's own overhead
    header stays far below it (the back-off is neither litegate's work nor the backend's)."""
    doc = ollama_config(ollama)
    doc["models"][0] = {**doc["models"][0], "name": "flaky"}
    doc["models"].append({"name": "flaky", "provider": "ollama", "model": "crash:latest", "api_base":
                          doc["models"][0]["api_base"], "weight": 1e9})  # picked first, then the good one
    doc["router"].update({"num_retries": 1, "retry_backoff_s": 1.0})
    client = await gateway(doc)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    resp = await client.post("/v1/chat/completions", json={"model": "flaky", "messages": USER})
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-litegate-route"] == "direct+retry"
    assert loop.time() - t0 >= 1.0
    assert float(resp.headers["x-litegate-overhead-ms"]) < 500


async def test_proxied_request_without_keys_is_refused(ollama, gateway):
    """No keys: a request carrying forwarded headers (tailscale serve, any reverse proxy) to the API, the
    admin API or the dashboard is a 403 that says to add keys; a direct loopback request still works."""
    client = await gateway(ollama_config(ollama))
    via = {"x-forwarded-for": "100.101.102.103", "x-forwarded-proto": "https"}
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER},
                                           headers=via), 403)
    assert err["code"] == "keys_required" and "Add auth.keys" in err["message"]
    for path in ("/admin/usage", "/ui", "/v1/models"):
        resp = await client.get(path, headers=via, allow_redirects=False)
        assert resp.status == 403, path
    assert (await client.get("/health", headers=via)).status == 200
    assert (await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER})).status == 200
