"""Hostile and odd input (issue 21): each answer is a 4xx in the face's shape, never a 500, a
traceback, a ballooning process, or something echoed back whole.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib

import pytest

from litegate.http.appkeys import HOLDER
from tests.conftest import base, ollama_config, sse_events
from tests.fakes import faulty
from tests.fakes import ollama as fake_ollama

USER = [{"role": "user", "content": "hello"}]
KEYS = {"auth": {"keys": [{"name": "admin", "key_env": "K_ADMIN", "admin": True}]}}
ENV = {"K_ADMIN": "sk-admin"}


async def error_of(resp, status: int) -> dict:
    body = await resp.read()
    assert resp.status == status, body[:500]
    assert resp.headers["content-type"].startswith("application/json")
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


async def raw_exchange(server, request: bytes) -> bytes:
    """Send bytes as they are (no client library to clean them up) and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


def post_json(body: bytes, path: str = "/v1/chat/completions", extra: bytes = b"") -> bytes:
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra +
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


# ---------------------------------------------------------------- bodies
@pytest.mark.parametrize("field, depth", [("zz", 100_000), ("tools", 300), ("web_search_options", 300)])
async def test_deep_nesting_is_400_before_decoding(ollama, gateway, field, depth):
    """Arrays nested 100,000 deep in an unknown field, or 300 deep where litegate keeps the value (tool
    parameters, web_search_options), are a 400 naming server.max_json_depth, not a 500."""
    client = await gateway(ollama_config(ollama))
    nest = b"[" * depth + b"]" * depth
    if field == "tools":
        nest = b'[{"type":"function","function":{"name":"f","parameters":{"x":' + nest + b"}}}]"
    elif field == "web_search_options":
        nest = b'{"x":' + nest + b"}"
    body = b'{"model":"llama","messages":[{"role":"user","content":"hi"}],"' + field.encode() + b'":' + nest + b"}"
    err = await error_of(await client.post("/v1/chat/completions", data=body,
                                           headers={"content-type": "application/json"}), 400)
    assert "max_json_depth" in err["message"]
    assert ollama.app[fake_ollama.REQUESTS] == []


@pytest.mark.parametrize("body", [
    b'{"model":"llama","messages":[{"role":"user","content":"hi"}],"max_tokens":1180591620717411303424}',
    b'{"model":"llama","messages":[{"role":"user","content":"hi"}],"metadata":{"a":"b"},'
    b'"tools":[{"type":"function","function":{"name":"f","parameters":{"default":-99999999999999999999999}}}]}',
])
async def test_integers_past_64_bits_are_400(ollama, gateway, body):
    """2**70 as max_tokens, or a huge integer inside tool parameters (which orjson could not write again
    to the backend) is a 400; the same digits inside a string are just text."""
    client = await gateway(ollama_config(ollama))
    err = await error_of(await client.post("/v1/chat/completions", data=body,
                                           headers={"content-type": "application/json"}), 400)
    assert "64-bit" in err["message"]
    fine = {"model": "llama", "messages": [{"role": "user", "content": "order 1180591620717411303424"}]}
    assert (await client.post("/v1/chat/completions", json=fine)).status == 200


@pytest.mark.parametrize("field, value", [("max_tokens", -1), ("max_tokens", 0), ("max_completion_tokens", -5),
                                          ("n", -1), ("n", 0), ("top_logprobs", 21)])
async def test_values_openai_rejects_are_400_and_never_sent(ollama, gateway, field, value):
    """max_tokens -1 would reach Ollama as num_predict -1 (no limit): out-of-range values are a 400 naming
    the field, and the backend hears nothing."""
    client = await gateway(ollama_config(ollama))
    err = await error_of(await client.post("/v1/chat/completions",
                                           json={"model": "llama", "messages": USER, field: value}), 400)
    assert err["param"] == field
    assert ollama.app[fake_ollama.REQUESTS] == []


