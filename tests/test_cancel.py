"""Cancel-on-disconnect: when the client goes away, the backend request is cancelled at once."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.conftest import ollama_config
from tests.fakes import ollama as fake_ollama
from tests.fakes import openai_compat as fake_openai

USER = [{"role": "user", "content": "hello"}]


async def wait_for(predicate, timeout: float = 5.0) -> None:
    """Poll a condition on the loop (the backend notices a closed socket asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("stream", [True, False])
async def test_disconnect_cancels_ollama_request(ollama, gateway, stream):
    """Closing the client connection mid-answer cancels the Ollama request (streaming and not)."""
    client = await gateway(ollama_config(ollama))
    url = client.make_url("/v1/chat/completions")
    async with aiohttp.ClientSession() as session:
        if stream:
            resp = await session.post(url, json={"model": "slow", "messages": USER, "stream": True})
            assert resp.status == 200
            await resp.content.readuntil(b"\n\n")  # the first chunk arrived: the backend is mid-answer
            resp.close()
        else:
            pending = asyncio.ensure_future(session.post(url, json={"model": "slow", "messages": USER}))
            await wait_for(lambda: any(r["path"] == "/api/chat" for r in ollama.app[fake_ollama.REQUESTS]))
            pending.cancel()  # the client gives up before any header: its connection closes
            await asyncio.gather(pending, return_exceptions=True)
    await wait_for(lambda: ollama.app[fake_ollama.CANCELLED] == ["slow:latest"])
    assert not ollama.app[fake_ollama.GATE].is_set()


async def test_disconnect_cancels_openai_stream(oai, gateway):
    """The same holds for an OpenAI-compatible backend."""
    client = await gateway({"models": [{"name": "slow", "provider": "openai", "model": "slow",
                                        "api_base": str(oai.make_url("/v1")), "api_key_env": "K"}]}, env={"K": "sk-backend"})
    async with aiohttp.ClientSession() as session:
        resp = await session.post(client.make_url("/v1/chat/completions"),
                                  json={"model": "slow", "messages": USER, "stream": True})
        await resp.content.readuntil(b"\n\n")
        resp.close()
    await wait_for(lambda: oai.app[fake_openai.CANCELLED] == ["slow"])


async def test_disconnect_while_model_loads(loading_ollama, gateway):
    """A client that leaves during the keep-alive phase (model loading) cancels the pending backend request."""
    ollama = await loading_ollama(30.0)
    client = await gateway(ollama_config(ollama, server={"sse_keepalive_s": 0.05}))
    async with aiohttp.ClientSession() as session:
        resp = await session.post(client.make_url("/v1/chat/completions"),
                                  json={"model": "loading", "messages": USER, "stream": True})
        assert await resp.content.readuntil(b"\n\n") == b": keep-alive\n\n"
        resp.close()
    await wait_for(lambda: ollama.app[fake_ollama.CANCELLED] == ["loading:latest"])
