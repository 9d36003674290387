"""Keys, limits, budgets and usage accounting with no database server; metrics and the admin API."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from litegate.core import auth
from litegate.http import appkeys
from litegate.config import from_dict
from tests.conftest import ollama_config
from tests.fakes import ollama as fake

ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "content": "one two three"}]  # the fake counts 3 prompt tokens, 3 completion
ENV = {"K_ADMIN": "sk-admin", "K_LAPTOP": "sk-laptop", "K_FRIEND": "sk-friend"}


def keys(**friend) -> dict:
    return {"auth": {"keys": [{"name": "admin", "key_env": "K_ADMIN", "admin": True},
                              {"name": "laptop", "key_env": "K_LAPTOP"},
                              {"name": "friend", "key_env": "K_FRIEND", **friend}]}}


def bearer(secret: str) -> dict:
    return {"authorization": f"Bearer {secret}"}


async def chat(client, secret: str, model: str = "llama", stream: bool = False, **extra):
    resp = await client.post("/v1/chat/completions", headers=bearer(secret),
                             json={"model": model, "messages": USER, "stream": stream, **extra})
    await resp.read()
    return resp


def test_keys_new_prints_key_and_config_line():
    """`litegate keys new NAME` prints a fresh key and a config line whose hash accepts exactly that key."""
    out = subprocess.run([sys.executable, "-m", "litegate", "keys", "new", "alice's phone"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60).stdout
    secret = next(line.strip() for line in out.splitlines() if line.strip().startswith(auth.KEY_PREFIX))
    entry = json.loads(next(line for line in out.splitlines() if '"key_hash"' in line))
    cfg = from_dict({"models": [{"name": "m", "provider": "ollama", "model": "x"}], "auth": {"keys": [entry]}}, env={})
    assert auth.authenticate(cfg, f"Bearer {secret}").name == "alice's phone"
    with pytest.raises(Exception):
        auth.authenticate(cfg, f"Bearer {secret}x")
    assert "LITEGATE_KEY_ALICE_S_PHONE=" in out


async def test_revoked_key_is_401(ollama, gateway):
    """A revoked key gets the same 401 as a wrong one."""
    client = await gateway(ollama_config(ollama, **keys(revoked=True)), env=ENV)
    resp = await chat(client, "sk-friend")
    assert resp.status == 401 and (await resp.json())["error"]["message"] == "Incorrect API key provided"


async def test_requests_per_minute_under_concurrent_load(ollama, gateway):
    """rpm: of 12 concurrent requests exactly rpm pass; the rest get 429 with retry-after; headers count down."""
    client = await gateway(ollama_config(ollama, **keys(rpm=5)), env=ENV)
    results = await asyncio.gather(*(chat(client, "sk-friend") for _ in range(12)))
    statuses = sorted(r.status for r in results)
    assert statuses == [200] * 5 + [429] * 7
    refused = next(r for r in results if r.status == 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert (await refused.json())["error"]["code"] == "rate_limit_requests"
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in results if r.status == 200)
    assert remaining == [0, 1, 2, 3, 4]
    assert (await chat(client, "sk-laptop")).status == 200  # other keys are not affected


async def test_tokens_per_minute(ollama, gateway):
    """tpm: once a key's tokens in the last minute reach its limit, the next request is a 429."""
    client = await gateway(ollama_config(ollama, **keys(tpm=12)), env=ENV)
    assert (await chat(client, "sk-friend")).status == 200  # 6 tokens
    ok = await chat(client, "sk-friend")  # 12 tokens
    assert ok.status == 200 and ok.headers["x-ratelimit-remaining-tokens"] == "6"
    refused = await chat(client, "sk-friend")
    assert refused.status == 429 and (await refused.json())["error"]["code"] == "rate_limit_tokens"


