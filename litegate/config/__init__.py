"""Configuration: JSON file -> JSON Schema validation -> frozen msgspec snapshot.

The schema is checked by schema_check.py first; jsonschema is imported only for a document it
finds at fault, to name every problem (so a good config never pays for importing it).

A Config is immutable once built; a request takes `holder.current` once and keeps that snapshot
to the end, so a reload (SIGHUP) never changes a request mid-flight. Secrets are never in the
file: `api_key_env` / `key_env` name environment variables, resolved here at load time.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import time
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import msgspec

from litegate.config import checks, runtime_keys, schema_check
from litegate.config.model import (
    ConfigError, Server, Timeouts, Price, Deployment, When, Rule, Classifier, Route, Cooldown, Router, Budget, Key, TrustedNetwork, Auth, Usage, State, Responses, WebSearch, FetchUrl, Images, Config,
)
from litegate.config.envfile import EnvFileError, environment

if TYPE_CHECKING:
    import jsonschema


def schema() -> dict[str, Any]:
    return json.loads(resources.files("litegate.config").joinpath("config.schema.json").read_text("utf-8"))


def load(path: str, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and freeze a config file; raise ConfigError naming every fault."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(path, [("$", f"cannot read file: {e.strerror or e}")]) from None
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(path, [("$", f"not valid JSON: {e}")]) from None
    return from_dict(doc, source=path, env=os.environ if env is None else env)


def from_dict(doc: Any, *, source: str = "<config>", env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    doc = copy.deepcopy(doc)  # secrets are resolved into the copy, never into the caller's dict
    rules = schema()
    if not schema_check.valid(doc, rules):
        problems = schema_problems(doc, rules)
        if problems:
            raise ConfigError(source, problems)
    problems = (checks.resolve_secrets(doc, env) + checks.references(doc) + checks.server(doc)
                + checks.deployments(doc))
    if problems:
        raise ConfigError(source, problems)
    checks.assign_ids(doc["models"])
    doc = {**doc, "source": source, "loaded_at": time.time()}
    doc.pop("$schema", None)
    return msgspec.convert(doc, Config)


def schema_problems(doc: Any, rules: dict[str, Any]) -> list[tuple[str, str]]:
    """Every schema fault as (JSON path, message), from jsonschema (imported here, on the error path only)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(rules)
    return [(e.json_path, _redact(e)) for e in sorted(validator.iter_errors(doc), key=lambda e: e.json_path)]


def _redact(e: jsonschema.ValidationError) -> str:
    """The schema's message with the whole value (a typo must be seen to be fixed), and the nearest valid
    name for a misspelled one; only a value that looks like a secret pasted in by mistake is shortened."""
    message = e.message
    if isinstance(e.instance, str) and checks.looks_secret(e.instance):
        message = message.replace(repr(e.instance), repr(e.instance[:4] + "…"))
    if e.validator == "enum" and isinstance(e.instance, str):
        message += checks.did_you_mean(e.instance, [str(v) for v in e.validator_value])
    elif e.validator == "additionalProperties" and isinstance(e.instance, dict):
        allowed = list(e.schema.get("properties", {}))
        for extra in (k for k in e.instance if k not in allowed):
            message += checks.did_you_mean(extra, allowed)
    return message


def redacted(cfg: Config) -> dict[str, Any]:
    """The running config as plain data with every secret removed (for display)."""
    doc = msgspec.to_builtins(cfg)
    for m in doc["models"]:
        m.pop("api_key", None)
    for k in doc["auth"]["keys"]:
        k.pop("secret", None)
        k.pop("key_hash", None)
    if doc.get("web_search"):
        doc["web_search"].pop("api_key", None)
    if doc.get("state"):
        doc["state"].pop("password", None)
    return doc


def exposure_problem(cfg: Config, host: str) -> str | None:
    """Why this config must not serve on `host`: a non-loopback bind with no keys opens it to all."""
    if not _is_loopback(host) and not cfg.auth.keys:
        return (f"refusing to listen on {host} without API keys: anyone on the network could use your models. "
                f"Add auth.keys to the config (see README, 'Keys'), or bind 127.0.0.1")
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigHolder:
    """Owns the current snapshot; `reload()` is the one door a new one comes through.

    A reload reads the env file (if any) and the config file, checks the result is safe on the
    address being served, and swaps the snapshot whole, or raises and keeps the old one.
    """

    def __init__(self, path: str, initial: Config, *, env_file: str | None = None, host: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.env_file = env_file
        self.env = env  # the variables under the env file's (None: the process environment)
        self.host = host or initial.server.host
        self.base = initial  # the config file's own snapshot; `current` adds the runtime keys
        self.current = with_runtime_keys(initial)
        self.last_reload: dict[str, Any] = {"ok": True, "at": initial.loaded_at, "error": None}

    def reload(self) -> Config:
        try:
            base = load(self.path, environment(self.env_file, self.env))
            cfg = with_runtime_keys(base, source=self.path)
            problem = exposure_problem(cfg, self.host)
            if problem:
                raise ConfigError(self.path, [("$.auth.keys", problem)])
        except (ConfigError, EnvFileError) as e:
            self.last_reload = {"ok": False, "at": time.time(),
                                "error": e.describe() if isinstance(e, ConfigError) else str(e)}
            raise
        self.base, self.current = base, cfg
        self.last_reload = {"ok": True, "at": cfg.loaded_at, "error": None}
        return cfg

    def keys_changed(self) -> Config:
        """After the runtime keys file changed: the same config file snapshot with the file's keys now."""
        self.current = with_runtime_keys(self.base, source=self.path)
        return self.current


def with_runtime_keys(cfg: Config, source: str = "") -> Config:
    """The config plus the keys made and revoked from the dashboard (config/runtime_keys.py)."""
    path = runtime_keys.path_for(cfg)
    try:
        return runtime_keys.merge(cfg, runtime_keys.read(path))
    except runtime_keys.KeysFileError as e:
        raise ConfigError(source or cfg.source, [("$.auth.keys_file", str(e))]) from None


__all__ = [  # the Structs live in model.py; callers import them from here
    "ConfigError", "Server", "Timeouts", "Price", "Deployment", "When", "Rule", "Classifier", "Route",
    "Cooldown", "Router", "Budget", "Key", "TrustedNetwork", "Auth", "Usage", "State", "Responses",
    "WebSearch", "FetchUrl", "Images", "Config", "schema", "load", "from_dict", "redacted",
    "exposure_problem", "ConfigHolder", "with_runtime_keys",
]
