"""Keys made and revoked from the dashboard (POST /admin/keys): admin only, the secret shown once and stored
hashed in keys.json beside the usage database, alive across a reload and a restart, revocable at once
(config keys too)."""

from __future__ import annotations

import json

from litegate.config import ConfigHolder, from_dict
from litegate.http.app import create_app
from tests.conftest import ollama_config

USER = [{"role": "user", "content": "hi"}]
ENV = {"K_ADMIN": "sk-admin", "K_PHONE": "sk-phone"}
ADMIN = {"authorization": "Bearer sk-admin"}


def doc_for(ollama, tmp_path):
    doc = ollama_config(ollama, auth={"keys": [{"name": "admin", "key_env": "K_ADMIN", "admin": True},
                                               {"name": "phone", "key_env": "K_PHONE"}]})
    return {**doc, "usage": {"path": str(tmp_path / "usage")}}


async def start(aiohttp_client, tmp_path, doc):
    path = tmp_path / "litegate.json"
    path.write_text(json.dumps(doc))
    holder = ConfigHolder(str(path), from_dict(doc, source=str(path), env=ENV), env=ENV)
    return await aiohttp_client(create_app(holder))


async def chat(client, secret: str, model: str = "llama") -> int:
    resp = await client.post("/v1/chat/completions", json={"model": model, "messages": USER},
                             headers={"authorization": f"Bearer {secret}"})
    await resp.read()
    return resp.status


async def test_key_made_at_runtime_survives_reload_and_restart(ollama, aiohttp_client, tmp_path):
    """A key made through the admin API works at once, only for its models, is kept hashed (its secret is in
    no file), and still works after POST /admin/reload and after a restart of the whole app."""
    doc = doc_for(ollama, tmp_path)
    client = await start(aiohttp_client, tmp_path, doc)
    refused = await client.post("/admin/keys", json={"name": "friend"}, headers={"authorization": "Bearer sk-phone"})
    assert refused.status == 403  # not an admin key
    resp = await client.post("/admin/keys", json={"name": "friend", "models": ["llama"], "rpm": 30}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    secret = (await resp.json())["key"]
    assert secret.startswith("sk-lg-")
    assert await chat(client, secret) == 200 and await chat(client, secret, "thinking") == 403
    stored = (tmp_path / "usage" / "keys.json").read_text()
    assert secret not in stored and '"key_hash": "sha256:' in stored
    assert oct((tmp_path / "usage" / "keys.json").stat().st_mode & 0o777) == "0o600"
    dup = await client.post("/admin/keys", json={"name": "phone"}, headers=ADMIN)
    assert dup.status == 400 and "exists already" in (await dup.json())["error"]["message"]
    typo = await client.post("/admin/keys", json={"name": "x", "models": ["lama"]}, headers=ADMIN)
    assert typo.status == 400
    assert (await client.post("/admin/reload", headers=ADMIN)).status == 200
    assert await chat(client, secret) == 200
    listed = {k["name"]: k for k in (await (await client.get("/admin/keys", headers=ADMIN)).json())["keys"]}
    assert listed["friend"]["source"] == "runtime" and listed["friend"]["models"] == ["llama"]
    limits = {k["name"]: k for k in (await (await client.get("/admin/limits", headers=ADMIN)).json())["keys"]}
    assert limits["friend"]["rpm"] == 30
    await client.close()
    again = await start(aiohttp_client, tmp_path, doc)
    assert await chat(again, secret) == 200


async def test_revoke_runtime_and_config_keys(ollama, aiohttp_client, tmp_path):
    """Revoking works at once for a runtime key and for a key from the config file, and a reload of the
    unchanged config file does not bring the config key back."""
    client = await start(aiohttp_client, tmp_path, doc_for(ollama, tmp_path))
    secret = (await (await client.post("/admin/keys", json={"name": "tablet"}, headers=ADMIN)).json())["key"]
    for name in ("tablet", "phone"):
        resp = await client.post(f"/admin/keys/{name}/revoke", headers=ADMIN)
        assert resp.status == 200, await resp.text()
    assert await chat(client, secret) == 401 and await chat(client, "sk-phone") == 401
    assert (await client.post("/admin/reload", headers=ADMIN)).status == 200
    assert await chat(client, "sk-phone") == 401
    listed = {k["name"]: k for k in (await (await client.get("/admin/keys", headers=ADMIN)).json())["keys"]}
    assert listed["phone"]["revoked"] and listed["tablet"]["revoked"] and not listed["admin"]["revoked"]
    assert (await client.post("/admin/keys/nobody/revoke", headers=ADMIN)).status == 404


async def test_first_key_must_be_admin(ollama, gateway):
    """With no keys yet, the first key made from the UI must be an admin key (it turns keys on for the
    dashboard too); an admin one then guards everything."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/admin/keys", json={"name": "friend"})
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "admin"
    resp = await client.post("/admin/keys", json={"name": "owner", "admin": True})
    assert resp.status == 201
    assert (await client.get("/admin/usage")).status == 401
    secret = (await resp.json())["key"]
    assert (await client.get("/admin/usage", headers={"authorization": f"Bearer {secret}"})).status == 200