async def test_concurrent_requests_limit(ollama, gateway):
    """max_concurrent: with two streams running a third is a 429; when one ends, a new one is accepted."""
    client = await gateway(ollama_config(ollama, **keys(max_concurrent=2)), env=ENV)
    streams = []
    for _ in range(2):
        resp = await client.post("/v1/chat/completions", headers=bearer("sk-friend"),
                                 json={"model": "slow", "messages": USER, "stream": True})
        await resp.content.readuntil(b"\n\n")
        streams.append(resp)
    refused = await chat(client, "sk-friend")
    assert refused.status == 429 and (await refused.json())["error"]["code"] == "concurrency_limit"
    ollama.app[fake.GATE].set()
    for resp in streams:
        await resp.read()
    assert (await chat(client, "sk-friend")).status == 200


async def test_daily_token_budget(ollama, gateway):
    """tokens_per_day: when today's tokens reach the budget the key gets 429 insufficient_quota until midnight."""
    client = await gateway(ollama_config(ollama, **keys(budget={"tokens_per_day": 12})), env=ENV)
    assert (await chat(client, "sk-friend")).status == 200
    assert (await chat(client, "sk-friend", stream=True, stream_options={"include_usage": True})).status == 200
    refused = await chat(client, "sk-friend")
    body = (await refused.json())["error"]
    assert refused.status == 429 and body["type"] == "insufficient_quota" and body["code"] == "budget_exceeded"
    assert int(refused.headers["retry-after"]) <= 86400


async def test_monthly_cost_budget_from_price_table(ollama, gateway):
    """cost_per_month: cost comes from the deployment's price table and stops the key when spent."""
    doc = ollama_config(ollama, **keys(budget={"cost_per_month": 0.01}))
    doc["models"][0]["price"] = {"input_per_mtok": 1000, "output_per_mtok": 1000}  # 6 tokens = $0.006
    client = await gateway(doc, env=ENV)
    assert (await chat(client, "sk-friend")).status == 200
    assert (await chat(client, "sk-friend")).status == 200
    assert (await chat(client, "sk-friend")).status == 429


async def test_usage_matches_backend_counts_and_survives_restart(ollama, gateway, tmp_path):
    """Every request's tokens reach the usage store exactly as the backend reported them; budgets restore at start."""
    doc = ollama_config(ollama, **keys(budget={"tokens_per_day": 30}))
    doc["models"].append({"name": "embed", "provider": "ollama", "model": "nomic", "api_base": doc["models"][0]["api_base"]})
    client = await gateway(doc, env=ENV)
    await chat(client, "sk-friend")
    await chat(client, "sk-friend", stream=True)
    await chat(client, "sk-laptop", model="thinking")
    await client.post("/v1/embeddings", headers=bearer("sk-laptop"), json={"model": "embed", "input": ["a b", "c"]})
    await chat(client, "sk-laptop", model="crash")
    await client.close()  # the app's cleanup flushes the store
    db = sqlite3.connect(tmp_path / "usage" / "usage.db")
    rows = db.execute("select key_name, model, endpoint, status, prompt_tokens, completion_tokens, stream "
                      "from usage order by id").fetchall()
    assert rows == [("friend", "llama", "chat", 200, 3, 3, 0), ("friend", "llama", "chat", 200, 3, 3, 1),
                    ("laptop", "thinking", "chat", 200, 3, 4, 0), ("laptop", "embed", "embeddings", 200, 3, 0, 0),
                    ("laptop", "crash", "chat", 502, 0, 0, 0)]
    text = " ".join(str(r) for r in db.execute("select * from usage").fetchall())
    assert "one two three" not in text and "Hello" not in text
    db.close()
    doc["auth"]["keys"][2]["budget"] = {"tokens_per_day": 12}
    client2 = await gateway(doc, env=ENV)  # same usage dir: today's 12 tokens are restored
    assert (await chat(client2, "sk-friend")).status == 429


