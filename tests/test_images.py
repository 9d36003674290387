"""Image URLs for backends that cannot fetch them: fetched by litegate with a size cap, a timeout
and no access to private addresses unless the owner allows it."""

from __future__ import annotations

import asyncio
import base64

import pytest
from aiohttp import web

from tests.conftest import ollama_config
from tests.fakes import ollama as fake

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
async def images(aiohttp_server):
    gate = asyncio.Event()

    async def png(request):
        return web.Response(body=PNG, content_type="image/png")

    async def big(request):
        return web.Response(body=b"\0" * 300_000, content_type="image/png")

    async def html(request):
        return web.Response(text="<html></html>", content_type="text/html")

    async def slow(request):
        await gate.wait()
        return web.Response(body=PNG, content_type="image/png")

    async def moved(request):
        raise web.HTTPFound("/cat.png")

    app = web.Application()
    app.router.add_get("/cat.png", png)
    app.router.add_get("/big.png", big)
    app.router.add_get("/page", html)
    app.router.add_get("/slow.png", slow)
    app.router.add_get("/moved", moved)
    server = await aiohttp_server(app)
    yield server
    gate.set()


def image_message(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


async def post(client, url: str):
    return await client.post("/v1/chat/completions", json={"model": "llama", "messages": image_message(url)})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_address_refused_by_default(ollama, gateway, images, host):
    """By default an image URL on a private or loopback address (literal or by DNS) is a 400 naming the part."""
    client = await gateway(ollama_config(ollama))
    resp = await post(client, f"http://{host}:{images.port}/cat.png")
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "messages[0].content[1].image_url" and "private" in err["message"]
    assert ollama.app[fake.REQUESTS] == []


async def test_fetched_and_inlined_when_allowed(ollama, gateway, images):
    """With images.allow_private, the image is fetched (following a redirect) and sent to Ollama as base64."""
    client = await gateway(ollama_config(ollama, images={"allow_private": True}))
    resp = await post(client, str(images.make_url("/moved")))
    assert resp.status == 200
    sent = ollama.app[fake.REQUESTS][-1]["json"]["messages"][0]
    assert sent["images"] == [base64.b64encode(PNG).decode()]


@pytest.mark.parametrize("path,reason", [("/big.png", "larger than"), ("/page", "not an image"),
                                         ("/slow.png", "no answer within"), ("/missing.png", "HTTP 404")])
async def test_fetch_limits(ollama, gateway, images, path, reason):
    """Oversized, non-image, slow and missing images are 400s that say why."""
    client = await gateway(ollama_config(ollama, images={"allow_private": True, "max_mb": 0.1, "timeout_s": 0.2}))
    resp = await post(client, str(images.make_url(path)))
    assert resp.status == 400
    assert reason in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.png", "http://169.254.169.254/latest",
                                 "http://[::1]/x.png", "http://10.0.0.1/x.png"])
async def test_non_http_and_private_literals_refused(ollama, gateway, url):
    """Non-HTTP schemes and private IP literals are refused without any connection attempt."""
    client = await gateway(ollama_config(ollama))
    resp = await post(client, url)
    assert resp.status == 400
