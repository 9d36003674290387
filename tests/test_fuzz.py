"""Property-based fuzzing of every inbound face (Hypothesis): whatever a client sends, litegate answers
in a face's shape with a client-error or a backend status, never a 500 or a dropped connection.

Every POST route the app serves outside /admin and /ui is fuzzed, so a face added to http.app.ROUTES is
covered without touching this file. Bodies are arbitrary JSON, request-like JSON with wild field values,
and raw bytes; the auth headers get arbitrary bytes. The app runs on its own loop here (Hypothesis drives
each example synchronously) with a fake Ollama behind it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litegate.config import ConfigHolder, from_dict
from litegate.http.app import create_app
from tests.conftest import ollama_config
from tests.fakes import ollama as fake_ollama

EXAMPLES = 60
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
KEYS = {"auth": {"keys": [{"name": "admin", "key_env": "K_ADMIN", "admin": True}]}}

EDGES = st.sampled_from([0, -1, (1 << 63) - 1, 1 << 63, 1 << 64, 1 << 70, -(1 << 70), 1e308, -0.0])
scalars = (st.none() | st.booleans() | EDGES | st.integers(min_value=-(1 << 70), max_value=1 << 70)
           | st.floats(allow_nan=False) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
MODELS = st.sampled_from(["llama", "missing", "crash", "busy", "thinking", "tools-before-done", "", "x" * 300])
ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "robot"])
message = st.fixed_dictionaries({"role": ROLES, "content": json_values},
                                optional={"tool_calls": json_values, "tool_call_id": json_values, "name": json_values})
FIELDS = ("stream", "max_tokens", "max_completion_tokens", "n", "temperature", "top_p", "stop", "seed", "tools",
          "tool_choice", "response_format", "stream_options", "logprobs", "top_logprobs", "reasoning_effort",
          "web_search_options", "prompt", "input", "suffix", "encoding_format", "dimensions", "system",
          "max_output_tokens", "options", "format", "keep_alive", "think")
request_like = st.fixed_dictionaries(
    {"model": MODELS | json_values, "messages": st.lists(message, max_size=3) | json_values},
    optional={name: json_values for name in FIELDS} | {"stream": st.booleans(), "input": st.text(max_size=30),
                                                       "prompt": st.text(max_size=30)})
bodies = (request_like.map(lambda d: json.dumps(d).encode()) | json_values.map(lambda v: json.dumps(v).encode())
          | st.binary(max_size=120))


class Served:
    """A litegate and a fake Ollama on a private event loop, driven synchronously."""

    def __init__(self, tmp_path, doc: dict, env: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.run(self._start(tmp_path, doc, env))

    async def _start(self, tmp_path, doc: dict, env: dict[str, str]) -> None:
        self.backend = TestServer(fake_ollama.make_app())
        await self.backend.start_server()
        doc = ollama_config(self.backend, usage={"enabled": False}, **doc)
        path = tmp_path / "litegate.json"
        path.write_text(json.dumps(doc))
        app = create_app(ConfigHolder(str(path), from_dict(doc, source=str(path), env=env)))
        self.client = TestClient(TestServer(app))
        await self.client.start_server()
        self.paths = sorted({r.resource.canonical for r in app.router.routes() if r.method == "POST"
                             and r.resource is not None and not r.resource.canonical.startswith(("/admin", "/ui"))})

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.backend.app[fake_ollama.GATE].set()
        self.run(self.client.close())
        self.run(self.backend.close())
        self.loop.close()


@pytest.fixture
def served(tmp_path) -> Iterator[Served]:
    s = Served(tmp_path, {}, {})
    yield s
    s.close()


def assert_answered(status: int, content_type: str, body: bytes, what: str) -> None:
    assert status != 500, f"{what}: 500 {body[:300]!r}"
    assert status < 500 or status in (502, 503, 504), f"{what}: {status} {body[:300]!r}"
    if status >= 400:
        assert content_type.startswith("application/json"), f"{what}: {status} {content_type} {body[:200]!r}"
        json.loads(body)


def test_every_face_is_fuzzed(served):
    """The fuzzed routes include every face's chat path that exists (a face with no POST route would be a
    gap in this suite, not a pass)."""
    assert "/v1/chat/completions" in served.paths and len(served.paths) >= 3


def test_fuzzed_bodies_never_get_a_500(served):
    """Arbitrary JSON, request-like JSON with wild values (huge ints, deep-ish nesting, wrong types,
    unknown roles and models) and raw bytes, to every POST route: a 2xx or a JSON error, never a 500."""

    async def send(path: str, body: bytes) -> tuple[int, str, bytes]:
        async with served.client.post(path, data=body, headers={"content-type": "application/json"}) as resp:
            return resp.status, resp.headers.get("content-type", ""), await resp.read()

    @SETTINGS
    @given(path=st.sampled_from(served.paths), body=bodies)
    def check(path: str, body: bytes) -> None:
        assert_answered(*served.run(send(path, body)), f"POST {path} {body[:200]!r}")

    check()


def test_fuzzed_auth_headers_never_get_a_500(tmp_path):
    """Arbitrary bytes as Authorization or x-api-key (keys configured): 400 or 401, never a 500."""
    served = Served(tmp_path, KEYS, {"K_ADMIN": "sk-admin"})
    port = served.client.server.port

    async def send(name: bytes, value: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + name + b": " + value + b"\r\nConnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        return data

    header_value = st.binary(min_size=1, max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b and b"\0" not in b)

    @SETTINGS
    @given(name=st.sampled_from([b"Authorization", b"x-api-key"]), value=header_value)
    def check(name: bytes, value: bytes) -> None:
        raw = served.run(send(name, value))
        status = raw.split(b" ", 2)[1]
        assert status in (b"400", b"401"), raw[:300]

    try:
        check()
    finally:
        served.close()
