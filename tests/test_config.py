"""Config: JSON -> schema validation naming JSON paths -> frozen snapshot; check-config; secrets by env name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from litegate import config
from litegate.config import ConfigError, from_dict

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {"models": [{"name": "llama", "provider": "ollama", "model": "llama3.1:8b"}]}


def problems(doc, env=None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        from_dict(doc, env=env or {})
    return info.value.problems


def test_minimal_config_defaults():
    """A one-model config loads with documented defaults and a derived deployment id."""
    cfg = from_dict(MINIMAL, env={})
    assert cfg.server.host == "127.0.0.1" and cfg.server.port == 4000
    assert cfg.models[0].id == "ollama/llama3.1:8b" and cfg.router.num_retries == 1


def test_snapshot_is_frozen():
    """The config snapshot cannot be mutated in place (a reload swaps it whole)."""
    cfg = from_dict(MINIMAL, env={})
    with pytest.raises(AttributeError):
        cfg.server.port = 1  # type: ignore[misc]


def test_schema_errors_name_json_paths():
    """Every schema fault is reported with its JSON path, all at once."""
    doc = {"models": [{"name": "a", "provider": "olama", "model": "x"}, {"name": "b", "model": "y"}],
           "server": {"port": "4000"}, "extra": 1}
    paths = [p for p, _ in problems(doc)]
    assert "$.models[0].provider" in paths and "$.models[1]" in paths and "$.server.port" in paths and "$" in paths


def test_missing_secret_names_model_and_variable():
    """A missing api_key_env variable is a config error naming the model and the variable."""
    doc = {"models": [{"name": "gpt", "provider": "openai", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"}]}
    [(path, reason)] = problems(doc)
    assert path == "$.models[0].api_key_env" and "gpt" in reason and "OPENAI_API_KEY" in reason
    cfg = from_dict(doc, env={"OPENAI_API_KEY": "sk-1"})
    assert cfg.models[0].api_key == "sk-1"


def test_inline_secret_refused():
    """Secrets are never inline: an api_key field in the file is rejected."""
    doc = {"models": [{"name": "gpt", "provider": "openai", "model": "m", "api_key": "sk-inline"}]}
    assert problems(doc)[0][0] == "$.models[0]"


def test_fallback_and_alias_references_checked():
    """Fallbacks and aliases to unknown models, and fallback cycles, are errors naming the path."""
    doc = {"models": [{"name": "a", "provider": "ollama", "model": "x"}, {"name": "b", "provider": "ollama", "model": "y"}],
           "router": {"fallbacks": {"a": ["b", "zz"], "b": ["a"]}, "aliases": {"gpt-4o": "nope"}}}
    found = problems(doc)
    paths = [p for p, _ in found]
    assert "$.router.fallbacks.a[1]" in paths and "$.router.aliases.gpt-4o" in paths
    assert any("cycle" in reason for _, reason in found)


def test_duplicate_deployments_get_distinct_ids():
    """Two deployments of one model at different addresses form a group with distinct ids."""
    doc = {"models": [{"name": "m", "provider": "ollama", "model": "x", "api_base": "http://mac1:11434"},
                      {"name": "m", "provider": "ollama", "model": "x", "api_base": "http://mac2:11434"},
                      {"name": "m", "provider": "ollama", "model": "x", "api_base": "http://mac2:11434"}]}
    cfg = from_dict(doc, env={})
    assert [d.id for d in cfg.groups()["m"]] == ["ollama/x@mac1:11434", "ollama/x@mac2:11434", "ollama/x@mac2:11434#2"]


def _schema_defaults(schema: dict, node: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for name, prop in node.get("properties", {}).items():
        if "$ref" in prop:
            prop = schema["$defs"][prop["$ref"].rsplit("/", 1)[1]]
        if "default" in prop:
            out[prefix + name] = prop["default"]
        if prop.get("type") == "object":
            out.update(_schema_defaults(schema, prop, prefix + name + "."))
    return out


def test_schema_defaults_match_snapshot_defaults():
    """The defaults documented in the JSON Schema are the ones the snapshot really uses."""
    schema = config.schema()
    with_optional_blocks = {**MINIMAL, "web_search": {"provider": "searxng", "api_base": "http://127.0.0.1:8888"},
                            "state": {"redis_url": "redis://127.0.0.1:6379/0"}}
    cfg = msgspec.to_builtins(from_dict(with_optional_blocks, env={}))
    for path, default in _schema_defaults(schema, schema).items():
        node = cfg
        for part in path.split("."):
            node = node[part]
        assert node == default, path
    deployment = msgspec.to_builtins(from_dict(MINIMAL, env={}).models[0])
    for path, default in _schema_defaults(schema, schema["$defs"]["deployment"]).items():
        node = deployment
        for part in path.split("."):
            node = node[part]
        assert node == default, path


def test_example_configs_are_valid():
    """Every shipped example config validates (given its env vars)."""
    env = {name: "x" for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "SERPER_API_KEY",
                                   "LITEGATE_KEY_LAPTOP", "LITEGATE_KEY_PHONE", "LITEGATE_KEY_ADMIN",
                                   "LITEGATE_KEY_FRIEND", "OPENROUTER_API_KEY", "LITEGATE_REDIS_PASSWORD")}
    paths = sorted((ROOT / "config").glob("*.json"))
    assert len(paths) >= 3, "the example configs are missing"
    for path in paths:
        config.from_dict(json.loads(path.read_text()), source=str(path), env=env)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "litegate", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_check_config_cli(tmp_path):
    """litegate check-config: exit 0 with a summary when valid, 1 with every JSON-path error when not."""
    ok = run_cli("check-config", str(ROOT / "config" / "litegate.example.json"))
    assert ok.returncode == 0 and "valid" in ok.stdout and "model llama" in ok.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": [{"name": "x", "provider": "nope", "model": "m"}], "server": {"port": -1}}))
    res = run_cli("check-config", str(bad))
    assert res.returncode == 1 and "$.models[0].provider" in res.stderr and "$.server.port" in res.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    res = run_cli("check-config", str(broken))
    assert res.returncode == 1 and "not valid JSON" in res.stderr


def test_version_cli():
    """litegate version prints the version."""
    res = run_cli("version")
    assert res.returncode == 0 and res.stdout.startswith("litegate ")


def test_schema_errors_do_not_echo_secrets():
    """A secret pasted where an env var name belongs is not repeated whole in the error."""
    doc = {"models": [{"name": "gpt", "provider": "openai", "model": "m", "api_key_env": "sk-proj-abcdef123456"}]}
    [(path, reason)] = problems(doc)
    assert path == "$.models[0].api_key_env" and "abcdef123456" not in reason


def test_errors_show_the_whole_value_and_the_nearest_name():
    """A misspelled key or enum value is shown whole with the nearest valid name; a value that looks like a
    pasted secret is still shortened."""
    doc = {**MINIMAL, "rooter": {}}
    (path, reason), = problems(doc)
    assert "'rooter' was unexpected" in reason and "did you mean 'router'?" in reason
    doc = {**MINIMAL, "router": {"strategy": {"llama": "leastbusy"}}}
    (path, reason), = problems(doc)
    assert path == "$.router.strategy.llama" and "'leastbusy'" in reason and "did you mean 'least_busy'?" in reason
    doc = {"models": [{"name": "llama", "provider": "ollama", "model": "x", "api_key_env": 5}]}
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
    doc = {"models": [{"name": "llama", "provider": secret, "model": "x"}]}
    (path, reason), = problems(doc)
    assert secret not in reason and "'sk-p…'" in reason


def test_unknown_names_suggest_the_nearest_model():
    """A fallback, alias or key naming a model that does not exist is an error with the nearest name; a key's
    wildcard may match nothing yet."""
    doc = {**MINIMAL, "router": {"fallbacks": {"llama": ["lama"]}, "aliases": {"gpt-4o": "lama"}},
           "auth": {"keys": [{"name": "k", "key_hash": "sha256:" + "a" * 16 + ":" + "b" * 64, "models": ["lama", "qwen*"]}]}}
    found = dict(problems(doc))
    assert "did you mean 'llama'?" in found["$.router.fallbacks.llama[0]"]
    assert "did you mean 'llama'?" in found["$.router.aliases.gpt-4o"]
    assert "'lama', which is no model" in found["$.auth.keys[0].models[0]"]
    assert "$.auth.keys[0].models[1]" not in found


def test_ollama_api_base_with_v1_and_bad_keep_alive():
    """Ollama's /v1 (its OpenAI-compatible API) under provider ollama, and a keep_alive Ollama cannot parse,
    are config errors; Go durations, numbers and -1 pass."""
    doc = {"models": [{"name": "a", "provider": "ollama", "model": "x", "api_base": "http://mac:11434/v1/",
                       "keep_alive": "30 minutes"}]}
    found = dict(problems(doc))
    assert "'http://mac:11434'" in found["$.models[0].api_base"]
    assert "'30 minutes'" in found["$.models[0].keep_alive"]
    for ok in ("30m", "1h30m", "-1s", "0", "90s", -1, 300):
        from_dict({"models": [{"name": "a", "provider": "ollama", "model": "x", "keep_alive": ok}]}, env={})
