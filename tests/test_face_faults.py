"""The upstream-fault matrix seen from every inbound face: a backend that fails before the first byte
is a whole error in the face's own shape (never a 500); one that fails after it ends the stream with
the face's own error frame, without the face's normal end, and the body ends (nothing hangs).

Two providers behind each face (tests/fakes/faulty.py): Ollama and Anthropic, so the native
pass-through paths (Ollama face -> Ollama, Anthropic face -> Anthropic) are covered beside the
translated ones; what differs per provider is test_upstream_faults.py's matter.
"""

from __future__ import annotations

import json

import pytest

from litegate.http.appkeys import HOLDER
from tests.conftest import base
from tests.fakes import faulty

# face: (path, request body for a model, the marker of a stream that ended normally)
FACES = {
    "openai": ("/v1/chat/completions",
               lambda m: {"model": m, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
               b"[DONE]"),
    "anthropic": ("/v1/messages",
                  lambda m: {"model": m, "stream": True, "max_tokens": 64,
                             "messages": [{"role": "user", "content": "hi"}]},
                  b"message_stop"),
    "responses": ("/v1/responses", lambda m: {"model": m, "stream": True, "input": "hi"}, b"response.completed"),
    "ollama": ("/api/chat", lambda m: {"model": m, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
               b'"done":true'),
}
AFTER_FIRST_BYTE = ("hang", "early-eof", "wrong-shape")
BEFORE_FIRST_BYTE = ("html", "garbage", "server-error", "huge")


@pytest.fixture(params=["ollama", "anthropic"])
async def faulty_gateway(request, aiohttp_server, gateway):
    backend = await aiohttp_server(faulty.make_app())
    models = [{"name": fault, "provider": request.param, "model": fault, "api_base": base(backend),
               "timeouts": {"connect_s": 2, "first_token_s": 0.2, "total_s": 10},
               **({"api_key_env": "K"} if request.param == "anthropic" else {})}
              for fault in ("ok", *AFTER_FIRST_BYTE, *BEFORE_FIRST_BYTE)]
    client = await gateway({"models": models, "router": {"num_retries": 0, "ollama_poll_s": 0},
                            "server": {"max_upstream_reply_mb": 1}, "usage": {"enabled": False}}, env={"K": "k"})
    yield client
    backend.app[faulty.GATE].set()


def label(client, name: str) -> str:
    return next(d.id for d in client.server.app[HOLDER].current.models if d.name == name)


@pytest.mark.parametrize("face", sorted(FACES))
async def test_a_healthy_stream_ends_normally_on_every_face(face, faulty_gateway):
    """The control case: the same backend answering well gives the face's normal end."""
    path, body, end = FACES[face]
    resp = await faulty_gateway.post(path, json=body("ok"))
    raw = await resp.read()
    assert resp.status == 200 and end in raw, raw[-300:]


@pytest.mark.parametrize("fault", AFTER_FIRST_BYTE)
@pytest.mark.parametrize("face", sorted(FACES))
async def test_a_fault_after_the_first_byte_is_the_faces_error_frame(face, fault, faulty_gateway):
    """200, the answer had begun, the last frame is the face's error naming the deployment, and the
    face's normal end never comes."""
    path, body, end = FACES[face]
    resp = await faulty_gateway.post(path, json=body(fault))
    raw = await resp.read()  # returns: the stream ended
    assert resp.status == 200, raw[:300]
    assert b"Hel" in raw and end not in raw, raw[-300:]
    last = [line for line in raw.strip().split(b"\n") if line.strip()][-1]
    assert b"error" in last or b"failed" in last, last
    assert label(faulty_gateway, fault).encode() in last, last


@pytest.mark.parametrize("fault", BEFORE_FIRST_BYTE)
@pytest.mark.parametrize("face", sorted(FACES))
async def test_a_fault_before_the_first_byte_is_a_whole_error_in_the_faces_shape(face, fault, faulty_gateway):
    """A whole JSON error (no 500) whose text names the deployment."""
    path, body, _ = FACES[face]
    resp = await faulty_gateway.post(path, json=body(fault))
    raw = await resp.read()
    assert resp.status >= 400 and resp.status != 500, raw[:300]
    assert resp.headers["content-type"].startswith("application/json")
    assert label(faulty_gateway, fault) in json.dumps(json.loads(raw)), raw[:300]
