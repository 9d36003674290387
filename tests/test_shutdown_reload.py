"""Careless reloads and a drain that runs out (issue 21): a reload may never open an exposed gateway,
and streams still open when server.shutdown_grace_s ends get an error frame and are recorded as
litegate's doing (503), not as clients that went away (499).
"""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp

from litegate.config import ConfigHolder, from_dict
from litegate.http.app import create_app
from tests.conftest import base, ollama_config, sse_events
from tests.fakes import ollama as fake_ollama
from tests.test_lifecycle import clean_env, litegate, open_streams, write_config  # noqa: F401 (fixture)

KEYS = {"auth": {"keys": [{"name": "admin", "key_env": "K_ADMIN", "admin": True}]}}


async def test_admin_reload_that_drops_every_key_on_a_public_bind_is_refused(ollama, aiohttp_client, tmp_path):
    """Served on 0.0.0.0 with keys, a config file rewritten without keys is refused by POST /admin/reload
    (400 naming auth.keys); the old config stays, so a request without a key is still a 401."""
    path = tmp_path / "litegate.json"
    doc = ollama_config(ollama, **KEYS, usage={"enabled": False})
    path.write_text(json.dumps(doc))
    env = {"K_ADMIN": "sk-admin"}
    holder = ConfigHolder(str(path), from_dict(doc, source=str(path), env=env), host="0.0.0.0", env=env)
    client = await aiohttp_client(create_app(holder))
    path.write_text(json.dumps({**doc, "auth": {"keys": []}}))
    resp = await client.post("/admin/reload", headers={"authorization": "Bearer sk-admin"})
    body = await resp.json()
    assert resp.status == 400 and "auth.keys" in body["error"]["message"], body
    assert "refusing to listen on 0.0.0.0" in body["error"]["message"]
    assert holder.current.auth.keys and not holder.last_reload["ok"]
    assert (await client.get("/v1/models")).status == 401
    assert (await client.get("/admin/config")).status == 401


async def test_sighup_that_drops_every_key_on_a_public_bind_is_refused(ollama, tmp_path, litegate):  # noqa: F811
    """The same through SIGHUP on a real `litegate serve --host 0.0.0.0`: config_reload_failed names
    $.auth.keys and the gateway keeps asking for keys."""
    path = tmp_path / "litegate.json"
    doc = write_config(path, base(ollama), ["llama"])
    path.write_text(json.dumps({**doc, **KEYS}))
    gw = await litegate(path, "--host", "0.0.0.0", env=clean_env(K_ADMIN="sk-admin"))
    path.write_text(json.dumps(doc))  # every key removed
    failed = await gw.reload()
    assert failed["event"] == "config_reload_failed", failed
    assert any(p.startswith("$.auth.keys") for p in failed["problems"]), failed
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/v1/models") as resp:
        assert resp.status == 401


async def test_grace_expiry_ends_streams_with_an_error_frame(ollama, tmp_path, litegate):  # noqa: F811
    """When server.shutdown_grace_s runs out, a stream still open gets the OpenAI error event
    (server_shutting_down) and a proper end, no [DONE]; a whole reply still waiting gets a 503 JSON; both
    are logged as 503, not as 499 client disconnects; the process exits 0."""
    path = tmp_path / "litegate.json"
    write_config(path, base(ollama), ["slow"], shutdown_grace_s=0.5)
    gw = await litegate(path)
    async with aiohttp.ClientSession() as s:
        [streaming] = await open_streams(s, gw, 1)
        whole = asyncio.create_task(s.post(gw.url + "/v1/chat/completions",
                                           json={"model": "slow", "messages": [{"role": "user", "content": "x"}]}))
        await asyncio.wait_for(_both_upstream(ollama), 10)
        gw.proc.send_signal(signal.SIGTERM)
        result = await streaming
        resp = await whole
        whole_body = await resp.json()
    ollama.app[fake_ollama.GATE].set()
    assert await asyncio.wait_for(gw.proc.wait(), 10) == 0
    await gw._pump
    events, _ = sse_events(result["body"])
    assert result["status"] == 200 and "[DONE]" not in events
    assert events[-1]["error"]["code"] == "server_shutting_down", events[-1]
    assert resp.status == 503 and whole_body["error"]["code"] == "server_shutting_down"
    logged = [e for e in gw.events if e.get("event") == "request"]
    assert sorted(e["status"] for e in logged) == [503, 503], logged
    assert {e["error"] for e in logged} == {"server_shutting_down"}


async def _both_upstream(ollama) -> None:
    """Wait until the fake Ollama holds both requests (the stream and the whole reply); the fake announces
    nothing, so this polls its request list."""
    while len([r for r in ollama.app[fake_ollama.REQUESTS] if r["path"] == "/api/chat"]) < 2:
        await asyncio.sleep(0.01)
