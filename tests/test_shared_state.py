"""Two litegate instances sharing state through a real redis-server on loopback: limits and budgets
exact across both, cooldowns, sessions, the search cache and team usage shared, and Redis going
away and coming back without stopping traffic or losing usage."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from litegate.config import ConfigHolder, from_dict
from litegate.http.app import create_app
from litegate.http.appkeys import RESPONSES, SERVICES
from litegate.service import commands
from litegate.tools.search import SearchResult
from tests.conftest import base, ollama_config
from tests.fakes import ollama as fake
from tests.redis_server import RedisServer, free_port, need_redis

USER = [{"role": "user", "content": "one two three"}]  # the fake counts 3 prompt + 3 completion tokens
ENV = {"K_ADMIN": "sk-admin", "K_FRIEND": "sk-friend", "K_LAPTOP": "sk-laptop"}
ADMIN = {"authorization": "Bearer sk-admin"}
FRIEND = {"authorization": "Bearer sk-friend"}
LAPTOP = {"authorization": "Bearer sk-laptop"}


@pytest.fixture
async def redis_server(tmp_path: Path):
    need_redis()
    server = RedisServer(tmp_path / "redis")
    await server.start()
    yield server
    await server.stop()


def config(backend, redis_url: str, instance: str, *, friend: dict | None = None, fail_open: bool = True,
           timeout_ms: float = 5000, **extra: Any) -> dict[str, Any]:
    doc = ollama_config(backend, **extra)
    doc["auth"] = {"keys": [{"name": "admin", "key_env": "K_ADMIN", "admin": True},
                            {"name": "friend", "key_env": "K_FRIEND", **(friend or {})},
                            {"name": "laptop", "key_env": "K_LAPTOP"}]}
    doc["state"] = {"redis_url": redis_url, "key_prefix": "test:", "instance": instance, "fail_open": fail_open,
                    "retry_s": 0.05, "timeout_ms": timeout_ms}
    return doc


@pytest.fixture
def pair(aiohttp_client, tmp_path: Path, ollama):
    """Two litegate apps (mac-a, mac-b), each with its own usage database, one Redis between them."""

    async def make(redis_url: str, docs: tuple[dict, dict] | None = None, **kw: Any) -> tuple[TestClient, TestClient]:
        clients = []
        for i, name in enumerate(("mac-a", "mac-b")):
            doc = docs[i] if docs else config(ollama, redis_url, name, **kw)
            doc = {**doc, "usage": {"path": str(tmp_path / name)}}
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(doc))
            cfg = from_dict(json.loads(path.read_text()), source=str(path), env=ENV)
            clients.append(await aiohttp_client(create_app(ConfigHolder(str(path), cfg, env=ENV))))
        return clients[0], clients[1]

    return make


def state_of(client: TestClient):
    return client.server.app[SERVICES].state


async def chat(client: TestClient, headers: dict, model: str = "llama"):
    resp = await client.post("/v1/chat/completions", headers=headers, json={"model": model, "messages": USER})
    body = await resp.json()
    return resp, body


async def statuses(*calls) -> Counter:
    return Counter(resp.status for resp, _ in await asyncio.gather(*calls))


async def test_rpm_is_exact_across_two_instances(redis_server, pair):
    """A key limited to 10 requests a minute gets exactly 10 across both instances, even when both
    are asked at once (the admit script counts atomically in Redis)."""
    a, b = await pair(redis_server.url, friend={"rpm": 10})
    got = await statuses(*[chat(c, FRIEND) for c in (a, b) for _ in range(12)])
    assert got == Counter({200: 10, 429: 14})
    resp, body = await chat(b, FRIEND)
    assert resp.status == 429 and body["error"]["code"] == "rate_limit_requests"
    limits = await (await a.get("/admin/limits", headers=ADMIN)).json()
    friend = next(k for k in limits["keys"] if k["name"] == "friend")
    assert friend["requests_last_minute"] == 10 and limits["state"]["up"] is True


async def test_budget_spent_on_one_is_refused_on_the_other(redis_server, pair):
    """Tokens a key spends on mac-a count against its daily budget on mac-b."""
    a, b = await pair(redis_server.url, friend={"budget": {"tokens_per_day": 5}})
    resp, _ = await chat(a, FRIEND)
    assert resp.status == 200
    await state_of(a).flush()
    resp, body = await chat(b, FRIEND)
    assert resp.status == 429 and body["error"]["code"] == "budget_exceeded"
    assert "used its 5 tokens for today" in body["error"]["message"]
    resp, _ = await chat(b, LAPTOP)  # another key is untouched
    assert resp.status == 200


async def test_cooldown_seen_by_one_is_honoured_by_the_other(redis_server, pair, ollama):
    """A deployment mac-a cooled down after a failure is passed over by mac-b, which never sends it
    a request of its own (it would pick that deployment nearly always otherwise)."""
    docs = []
    for name in ("mac-a", "mac-b"):
        doc = config(ollama, redis_server.url, name)
        doc["models"] += [
            {"name": "duo", "id": "crashy", "provider": "ollama", "model": "crash:latest", "api_base": base(ollama),
             "weight": 1000},
            {"name": "duo", "id": "steady", "provider": "ollama", "model": "llama3.1:8b", "api_base": base(ollama),
             "weight": 0.001}]
        doc["router"] = {**doc["router"], "cooldown": {"failures": 1, "cooldown_s": 300}}
        docs.append(doc)
    a, b = await pair(redis_server.url, docs=tuple(docs))
    resp, _ = await chat(a, FRIEND, "duo")
    assert resp.status >= 500  # the deployment it tried (crashy, by weight) failed and cooled down
    await state_of(a).flush()
    for _ in range(5):
        resp, _ = await chat(b, FRIEND, "duo")
        assert resp.status == 200 and resp.headers["x-litegate-model"] == "steady"
    crashes = [r for r in ollama.app[fake.REQUESTS] if (r["json"] or {}).get("model") == "crash:latest"]
    assert len(crashes) == 1
    report = await (await b.get("/health/backends", headers=ADMIN)).json()
    crashy = next(d for d in report["deployments"] if d["id"] == "crashy")
    assert crashy["state"] == "cooling_down" and crashy["requests"] == 0


async def test_usage_from_both_shows_on_either(redis_server, pair):
    """/admin/usage on any instance shows the team's usage per instance and in total."""
    a, b = await pair(redis_server.url)
    for client, n in ((a, 2), (b, 3)):
        for _ in range(n):
            assert (await chat(client, FRIEND))[0].status == 200
    await state_of(b).flush()
    for client in (a, b):
        body = await (await client.get("/admin/usage", headers=ADMIN)).json()
        team = body["team"]
        assert team["available"] is True
        assert {n: rows[0]["requests"] for n, rows in team["instances"].items()} == {"mac-a": 2, "mac-b": 3}
        assert team["total"][0]["requests"] == 5 and team["total"][0]["prompt_tokens"] == 15
    await a.server.app[SERVICES].usage.flush()
    own = await (await a.get("/admin/usage", headers=ADMIN)).json()
    assert own["rows"][0]["requests"] == 2  # the instance's own SQLite log, as before
    by_key = (await (await b.get("/admin/usage?group_by=key", headers=ADMIN)).json())["team"]
    assert [(r["group"], r["requests"]) for r in by_key["total"]] == [("friend", 5)]


