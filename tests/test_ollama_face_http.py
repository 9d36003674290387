"""The Ollama face over raw HTTP: what the client library hides (HEAD /, NDJSON framing, error
shapes), keys and trusted networks, model management, and usage recorded with the face."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import ollama_config
from tests.fakes import ollama as fake_ollama

ENV = {"LG_ADMIN": "sk-admin", "LG_PHONE": "sk-phone"}
HI = [{"role": "user", "content": "hi there"}]


def keys(**auth) -> dict:
    return {"auth": {"keys": [{"name": "admin", "key_env": "LG_ADMIN", "admin": True},
                              {"name": "phone", "key_env": "LG_PHONE", "models": ["llama"]}], **auth}}


def bearer(secret: str) -> dict:
    return {"authorization": f"Bearer {secret}"}


def ndjson(raw: bytes) -> list[dict]:
    """Strict NDJSON: every line one JSON object, `\\n`-terminated, no blank lines, no `data:` prefix."""
    assert raw.endswith(b"\n")
    lines = raw[:-1].split(b"\n")
    assert all(line.startswith(b"{") for line in lines), raw
    return [json.loads(line) for line in lines]


async def test_reachability_probes(ollama, gateway):
    """HEAD / and GET / say "Ollama is running", /api/version a real release; no key needed for either."""
    client = await gateway(ollama_config(ollama, **keys()), env=ENV)
    head = await client.head("/")
    assert head.status == 200
    got = await client.get("/")
    assert got.status == 200 and await got.text() == "Ollama is running"
    version = await client.get("/api/version")
    assert (await version.json()) == {"version": "0.12.10"}
    assert (await client.head("/api/tags")).status == 401  # the model list is not public


@pytest.mark.parametrize("model,path", [("llama", "/api/chat"), ("gpt", "/api/chat"), ("llama", "/api/generate"),
                                        ("gpt", "/api/generate")])
async def test_ndjson_framing_on_both_routes(ollama, oai, gateway, model, path):
    """A stream is application/x-ndjson, one object per line, the last one done:true with counts."""
    doc = ollama_config(ollama)
    doc["models"].append({"name": "gpt", "provider": "openai", "model": "gpt-4o", "api_base": str(oai.make_url("/v1")),
                          "api_key_env": "K"})
    client = await gateway(doc, env={"K": "sk-backend"})
    body = {"model": model, "messages": HI} if path == "/api/chat" else {"model": model, "prompt": "hi there"}
    resp = await client.post(path, json=body)  # no "stream": Ollama's default is to stream
    assert resp.status == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
    lines = ndjson(await resp.read())
    assert len(lines) >= 2 and [line["done"] for line in lines].count(True) == 1 and lines[-1]["done"]
    assert lines[-1]["done_reason"] == "stop" and lines[-1]["eval_count"] == 3
    assert "x-request-id" in resp.headers


@pytest.mark.parametrize("path,body,status,text", [
    ("/api/chat", b"{not json", 400, "JSON"),
    ("/api/chat", b"", 400, "empty"),
    ("/api/chat", b'{"messages": []}', 400, "model is required"),
    ("/api/chat", b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', 404, "nope"),
    ("/api/chat", b'{"model": "llama", "messages": [{"role": "user", "content": "x"}], "think": "lots"}', 400,
     "think"),
    ("/api/chat", b'{"model": "llama", "messages": [{"role": "user", "content": "x", "images": ["zzz"]}]}', 400,
     "invalid image input"),
    ("/api/show", b'{}', 400, "model is required"),
    ("/api/show", b'{"model": "nope"}', 404, "model 'nope' not found"),
    ("/api/embed", b'{"model": "llama", "input": 5}', 400, "input"),
    ("/api/nothing-here", b'{}', 404, "no route"),
])
async def test_errors_are_ollama_shaped(ollama, gateway, path, body, status, text):
    """Bad input is {"error": "..."} with Ollama's status and a message naming the problem."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post(path, data=body, headers={"content-type": "application/json"})
    assert resp.status == status
    doc = await resp.json()
    assert list(doc) == ["error"] and text in doc["error"]