async def test_body_that_is_not_its_content_encoding_is_400(ollama, gateway):
    """`Content-Encoding: gzip` on a body that is not gzip is a 400 saying so, not a 500."""
    client = await gateway(ollama_config(ollama))
    resp = await client.post("/v1/chat/completions", data=b'{"model":"llama"}',
                             headers={"content-type": "application/json", "content-encoding": "gzip"})
    err = await error_of(resp, 400)
    assert "gzip" in err["message"]
    good = gzip.compress(json.dumps({"model": "llama", "messages": USER}).encode())
    resp = await client.post("/v1/chat/completions", data=good,
                             headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert resp.status == 200  # a real gzip body is still welcome


async def test_gzip_bomb_is_capped_while_inflating(ollama, gateway):
    """A 256 KB gzip body that would inflate to 256 MB is refused with 413 once the inflated bytes pass
    server.max_body_mb, and litegate never holds much more than that cap of it."""
    client = await gateway(ollama_config(ollama, server={"max_body_mb": 4}))
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(bytes(256 << 20)) + packer.flush()  # 256 KB that inflate to 256 MB
    tracemalloc.start()
    try:
        resp = await client.post("/v1/chat/completions", data=bomb,
                                 headers={"content-type": "application/json", "content-encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await error_of(resp, 413)
    assert peak < 8 << 20, f"peak {peak / (1 << 20):.1f} MB while refusing a bomb capped at 4 MB"


async def test_chunked_body_over_the_cap_is_413_when_it_arrives_whole(ollama, gateway):
    """A chunked body with no Content-Length, all of it there with the headers and larger than
    server.max_body_mb, is a 413: the body taken whole from aiohttp's buffer (no wait, no timer) is
    checked against the cap as a body read piece by piece is."""
    client = await gateway(ollama_config(ollama, server={"max_body_mb": 0.01}))  # ~10 KB
    body = json.dumps({"model": "llama", "messages": USER, "pad": "x" * 20_000}).encode()

    async def chunks():
        yield body

    resp = await client.post("/v1/chat/completions", data=chunks(), headers={"content-type": "application/json"})
    err = await error_of(resp, 413)
    assert "max_body_mb" in err["message"]


async def test_non_utf8_login_form_is_400_on_the_form(ollama, gateway):
    """A sign-in form whose bytes are not UTF-8 gets the form back with a 400, not a traceback."""
    client = await gateway(ollama_config(ollama, **KEYS), env=ENV)
    resp = await client.post("/ui/login", data=b"key=\xff\xfe&next=/ui",
                             headers={"content-type": "application/x-www-form-urlencoded"}, allow_redirects=False)
    assert resp.status == 400 and "UTF-8" in await resp.text()


# ---------------------------------------------------------------- headers, names, URLs
@pytest.mark.parametrize("header", [b"Authorization: Bearer sk-\xff\xfe", b"x-api-key: \xc3\x28"])
async def test_invalid_utf8_in_auth_headers_is_400(ollama, gateway, header):
    """Undecodable bytes in Authorization or x-api-key are a 400 in the OpenAI shape (aiohttp keeps them as
    surrogates, which no key comparison can encode)."""
    client = await gateway(ollama_config(ollama, **KEYS), env=ENV)
    raw = await raw_exchange(client.server, b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + header +
                             b"\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), raw[:300]
    assert json.loads(body)["error"]["code"] == "invalid_api_key"


async def test_huge_model_name_is_bounded_in_reply_and_log(ollama, gateway, capsys):
    """A 1 MB model name gets a small 404 (the name clipped) and a small access-log line."""
    client = await gateway(ollama_config(ollama))
    name = "m" * (1 << 20)
    err = await error_of(await client.post("/v1/chat/completions", json={"model": name, "messages": USER}), 404)
    assert len(err["message"]) < 500 and "characters" in err["message"]
    lines = [line for line in capsys.readouterr().out.splitlines() if "request" in line and "mmmm" in line]
    assert lines and max(map(len, lines)) < 2000
    err = await error_of(await client.get("/v1/models/" + "q" * 8000), 404)
    assert len(err["message"]) < 500


async def test_login_next_with_control_characters_is_refused(ollama, gateway):
    """/ui/login?next= with CR/LF (a header-splitting attempt) answers normally and sends the browser to
    /ui, never into a Location header carrying the line break."""
    client = await gateway(ollama_config(ollama))  # no keys: the sign-in page redirects to next at once
    resp = await client.get("/ui/login?next=/ui%0d%0aSet-Cookie:%20x=1", allow_redirects=False)
    assert resp.status == 303 and resp.headers["location"] == "/ui"
    client = await gateway(ollama_config(ollama, **KEYS), env=ENV)
    resp = await client.get("/ui/login?next=/ui/keys%0aX", allow_redirects=False)
    assert resp.status == 200 and 'value="/ui"' in await resp.text()


# ---------------------------------------------------------------- odd upstream values
async def test_odd_usage_value_mid_stream_is_an_error_frame_and_the_connection_ends(aiohttp_server, gateway):
    """An OpenAI-compatible backend whose usage says cached_tokens "x" after the answer began: the client
    gets the error event naming the deployment (no [DONE]), the chunked body ends properly and the server
    closes the keep-alive connection, so nothing hangs. Whole replies: a 502 naming it."""
    backend = await aiohttp_server(faulty.make_app())
    client = await gateway({"models": [{"name": "odd", "provider": "openai", "model": "wrong-shape",
                                        "api_base": base(backend) + "/v1"}], "router": {"num_retries": 0}})
    label = client.server.app[HOLDER].current.models[0].id
    err = await error_of(await client.post("/v1/chat/completions", json={"model": "odd", "messages": USER}), 502)
    assert label in err["message"]
    body = json.dumps({"model": "odd", "stream": True, "messages": USER}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)  # keep-alive: the server must end it
    raw = await asyncio.wait_for(reader.read(), 10)  # returns only once the server has closed
    writer.close()
    head, _, chunked = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    assert chunked.endswith(b"0\r\n\r\n") and b"HTTP/1.1 500" not in chunked
    events, _ = sse_events(b"".join(chunked.split(b"\r\n")[1::2]))
    assert "[DONE]" not in events and label in events[-1]["error"]["message"]


async def test_invalid_base64_from_an_embeddings_backend_is_502(aiohttp_server, gateway):
    """An upstream embedding that is not base64 is the backend's fault: 502 naming the deployment."""
    backend = await aiohttp_server(faulty.make_app())
    client = await gateway({"models": [{"name": "emb", "provider": "openai", "model": "ok",
                                        "api_base": base(backend) + "/v1"}], "router": {"num_retries": 0}})
    label = client.server.app[HOLDER].current.models[0].id
    err = await error_of(await client.post("/v1/embeddings", json={"model": "emb", "input": "hi"}), 502)
    assert label in err["message"]

