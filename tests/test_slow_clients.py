"""Slow, stalled and greedy clients against the real listening side (http/listen.py): connections that
never finish a request are closed, one address cannot hold every socket, and aiohttp's own answers to
malformed HTTP are JSON with one log line.

The server runs as the daemon runs it (listen.runner + a TCP site) in the test's loop; each wait is
for the server to answer or close, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from litegate.config import ConfigHolder, from_dict
from litegate.http import listen
from litegate.http.app import create_app
from tests.conftest import ollama_config

SHORT = 0.3  # seconds: idle and body timeouts in these tests; the defaults are 15 s and 60 s
WAIT = 10  # upper bound for "the server closes it": a regression shows as a timeout, not a hang


@pytest.fixture
async def served(tmp_path):
    """Start litegate on a loopback port as the daemon does; returns (port, app)."""
    runners: list[web.AppRunner] = []

    async def start(doc: dict[str, Any]) -> int:
        doc = {**doc, "usage": {"enabled": False}}
        path = tmp_path / "litegate.json"
        path.write_text(json.dumps(doc))
        app = create_app(ConfigHolder(str(path), from_dict(doc, source=str(path), env={})))
        runner = listen.runner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner.addresses[0][1]

    yield start
    for runner in runners:
        await runner.cleanup()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    return await asyncio.wait_for(reader.read(), WAIT)


def config(ollama, **server: Any) -> dict[str, Any]:
    return ollama_config(ollama, server={"idle_timeout_s": SHORT, "body_timeout_s": SHORT, **server})


async def test_slowloris_headers_are_cut_off(ollama, served):
    """20 connections that send half their headers and stall are all closed after server.idle_timeout_s
    (they used to stay open for aiohttp's 75 s keep-alive default and longer)."""
    port = await served(config(ollama))
    conns = [await connect(port) for _ in range(20)]
    for _, writer in conns:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    results = await asyncio.gather(*(closed_by_server(reader) for reader, _ in conns))
    assert results == [b""] * 20  # closed without an answer: there was no request to answer
    for _, writer in conns:
        writer.close()


async def test_idle_keep_alive_connection_is_closed(ollama, served):
    """A keep-alive connection with nothing more to say is closed after server.idle_timeout_s."""
    port = await served(config(ollama))
    reader, writer = await connect(port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 200")
    rest = await closed_by_server(reader)  # the body, then the close
    assert b"status" in rest
    writer.close()


async def test_half_sent_body_gets_408_and_the_connection_closes(ollama, served):
    """Headers promising 100 bytes, then 10 and silence: a 408 in the OpenAI shape after
    server.body_timeout_s, and the connection ends."""
    port = await served(config(ollama))
    reader, writer = await connect(port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"model\": ")
    raw = await closed_by_server(reader)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), raw[:200]
    assert json.loads(body)["error"]["code"] == "request_timeout"
    writer.close()


async def test_one_address_cannot_hold_every_connection(ollama, served):
    """With server.max_connections_per_peer 3, a fourth connection from the same address gets a 503 in the
    OpenAI shape and is closed at once; when one of the three goes, a new one is served."""
    port = await served(config(ollama, idle_timeout_s=30, max_connections_per_peer=3))
    held = [await connect(port) for _ in range(3)]
    reader, writer = await connect(port)
    raw = await closed_by_server(reader)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), raw[:200]
    assert json.loads(body)["error"]["code"] == "too_many_connections"
    writer.close()
    _, first = held.pop()
    first.close()
    await first.wait_closed()
    reader, writer = await connect(port)  # retried until the server has seen the close
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = await closed_by_server(reader)
    while raw.startswith(b"HTTP/1.1 503"):
        writer.close()
        reader, writer = await connect(port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = await closed_by_server(reader)
    assert raw.startswith(b"HTTP/1.1 200")
    for _, w in held + [(None, writer)]:
        w.close()


async def test_trusted_proxy_is_exempt_from_the_connection_cap(ollama, served):
    """A reverse proxy listed in server.trusted_proxies carries many clients: it is not capped."""
    port = await served(config(ollama, idle_timeout_s=30, max_connections_per_peer=2,
                               trusted_proxies=["127.0.0.1"]))
    held = [await connect(port) for _ in range(4)]
    reader, writer = held[-1]
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 200")
    for _, w in held:
        w.close()


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
async def test_malformed_http_is_a_json_400_and_one_log_line(ollama, served, capsys, request_bytes):
    """aiohttp's own refusal of malformed HTTP (bad request line, oversized header, bad chunking) is a
    400 in the OpenAI error shape, logged as one bad_http_request line, with no traceback."""
    port = await served(config(ollama))
    reader, writer = await connect(port)
    writer.write(request_bytes)
    raw = await closed_by_server(reader)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400", raw[:300]
    assert b"application/json" in head.lower()
    assert json.loads(body)["error"]["code"] == "bad_http_request"
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert output.count("bad_http_request") == 1 and "Traceback" not in output