async def test_backend_error_after_first_line_ends_with_error_line(ollama, gateway):
    """Mid-stream failure: an {"error": ...} last line and no done line (ollama-python raises on it)."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/api/chat", json={"model": "error-midstream", "messages": HI})
    lines = ndjson(await resp.read())
    assert lines[0]["message"]["content"] == "partial"
    assert "error" in lines[-1] and not any(line.get("done") for line in lines)


async def test_backend_status_errors_keep_ollama_shape(ollama, gateway):
    """A backend's 404 and 503 reach the client in Ollama's shape with their status class."""
    client = await gateway(ollama_config(ollama))
    for model, status in (("missing", 404), ("busy", 503)):
        resp = await client.post("/api/chat", json={"model": model, "messages": HI, "stream": False})
        assert resp.status == status and "error" in await resp.json()


# ---------------------------------------------------------------- keys and trusted networks
async def test_without_key_the_refusal_says_how_to_fix_it(ollama, gateway):
    """No key and no trusted network: 401 in Ollama's shape that names both ways in."""
    client = await gateway(ollama_config(ollama, **keys()), env=ENV)
    resp = await client.get("/api/tags")
    assert resp.status == 401
    error = (await resp.json())["error"]
    assert "Authorization: Bearer" in error and "auth.trusted_networks" in error


async def test_trusted_network_is_one_principal_with_its_own_models_and_limits(ollama, gateway, tmp_path):
    """Keyless requests from a trusted network count as its principal: its models only, its rpm, its
    name in usage with the face recorded; a key, when sent, still wins."""
    trusted = [{"name": "tailnet", "networks": ["100.64.0.0/10", "127.0.0.0/8"], "models": ["llama", "thinking"],
                "rpm": 2}]
    client = await gateway(ollama_config(ollama, **keys(trusted_networks=trusted)), env=ENV)
    names = [m["name"] for m in (await (await client.get("/api/tags")).json())["models"]]
    assert names == ["llama:latest", "thinking:latest"]
    ok = await client.post("/api/chat", json={"model": "llama", "messages": HI, "stream": False})
    assert ok.status == 200
    refused = await client.post("/api/chat", json={"model": "crash", "messages": HI, "stream": False})
    assert refused.status == 403 and "tailnet" in (await refused.json())["error"]
    assert (await client.post("/api/chat", json={"model": "llama", "messages": HI})).status == 200
    limited = await client.post("/api/chat", json={"model": "llama", "messages": HI})
    assert limited.status == 429 and "error" in await limited.json()
    by_key = await client.post("/api/chat", json={"model": "llama", "messages": HI}, headers=bearer("sk-phone"))
    assert by_key.status == 200  # the key's own limits, not the network's
    assert (await client.get("/admin/usage", headers={})).status == 401  # never the admin API
    await client.close()
    db = sqlite3.connect(tmp_path / "usage" / "usage.db")
    rows = db.execute("select key_name, model, status, face, completion_tokens from usage order by id").fetchall()
    db.close()
    assert rows == [("tailnet", "llama", 200, "ollama", 3), ("tailnet", "crash", 403, "ollama", 0),
                    ("tailnet", "llama", 200, "ollama", 3), ("tailnet", "llama", 429, "ollama", 0),
                    ("phone", "llama", 200, "ollama", 3)]  # the refusal (403) is accounted too


async def test_other_networks_still_need_a_key(ollama, gateway):
    """A trusted network that does not hold the caller's address opens nothing."""
    trusted = [{"name": "lan", "networks": ["192.168.1.0/24"]}]
    client = await gateway(ollama_config(ollama, **keys(trusted_networks=trusted)), env=ENV)
    assert (await client.get("/api/tags")).status == 401
    assert (await client.get("/api/tags", headers=bearer("sk-phone"))).status == 200


async def test_trusted_networks_need_keys_and_valid_cidrs(ollama):
    """A config with trusted networks but no keys, or a bad CIDR, is refused naming the field."""
    from litegate.config import ConfigError, from_dict

    with pytest.raises(ConfigError) as e:
        from_dict(ollama_config(ollama, auth={"trusted_networks": [{"name": "t", "networks": ["10.0.0.0/33"]}]}))
    text = e.value.describe()
    assert "$.auth.trusted_networks: trusted networks need auth.keys" in text
    assert "$.auth.trusted_networks[0].networks[0]" in text


# ---------------------------------------------------------------- model management
async def test_model_management_refused_without_admin_key(ollama, gateway):
    """pull/delete/copy/create/push from a non-admin key: 403 in Ollama's shape; nothing reaches Ollama."""
    client = await gateway(ollama_config(ollama, **keys()), env=ENV)
    for method, path, body in (("POST", "/api/pull", {"model": "qwen3:8b"}), ("DELETE", "/api/delete", {"model": "x"}),
                               ("POST", "/api/copy", {"source": "a", "destination": "b"}),
                               ("POST", "/api/create", {"model": "m", "from": "llama3.1:8b"}),
                               ("POST", "/api/push", {"model": "m"})):
        resp = await client.request(method, path, json=body, headers=bearer("sk-phone"))
        assert resp.status == 403 and "admin key" in (await resp.json())["error"]
    assert not [r for r in ollama.app[fake_ollama.REQUESTS] if r["path"] in ("/api/pull", "/api/delete")]


