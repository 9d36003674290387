"""litegate/config: the exposure rule for the served address, environment() reading an env file
over a base mapping without touching os.environ, and the schema's enums kept equal to the
PROVIDERS and SEARCH_BACKENDS tables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from litegate.config import Config, ConfigError, exposure_problem, from_dict, schema
from litegate.config.envfile import EnvFileError, environment
from litegate.providers import PROVIDERS
from litegate.tools.search import SEARCH_BACKENDS

MODELS = [{"name": "m", "provider": "ollama", "model": "m"}]
OPEN = from_dict({"models": MODELS}, env={})
KEYED = from_dict({"models": MODELS, "auth": {"keys": [{"name": "k", "key_env": "K"}]}}, env={"K": "sk-x"})


# ---------------------------------------------------------------- exposure
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "localhost", "::1"])
def test_loopback_without_keys_is_fine(host):
    """exposure_problem: a loopback address may serve without keys (only this machine can reach it)."""
    assert exposure_problem(OPEN, host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "my-mac.local", "example.com"])
def test_non_loopback_without_keys_is_refused(host):
    """exposure_problem: any other address (a name too: it may resolve anywhere) without keys is refused, naming it."""
    problem = exposure_problem(OPEN, host)
    assert problem is not None and host in problem and "auth.keys" in problem


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "127.0.0.1"])
def test_keys_make_any_address_fine(host):
    """exposure_problem: with keys configured, any address may be served."""
    assert exposure_problem(KEYED, host) is None


# ---------------------------------------------------------------- environment()
def env_file(tmp_path: Path, text: str, mode: int = 0o600) -> str:
    path = tmp_path / "litegate.env"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_environment_merges_file_over_base(tmp_path):
    """environment: the base mapping with the file's pairs on top (the file wins); the base is not changed."""
    base = {"KEEP": "base", "OVERRIDE": "base"}
    path = env_file(tmp_path, "OVERRIDE=file\nNEW=file\n")
    assert environment(path, base) == {"KEEP": "base", "OVERRIDE": "file", "NEW": "file"}
    assert base == {"KEEP": "base", "OVERRIDE": "base"}


def test_environment_never_touches_os_environ(tmp_path):
    """environment: reading an env file writes nothing into os.environ."""
    name = "LITEGATE_UNIT_TEST_SECRET_" + os.urandom(4).hex().upper()
    before = dict(os.environ)
    env = environment(env_file(tmp_path, f"{name}=s3cret\n"), {})
    assert env == {name: "s3cret"}
    assert name not in os.environ and dict(os.environ) == before


def test_environment_without_file_is_the_base():
    """environment: no env file -> the base mapping itself (the process environment when no base is given)."""
    base = {"A": "1"}
    assert environment(None, base) is base
    assert environment("", base) is base
    assert environment(None) is os.environ


def test_environment_reread_sees_removed_pairs_gone(tmp_path):
    """environment: a pair removed from the file is gone on the next read (nothing lingers from the last one)."""
    path = env_file(tmp_path, "A=1\nB=2\n")
    assert environment(path, {})["B"] == "2"
    Path(path).write_text("A=1\n")
    assert "B" not in environment(path, {})


def test_env_file_syntax(tmp_path):
    """read_env_file: comments, blank lines, `export `, one pair of matching quotes removed, nothing expanded."""
    path = env_file(tmp_path, "# secrets\n\nexport A=1\nB = 'two words'\nC=\"x=y\"\nD=$HOME\nE='unbalanced\"\n")
    assert environment(path, {}) == {"A": "1", "B": "two words", "C": "x=y", "D": "$HOME", "E": "'unbalanced\""}


def test_env_file_bad_line_names_line_not_value(tmp_path):
    """read_env_file: a line that is not KEY=VALUE is an error naming the file and line, never the line's text."""
    path = env_file(tmp_path, "A=1\nsk-this-is-a-secret\n")
    with pytest.raises(EnvFileError) as e:
        environment(path, {})
    assert "line 2" in str(e.value) and path in str(e.value) and "sk-this" not in str(e.value)


def test_env_file_open_to_others_is_refused(tmp_path):
    """read_env_file: an env file readable by group or others is refused, with the chmod that fixes it."""
    path = env_file(tmp_path, "A=1\n", mode=0o644)
    with pytest.raises(EnvFileError, match="chmod 600"):
        environment(path, {})


def test_env_file_secret_reaches_the_config(tmp_path):
    """from_dict with environment(): a key's secret comes from the env file; a missing one names model and variable."""
    doc = {"models": [{"name": "gpt", "provider": "openai", "model": "gpt-4o", "api_key_env": "OPENAI_KEY"}]}
    cfg = from_dict(doc, env=environment(env_file(tmp_path, "OPENAI_KEY=sk-file\n"), {}))
    assert isinstance(cfg, Config) and cfg.models[0].api_key == "sk-file"
    with pytest.raises(ConfigError) as e:
        from_dict(doc, env={})
    assert e.value.problems == [("$.models[0].api_key_env", "model 'gpt': environment variable OPENAI_KEY is not set")]


# ---------------------------------------------------------------- schema enums = the tables
def test_schema_provider_enum_is_the_providers_table():
    """config.schema.json's deployment provider enum lists exactly the PROVIDERS table's keys."""
    enum = schema()["$defs"]["deployment"]["properties"]["provider"]["enum"]
    assert len(PROVIDERS) > 0 and sorted(enum) == sorted(PROVIDERS)


def test_schema_web_search_provider_enum_is_the_search_backends_table():
    """config.schema.json's web_search provider enum lists exactly the SEARCH_BACKENDS table's keys."""
    enum = schema()["properties"]["web_search"]["properties"]["provider"]["enum"]
    assert len(SEARCH_BACKENDS) > 0 and sorted(enum) == sorted(SEARCH_BACKENDS)


def test_schema_responses_api_providers_are_those_with_a_responses_pass_through():
    """responses_api is allowed exactly for providers whose Provider.passthrough has a "responses" row,
    and refused at its own path for any other."""
    allowed = schema()["$defs"]["deployment"]["if"]["properties"]["provider"]["not"]["enum"]
    assert allowed and sorted(allowed) == sorted(n for n, p in PROVIDERS.items() if "responses" in p.passthrough)
    with pytest.raises(ConfigError) as e:
        from_dict({"models": [{"name": "m", "provider": "ollama", "model": "m", "responses_api": True}]}, env={})
    assert [path for path, _ in e.value.problems] == ["$.models[0].responses_api"]


def test_schema_web_search_requirements_are_the_search_backends_rows():
    """Each search backend requires in the schema what its row says: api_key_env when it needs a key,
    api_base when it has no default address; a config missing it is refused at $.web_search."""
    rules = {r["if"]["properties"]["provider"]["const"]: r["then"]["required"]
             for r in schema()["properties"]["web_search"]["allOf"]}
    assert rules == {name: ["api_key_env"] * b.needs_key + ["api_base"] * (not b.default_api_base)
                     for name, b in SEARCH_BACKENDS.items()}
    for name in SEARCH_BACKENDS:
        with pytest.raises(ConfigError) as e:
            from_dict({"models": MODELS, "web_search": {"provider": name}}, env={})
        assert [path for path, _ in e.value.problems] == ["$.web_search"]


def test_schema_refuses_a_provider_not_in_the_table():
    """A deployment naming a provider outside the table is a config error at its path."""
    with pytest.raises(ConfigError) as e:
        from_dict({"models": [{"name": "m", "provider": "nosuch", "model": "m"}]}, env={})
    assert [path for path, _ in e.value.problems] == ["$.models[0].provider"]