async def test_corrupt_usage_database_does_not_stop_serving(ollama, gateway, tmp_path):
    """A corrupt usage database is moved aside; the gateway keeps answering and recording."""
    (tmp_path / "usage").mkdir()
    (tmp_path / "usage" / "usage.db").write_bytes(b"this is not sqlite" * 100)
    client = await gateway(ollama_config(ollama))
    assert (await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER})).status == 200
    assert list((tmp_path / "usage").glob("usage.db.corrupt-*"))


async def test_metrics_prometheus_text(ollama, gateway):
    """/metrics serves Prometheus text with requests, tokens, latency histograms and deployment gauges."""
    client = await gateway(ollama_config(ollama, **keys()), env=ENV)
    await chat(client, "sk-laptop")
    await chat(client, "sk-laptop", stream=True)
    assert (await client.get("/metrics", headers=bearer("sk-laptop"))).status == 403
    text = await (await client.get("/metrics", headers=bearer("sk-admin"))).text()
    assert 'litegate_requests_total{model="llama",deployment="' in text and 'key="laptop",status="200",face="openai"} 2' in text
    assert 'litegate_tokens_total{model="llama",key="laptop",type="completion"} 6' in text
    assert 'litegate_time_to_first_token_seconds_count{model="llama"} 1' in text
    assert "# TYPE litegate_request_duration_seconds histogram" in text
    assert "litegate_deployment_healthy{" in text and "litegate_requests_in_flight 1" in text


async def test_admin_api(ollama, gateway):
    """The admin API needs an admin key and reports usage by key, limits, errors and the redacted config."""
    client = await gateway(ollama_config(ollama, **keys(rpm=100)), env=ENV)
    await chat(client, "sk-friend")
    await chat(client, "sk-laptop", model="crash")
    assert (await client.get("/admin/usage", headers=bearer("sk-friend"))).status == 403
    services = client.server.app[appkeys.SERVICES]
    await services.usage.flush()
    by_key = await (await client.get("/admin/usage?since=1h&group_by=key", headers=bearer("sk-admin"))).json()
    totals = {r["group"]: r for r in by_key["rows"]}
    assert totals["friend"]["requests"] == 1 and totals["friend"]["completion_tokens"] == 3
    assert totals["laptop"]["errors"] == 1
    lim = await (await client.get("/admin/limits", headers=bearer("sk-admin"))).json()
    assert next(k for k in lim["keys"] if k["name"] == "friend")["requests_last_minute"] == 1
    errs = await (await client.get("/admin/errors", headers=bearer("sk-admin"))).json()
    assert errs["errors"][0]["model"] == "crash"
    conf = await (await client.get("/admin/config", headers=bearer("sk-admin"))).text()
    assert "sk-friend" not in conf and "sk-admin" not in conf and '"K_FRIEND"' in conf
    bad = await client.get("/admin/usage?since=yesterday", headers=bearer("sk-admin"))
    assert bad.status == 400 and (await bad.json())["error"]["param"] == "since"


async def test_usage_cli_table(ollama, gateway, tmp_path):
    """`litegate usage --since 7d --by key` names the database it read and prints the same totals as a table."""
    client = await gateway(ollama_config(ollama))
    await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER})
    await client.close()
    out = subprocess.run([sys.executable, "-m", "litegate", "usage", "--db", str(tmp_path / "usage"), "--by", "model"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"database: {tmp_path / 'usage' / 'usage.db'}\n")  # which file it read
    line = next(line for line in out.stdout.splitlines() if line.startswith("llama"))
    assert line.split()[:6] == ["llama", "1", "0", "3", "3", "0"]


async def test_cross_site_post_refused_even_without_keys(ollama, gateway):
    """A browser page on another site cannot make the open (key-less, loopback) gateway reload its config."""
    client = await gateway(ollama_config(ollama))
    evil = await client.post("/admin/reload", headers={"origin": "http://evil.example"})
    assert evil.status == 403 and (await evil.json())["error"]["code"] == "csrf_failed"
    ok = await client.post("/admin/reload", headers={"origin": f"http://{client.host}:{client.port}"})
    assert ok.status == 200 and (await ok.json())["ok"] is True