async def test_pull_of_a_served_model_needs_no_download(ollama, gateway):
    """Home Assistant pulls a model it does not see downloaded: a name litegate serves is already there."""
    client = await gateway(ollama_config(ollama, **keys()), env=ENV)
    resp = await client.post("/api/pull", json={"model": "llama:latest", "stream": False}, headers=bearer("sk-phone"))
    assert resp.status == 200 and await resp.json() == {"status": "success"}


async def test_admin_pull_streams_ollama_progress(ollama, gateway):
    """An admin's pull is relayed to Ollama and its NDJSON progress comes back line by line."""
    client = await gateway(ollama_config(ollama, **keys()), env=ENV)
    resp = await client.post("/api/pull", json={"model": "qwen3:8b"}, headers=bearer("sk-admin"))
    lines = ndjson(await resp.read())
    assert lines[0] == {"status": "pulling manifest"} and lines[-1] == {"status": "success"}
    assert ollama.app[fake_ollama.REQUESTS][-1]["json"] == {"model": "qwen3:8b"}


async def test_admin_delete_and_copy_reach_ollama(ollama, gateway):
    """delete and copy pass through; a litegate name is renamed to the model Ollama knows."""
    client = await gateway(ollama_config(ollama, **keys()), env=ENV)
    assert (await client.delete("/api/delete", json={"model": "llama"}, headers=bearer("sk-admin"))).status == 200
    assert ollama.app[fake_ollama.REQUESTS][-1] == {**ollama.app[fake_ollama.REQUESTS][-1],
                                                    "path": "/api/delete", "json": {"model": "llama3.1:8b"}}
    copy = await client.post("/api/copy", json={"source": "llama3.1:8b", "destination": "mine"},
                             headers=bearer("sk-admin"))
    assert copy.status == 200
    missing = await client.post("/api/pull", json={"model": "missing-model", "stream": False},
                                headers=bearer("sk-admin"))
    assert missing.status == 404 and "file does not exist" in (await missing.json())["error"]


async def test_copilot_chats_on_v1_with_the_tagged_names_it_listed(ollama, gateway):
    """Copilot's Ollama provider lists /api/tags (`llama:latest`) and then chats through
    /v1/chat/completions on the same address with that name: it reaches `llama`, directly."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", json={"model": "llama:latest", "messages": HI})
    assert resp.status == 200 and resp.headers["x-litegate-route"] == "direct"
    assert (await resp.json())["choices"][0]["message"]["content"] == "Hello from llama3.1:8b"
    missing = await client.post("/v1/chat/completions", json={"model": "nope:latest", "messages": HI})
    assert missing.status == 404 and "nope:latest" in (await missing.json())["error"]["message"]


async def test_trusted_network_budget_survives_a_restart(ollama, gateway):
    """A trusted network's daily budget is restored from the usage store at start, like a key's."""
    trusted = [{"name": "tailnet", "networks": ["127.0.0.0/8"], "budget": {"tokens_per_day": 8}}]
    doc = ollama_config(ollama, **keys(trusted_networks=trusted))
    client = await gateway(doc, env=ENV)
    assert (await client.post("/api/chat", json={"model": "llama", "messages": HI, "stream": False})).status == 200
    await client.close()  # flushes the usage store: 2 + 3 tokens used today
    doc["auth"]["trusted_networks"][0]["budget"] = {"tokens_per_day": 5}
    again = await gateway(doc, env=ENV)
    refused = await again.post("/api/chat", json={"model": "llama", "messages": HI, "stream": False})
    assert refused.status == 429 and "tailnet" in (await refused.json())["error"]


async def test_trusted_network_seen_through_a_trusted_proxy_only(ollama, gateway):
    """Behind `tailscale serve` (a proxy in server.trusted_proxies) the forwarded client address decides;
    from any other peer an X-Forwarded-For header is a claim that opens nothing."""
    trusted = [{"name": "tailnet", "networks": ["100.64.0.0/10"]}]
    forwarded = {"x-forwarded-for": "100.101.102.103"}
    direct = await gateway(ollama_config(ollama, **keys(trusted_networks=trusted)), env=ENV)
    assert (await direct.get("/api/tags", headers=forwarded)).status == 401
    proxied = await gateway(ollama_config(ollama, server={"trusted_proxies": ["127.0.0.1"]},
                                          **keys(trusted_networks=trusted)), env=ENV)
    assert (await proxied.get("/api/tags", headers=forwarded)).status == 200
    refused = await proxied.get("/api/tags", headers={"x-forwarded-for": "192.168.1.9"})
    assert refused.status == 401 and "192.168.1.9" in (await refused.json())["error"]
