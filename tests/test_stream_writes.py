"""Streams leave in as few socket writes as the backend's reads allow, and never wait for more.

The edge queues each event's frames and a pump writes what is queued whenever the handler waits
for the backend: a burst read at once goes out in one write, a token arriving alone goes out
before the next one arrives.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from tests.conftest import sse_events

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunk(obj) -> bytes:
    data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def delta(text: str | None, finish: str | None = None) -> bytes:
    d = {} if text is None else {"content": text}
    return chunk({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                  "choices": [{"index": 0, "delta": d, "finish_reason": finish}]})


WORDS = [f"w{i} " for i in range(20)]
TAIL = delta(None, "stop") + chunk({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                    "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 20,
                                                             "total_tokens": 23}}) + chunk(b"[DONE]") + b"0\r\n\r\n"


class Backend:
    """An OpenAI-compatible backend on a raw socket: `burst` sends the whole stream in one write;
    otherwise the first token goes alone and the rest waits for `go`."""

    def __init__(self, burst: bool) -> None:
        self.burst, self.go = burst, asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
        if self.burst:
            writer.write(HEAD + b"".join(delta(w) for w in WORDS) + TAIL)
        else:
            writer.write(HEAD + delta(WORDS[0]))
            await writer.drain()
            await self.go.wait()
            writer.write(b"".join(delta(w) for w in WORDS[1:]) + TAIL)
        await writer.drain()
        writer.close()


@pytest.fixture
async def backend_url():
    servers = []

    async def start(backend: Backend) -> str:
        server = await asyncio.start_server(backend.serve, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"

    yield start
    for s in servers:
        s.close()


def config(url: str) -> dict:
    return {"models": [{"name": "m", "provider": "openai", "model": "m", "api_base": url}],
            "router": {"num_retries": 0}}


async def test_a_burst_read_leaves_in_a_few_writes(gateway, backend_url, monkeypatch):
    """20 tokens that arrive in one read reach the client whole, in at most 3 writes (not 24); the last
    frames may leave with the end of the body (write_eof with data), which counts as a write too."""
    writes = []
    original, original_eof = web.StreamResponse.write, web.StreamResponse.write_eof

    async def counting(self, data):
        writes.append(len(data))
        return await original(self, data)

    async def counting_eof(self, data=b""):
        if data:
            writes.append(len(data))
        return await original_eof(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", counting)
    monkeypatch.setattr(web.StreamResponse, "write_eof", counting_eof)
    client = await gateway(config(await backend_url(Backend(burst=True))))
    resp = await client.post("/v1/chat/completions", json={"model": "m", "stream": True,
                                                           "messages": [{"role": "user", "content": "hi"}]})
    events, _ = sse_events(await resp.read())
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in events
                   if isinstance(c, dict) and c.get("choices"))
    assert text == "".join(WORDS) and events[-1] == "[DONE]"
    assert 1 <= len(writes) <= 3, writes


async def test_a_lone_token_is_not_held_for_the_next(gateway, backend_url):
    """The first token reaches the client while the backend is still holding back the second."""
    backend = Backend(burst=False)
    client = await gateway(config(await backend_url(backend)))
    resp = await client.post("/v1/chat/completions", json={"model": "m", "stream": True,
                                                           "messages": [{"role": "user", "content": "hi"}]})
    seen = b""
    while b"w0 " not in seen:  # would hang (and time out) if litegate waited for more
        seen += await asyncio.wait_for(resp.content.readany(), 10)
    assert b"w1 " not in seen
    backend.go.set()
    rest = await resp.read()
    assert b"w19 " in rest and b"[DONE]" in rest