async def test_redis_outage_degrades_then_sharing_resumes(redis_server, pair, ollama):
    """Redis stopped mid-run: requests keep flowing, mac-a (fail-open) counts the key's limit on its own,
    mac-b (fail-closed) refuses only keys with limits; the outage shows on /admin/backends and
    /metrics. Redis back (empty: it lost its data): both rejoin by themselves, the limit is exact
    across both again, and team usage has every request, from before, during and after."""
    friend = {"rpm": 4}
    a, b = await pair(redis_server.url, docs=(config(ollama, redis_server.url, "mac-a", friend=friend),
                                               config(ollama, redis_server.url, "mac-b", friend=friend,
                                                      fail_open=False)))
    sent = Counter()
    for client, name in ((a, "mac-a"), (b, "mac-b")):
        assert (await chat(client, FRIEND))[0].status == 200
        sent[name] += 1

    await redis_server.stop()
    got = Counter()
    for _ in range(4):
        resp, _ = await chat(a, FRIEND)
        got[resp.status] += 1
    sent["mac-a"] += 4
    assert got == Counter({200: 3, 429: 1})  # its own earlier request + 3 = the limit of 4, counted here
    resp, body = await chat(b, FRIEND)
    assert resp.status == 503 and body["error"]["code"] == "state_unavailable"
    resp, _ = await chat(b, LAPTOP)  # a key without limits is never refused
    assert resp.status == 200
    sent["mac-b"] += 2
    report = await (await a.get("/admin/backends", headers=ADMIN)).json()
    assert report["state"]["up"] is False and report["state"]["outages"] == 1
    metrics = await (await a.get("/metrics", headers=ADMIN)).text()
    assert "litegate_state_store_up 0" in metrics and "litegate_state_local_admissions_total" in metrics

    await redis_server.start()
    await asyncio.wait_for(asyncio.gather(state_of(a).wait_up(), state_of(b).wait_up()), 30)
    got = await statuses(*[chat(c, FRIEND) for c in (a, b) for _ in range(3)])
    assert got == Counter({200: 4, 429: 2})
    sent["mac-a"] += 3
    sent["mac-b"] += 3
    await asyncio.gather(state_of(a).flush(), state_of(b).flush())
    team = (await (await b.get("/admin/usage", headers=ADMIN)).json())["team"]
    assert {n: rows[0]["requests"] for n, rows in team["instances"].items()} == dict(sent)
    assert team["total"][0]["requests"] == sum(sent.values())


