"""Shared fixtures: fake backends on loopback, a litegate app built from a config dict, and the
OpenAI spec validator (skipped with a reason when ../shared is absent)."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from litegate.http.app import create_app
from litegate.config import ConfigHolder, from_dict
from tests.fakes import ollama as fake_ollama
from tests.fakes import openai_compat as fake_openai

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "spec" / "openai-openapi.yaml"


@pytest.fixture(autouse=True)
def _throwaway_data_dir(monkeypatch, tmp_path_factory) -> None:
    """Usage databases of the apps and daemons a test starts go to a throwaway dir, never the user's."""
    monkeypatch.setenv("LITEGATE_DATA_DIR", str(tmp_path_factory.mktemp("litegate-data")))


@pytest.fixture(autouse=True)
def _schema_check_agrees_with_jsonschema(monkeypatch) -> None:
    """Every config a test loads in-process is judged by both schema engines, which must agree: serve
    imports jsonschema only for a config schema_check.py finds at fault (tests/unit/test_config_schema_check.py)."""
    import jsonschema

    from litegate.config import schema_check

    fast = schema_check.valid

    def both(doc: Any, rules: dict[str, Any]) -> bool:
        got = fast(doc, rules)
        want = not any(True for _ in jsonschema.Draft202012Validator(rules).iter_errors(doc))
        assert got == want, f"schema_check says {got}, jsonschema says {want} for {json.dumps(doc, default=str)[:500]}"
        return got

    monkeypatch.setattr(schema_check, "valid", both)


@pytest.fixture
async def ollama(aiohttp_server) -> TestServer:
    return await aiohttp_server(fake_ollama.make_app())


@pytest.fixture
def loading_ollama(aiohttp_server) -> Callable[[float], Awaitable[TestServer]]:
    """A fake Ollama that takes `delay` seconds before any byte of a "loading" model's answer."""

    async def make(delay: float) -> TestServer:
        app = fake_ollama.make_app()
        app[fake_ollama.LOAD_DELAY] = delay
        return await aiohttp_server(app)

    return make


@pytest.fixture
async def oai(aiohttp_server) -> TestServer:
    return await aiohttp_server(fake_openai.make_app(api_key="sk-backend"))


def base(server: TestServer, path: str = "") -> str:
    return str(server.make_url(path)).rstrip("/")


def ollama_config(backend: TestServer, **extra: Any) -> dict[str, Any]:
    """A config with the fake Ollama behind the names tests use most."""
    models = [
        {"name": "llama", "provider": "ollama", "model": "llama3.1:8b", "api_base": base(backend),
         "options": {"num_ctx": 16384}, "keep_alive": "30m"},
    ]
    for scenario in ("tools-before-done", "tools-with-ids", "thinking", "loading", "slow", "error-midstream",
                     "truncated", "no-tools", "no-prompt-count", "empty", "crash", "busy", "length", "missing"):
        models.append({"name": scenario, "provider": "ollama", "model": f"{scenario}:latest", "api_base": base(backend)})
    # No /api/ps polling unless a test asks for it: the fake records every request it sees.
    doc: dict[str, Any] = {"models": models, "router": {"num_retries": 0, "ollama_poll_s": 0}}
    doc.update(extra)
    return doc


GatewayFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def gateway(aiohttp_client, tmp_path) -> GatewayFactory:
    """Build a litegate from a config dict (written to disk, so reload works) and return a client."""

    async def make(doc: dict[str, Any], env: dict[str, str] | None = None) -> TestClient:
        doc = {**doc, "usage": {"path": str(tmp_path / "usage"), **doc.get("usage", {})}}
        path = tmp_path / "litegate.json"
        path.write_text(json.dumps(doc))
        cfg = from_dict(json.loads(path.read_text()), source=str(path), env=env or {})
        return await aiohttp_client(create_app(ConfigHolder(str(path), cfg)))

    return make


@pytest.fixture(scope="session")
def openai_schema():
    """validate(name, instance): check against components.schemas.<name> of the official spec."""
    if not SPEC_PATH.exists():
        pytest.skip(f"OpenAI spec not found at {SPEC_PATH} (../shared is absent): schema checks skipped")
    import yaml
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open("rb") as f:
        spec = yaml.load(f, Loader=loader)
    spec = _nullable_to_json_schema(spec)
    registry = Registry().with_resource("urn:openai-spec", Resource.from_contents(spec, default_specification=DRAFT202012))
    validators: dict[str, Draft202012Validator] = {}

    def validate(name: str, instance: Any) -> None:
        if name not in validators:
            validators[name] = Draft202012Validator({"$ref": f"urn:openai-spec#/components/schemas/{name}"},
                                                    registry=registry)
        errors = sorted(validators[name].iter_errors(instance), key=lambda e: e.json_path)
        assert not errors, f"{name} violations: " + "; ".join(f"{e.json_path}: {e.message}" for e in errors[:5])

    return validate


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI's `nullable: true` means nothing to JSON Schema: rewrite it as anyOf [schema, null]."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def sse_events(raw: bytes) -> tuple[list[Any], list[bytes]]:
    """Parse an SSE body: (data payloads as JSON or the string "[DONE]", comment lines)."""
    events, comments = [], []
    for block in raw.split(b"\n\n"):
        if not block.strip():
            continue
        for line in block.split(b"\n"):
            if line.startswith(b":"):
                comments.append(line)
            elif line.startswith(b"data: "):
                payload = line[6:]
                events.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return events, comments
