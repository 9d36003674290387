"""The dashboard with state shared through Redis, in headless Chromium: the Overview's Team card shows
every instance's requests, and the Backends card says whether the shared state store is reachable.
Skipped without Chromium or redis-server (the reasons say which)."""

from __future__ import annotations

import json

import pytest

from litegate.config import ConfigHolder, from_dict
from litegate.http import appkeys
from litegate.http.app import create_app
from tests.conftest import ollama_config
from tests.redis_server import RedisServer, need_redis
from tests.test_dashboard_browser import CHROMIUM, ENV, USER, browser, chromium, sign_in  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: install the Debian "
                                                               "package `chromium` to run the browser tests")


@pytest.fixture
async def redis_server(tmp_path):
    need_redis()
    server = RedisServer(tmp_path / "redis")
    await server.start()
    yield server
    await server.stop()


async def instance(aiohttp_client, tmp_path, ollama, redis_url: str, name: str, requests: int):
    doc = ollama_config(ollama, auth={"keys": [{"name": "admin", "key_env": "K_ADMIN", "admin": True},
                                               {"name": "laptop", "key_env": "K_LAPTOP"}]},
                        state={"redis_url": redis_url, "key_prefix": "ui:", "instance": name, "retry_s": 0.05})
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**doc, "usage": {"path": str(tmp_path / name)}}))
    app = create_app(ConfigHolder(str(path), from_dict(json.loads(path.read_text()), source=str(path), env=ENV),
                                  env=ENV))
    client = await aiohttp_client(app)
    for _ in range(requests):
        resp = await client.post("/v1/chat/completions", json={"model": "llama", "messages": USER},
                                 headers={"authorization": f"Bearer {ENV['K_LAPTOP']}"})
        assert resp.status == 200
    await app[appkeys.SERVICES].state.flush()
    return client


async def test_overview_shows_the_team_and_the_shared_state(browser, redis_server, aiohttp_client, tmp_path, ollama):
    """mac-a's Overview lists mac-a (2 requests), mac-b (3) and all instances (5), and its Backends card
    says shared state connected; with Redis stopped it says unreachable."""
    a = await instance(aiohttp_client, tmp_path, ollama, redis_server.url, "mac-a", 2)
    await instance(aiohttp_client, tmp_path, ollama, redis_server.url, "mac-b", 3)
    url = str(a.make_url("")).rstrip("/")
    tab = await browser()
    await sign_in(tab, url)
    await tab.goto(url + "/ui")
    await tab.ready()
    await tab.wait_for("document.body.innerText.includes('Team (all instances)')")
    rows = await tab.eval("[...document.querySelectorAll('section.card')].find(s => s.innerText.startsWith("
                          "'Team')).querySelectorAll('tbody tr').length")
    team = await tab.eval("[...document.querySelectorAll('section.card')].find(s => s.innerText.startsWith("
                          "'Team')).innerText")
    assert rows == 3
    for line in ("mac-a\t2", "mac-b\t3", "all instances\t5"):
        assert line in team, team
    assert "shared state connected" in await tab.text("[data-field=state]")

    await redis_server.stop()
    resp = await a.post("/v1/chat/completions", json={"model": "llama", "messages": USER},
                        headers={"authorization": f"Bearer {ENV['K_LAPTOP']}"})
    assert resp.status == 200  # served on local counts; mac-a now knows Redis is away
    await tab.goto(url + "/ui")
    await tab.ready()
    state = await tab.text("[data-field=state]")
    assert "shared state unreachable" in state and "reconnecting" in state
    assert "The shared state store is unreachable." in await tab.eval("document.body.innerText")
    assert not tab.errors, tab.errors