async def test_unreachable_redis_at_start_never_stops_traffic(pair, ollama):
    """With nothing listening at the Redis address the app still starts and serves on local counts."""
    need_redis()
    url = f"redis://127.0.0.1:{free_port()}/0"
    a, _ = await pair(url, friend={"rpm": 2})
    got = await statuses(*[chat(a, FRIEND) for _ in range(3)])
    assert got == Counter({200: 2, 429: 1})
    assert state_of(a).status()["up"] is False


async def test_dashboard_session_opened_on_one_works_on_the_other(redis_server, pair):
    """Signing in on mac-a signs the browser in on mac-b; signing out on mac-b ends it on both."""
    a, b = await pair(redis_server.url)
    resp = await a.post("/ui/login", data={"key": "sk-admin"}, allow_redirects=False)
    assert resp.status == 303
    cookie = {"cookie": f"litegate_session={resp.cookies['litegate_session'].value}"}
    resp = await b.get("/admin/limits", headers=cookie)
    assert resp.status == 200
    page = await (await b.get("/ui", headers=cookie)).text()
    csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    resp = await b.post("/ui/logout", headers={**cookie, "x-csrf-token": csrf, "origin": str(b.make_url(""))})
    assert resp.status == 200
    assert (await a.get("/admin/limits", headers=cookie)).status == 401


async def test_search_results_one_paid_for_serve_the_other(redis_server, pair):
    """A web search cached by mac-a is found by mac-b's cache without a backend call."""
    a, b = await pair(redis_server.url)
    results = [SearchResult("Ollama", "https://ollama.com", "Run models locally")]
    cache_a, cache_b = (c.server.app[SERVICES].search_cache for c in (a, b))
    assert await cache_b.lookup("serper", "what is ollama", 5, ttl_s=60) is None
    await cache_a.remember("serper", "What is  Ollama", 5, results, ttl_s=60)
    assert await cache_b.lookup("serper", "what is ollama", 5, ttl_s=60) == results
    assert cache_b.get("serper", "what is ollama", 5) == results  # now kept locally too


def test_check_config_names_the_missing_library(tmp_path, capsys, monkeypatch):
    """check-config fails with a clear sentence when a config has a state section but no redis library."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"models": [{"name": "m", "provider": "ollama", "model": "x"}],
                                "state": {"redis_url": "redis://127.0.0.1:6379/0"}}))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a))
    assert commands.check_config(str(path)) == 1
    assert "pip install 'litegate[redis]'" in capsys.readouterr().err
    monkeypatch.undo()
    assert commands.check_config(str(path)) == 0
    assert "shared state: redis://127.0.0.1:6379/0" in capsys.readouterr().out


async def test_redis_losing_its_data_loses_no_usage_or_budget(redis_server, pair):
    """Redis emptied under running instances (FLUSHALL, a failover to an empty replica): the next
    request shows a new data generation, each instance re-publishes its own counts from its SQLite
    log, and team usage and the key's budget are whole again."""
    import redis.asyncio as aioredis

    a, b = await pair(redis_server.url, friend={"budget": {"tokens_per_day": 20}})
    for client in (a, b, b):
        assert (await chat(client, FRIEND))[0].status == 200  # 3 x 6 tokens = 18 of 20
    await asyncio.gather(state_of(a).flush(), state_of(b).flush())
    admin = aioredis.Redis.from_url(redis_server.url)
    await admin.flushall()
    await admin.aclose()
    assert (await chat(a, LAPTOP))[0].status == 200  # brings the news to mac-a
    assert (await chat(b, LAPTOP))[0].status == 200  # and to mac-b
    await asyncio.gather(state_of(a).flush(), state_of(b).flush())  # each has rejoined, in the background
    assert (await chat(a, FRIEND))[0].status == 200  # 18 < 20: admitted, now 24
    resp, body = await chat(b, FRIEND)
    assert resp.status == 429 and body["error"]["code"] == "budget_exceeded"
    await asyncio.gather(state_of(a).flush(), state_of(b).flush())
    team = (await (await a.get("/admin/usage", headers=ADMIN)).json())["team"]
    assert {n: rows[0]["requests"] for n, rows in team["instances"].items()} == {"mac-a": 3, "mac-b": 4}


async def test_slow_redis_falls_back_to_local_counts(redis_server, pair):
    """Redis answering slower than state.timeout_ms (all clients paused) counts as an outage: the
    request is served on local counts instead of waiting, and sharing resumes once Redis answers."""
    import redis.asyncio as aioredis

    a, _ = await pair(redis_server.url, friend={"rpm": 5}, timeout_ms=150)
    assert (await chat(a, FRIEND))[0].status == 200
    admin = aioredis.Redis.from_url(redis_server.url)
    await admin.execute_command("CLIENT", "PAUSE", 3000, "ALL")  # every client, this one too, until it lapses
    resp, _ = await chat(a, FRIEND)
    assert resp.status == 200 and resp.headers["x-ratelimit-remaining-requests"] == "3"  # counted here
    assert state_of(a).status()["up"] is False
    await admin.aclose()
    await asyncio.wait_for(state_of(a).wait_up(), 30)
    resp, _ = await chat(a, FRIEND)
    assert resp.status == 200 and state_of(a).status()["up"] is True


async def test_stored_responses_are_shared(redis_server, pair):
    """A Responses API answer stored on mac-a is retrieved and continued (previous_response_id) on mac-b;
    deleted on mac-b, it is gone on mac-a too, though mac-a still holds its own copy on disk."""
    a, b = await pair(redis_server.url)
    resp = await a.post("/v1/responses", headers=FRIEND, json={"model": "llama", "input": "one two three"})
    assert resp.status == 200
    first = await resp.json()
    got = await b.get(f"/v1/responses/{first['id']}", headers=FRIEND)
    assert got.status == 200 and (await got.json())["id"] == first["id"]
    assert (await b.get(f"/v1/responses/{first['id']}", headers=LAPTOP)).status == 404  # another key's: not found
    resp = await b.post("/v1/responses", headers=FRIEND,
                        json={"model": "llama", "input": "and four", "previous_response_id": first["id"]})
    assert resp.status == 200
    assert (await b.delete(f"/v1/responses/{first['id']}", headers=FRIEND)).status == 200
    assert (await a.get(f"/v1/responses/{first['id']}", headers=FRIEND)).status == 404
    store = a.server.app[RESPONSES]
    team, store.shared = store.shared, None
    assert await store.get("friend", first["id"]) is not None  # mac-a's own copy: the team's tombstone wins
    store.shared = team
