"""Configuration: JSON file -> JSON Schema validation -> frozen msgspec snapshot.

A Config is immutable once built; a request takes `holder.current` once and keeps that snapshot
to the end, so a reload (SIGHUP) never changes a request mid-flight. Secrets are never in the
file: `api_key_env` / `key_env` name environment variables, resolved here at load time.
"""

from __future__ import annotations

import copy
import ipaddress
import fnmatch
import functools
import json
import os
import time
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema
import msgspec

from litegate.config import checks, runtime_keys
from litegate.config.envfile import EnvFileError, environment


class ConfigError(Exception):
    """Every fault found in a config file, each as (JSON path, reason)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.describe())

    def describe(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s)"]
        lines += [f"  {path}: {reason}" for path, reason in self.problems]
        return "\n".join(lines)


class _Frozen(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Server(_Frozen):
    host: str = "127.0.0.1"
    port: int = 4000
    max_body_mb: float = 32
    shutdown_grace_s: float = 30
    sse_keepalive_s: float = 3
    log_level: str = "info"
    log_format: str = "auto"
    reasoning_content: bool = True
    watch_config: bool = False
    event_loop: str = "auto"
    ollama_version: str = "0.12.10"  # what the Ollama face's /api/version reports
    # Hostile or broken clients (docs/security.md): connection and body limits.
    idle_timeout_s: float = 15
    body_timeout_s: float = 60
    max_connections_per_peer: int = 256
    max_json_depth: int = 64
    max_upstream_reply_mb: float = 64
    trusted_proxies: tuple[str, ...] = ()


class Timeouts(_Frozen):
    connect_s: float = 5
    first_token_s: float = 180
    total_s: float = 900


class Price(_Frozen):
    input_per_mtok: float = 0
    output_per_mtok: float = 0
    cached_input_per_mtok: float | None = None

    def cost(self, prompt: int, completion: int, cached: int = 0) -> float:
        cached_rate = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        return ((prompt - cached) * self.input_per_mtok + cached * cached_rate
                + completion * self.output_per_mtok) / 1_000_000


class Deployment(_Frozen):
    """One backend model at one address; several with the same `name` form a group."""

    name: str
    provider: str
    model: str
    id: str = ""
    api_base: str | None = None
    api_key_env: str | None = None
    api_key: str | None = None  # resolved from api_key_env at load; never in the file
    options: dict[str, Any] = {}
    keep_alive: str | float | None = None
    fim_format: str | None = None  # /v1/completions: the FIM tokens the model knows (providers/fim.py), or "raw"
    server_tools: tuple[str, ...] = ()
    responses_api: bool = False  # an OpenAI backend serving /responses itself: pass /v1/responses through
    weight: float = 1
    max_parallel: int | None = None
    max_queue: int = 32
    context_window: int | None = None
    capabilities: tuple[str, ...] = ()  # what the Ollama face's /api/show reports; empty: guessed
    price: Price = Price()
    default_max_tokens: int = 4096
    max_output_tokens: int | None = None  # a client's larger max_tokens is clamped to it
    timeouts: Timeouts = Timeouts()


class When(_Frozen):
    """Conditions of a routing rule; all given conditions must hold."""

    keywords: tuple[str, ...] | None = None
    regex: str | None = None
    has_images: bool | None = None
    has_tools: bool | None = None
    has_code: bool | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None
    keys: tuple[str, ...] | None = None
    header: dict[str, str] | None = None
    label: str | None = None
    always: bool | None = None


class Rule(_Frozen):
    model: str
    when: When
    name: str = ""


class Classifier(_Frozen):
    model: str
    labels: tuple[str, ...]
    default: str = ""
    timeout_s: float = 3
    cache_s: float = 600
    instructions: str = ""


class Route(_Frozen):
    rules: tuple[Rule, ...]
    default: str
    classifier: Classifier | None = None


class Cooldown(_Frozen):
    failures: int = 3
    cooldown_s: float = 30


class Router(_Frozen):
    num_retries: int = 1
    retry_backoff_s: float = 0.25
    fallbacks: dict[str, tuple[str, ...]] = {}
    aliases: dict[str, str] = {}
    strategy: dict[str, str] = {}
    cooldown: Cooldown = Cooldown()
    ollama_poll_s: float = 15
    routes: dict[str, Route] = {}


class Budget(_Frozen):
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    cost_per_month: float | None = None


class Key(_Frozen):
    name: str
    key_env: str | None = None
    key_hash: str | None = None
    models: tuple[str, ...] = ("*",)
    admin: bool = False
    revoked: bool = False
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    searches_per_day: int | None = None
    budget: Budget = Budget()
    secret: str = ""  # resolved from key_env at load
    source: str = "config"  # or "runtime": made from the dashboard (config/runtime_keys.py)
    created_at: float = 0.0


class TrustedNetwork(_Frozen, dict=True):
    """Client networks (a tailnet, a home LAN) whose requests without a key count as one principal,
    for apps that cannot send a key (many Ollama clients). A key, when one is sent, still wins."""

    name: str
    networks: tuple[str, ...]
    models: tuple[str, ...] = ("*",)
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    searches_per_day: int | None = None
    budget: Budget = Budget()

    @functools.cached_property
    def key(self) -> Key:
        """The principal's limits and models, in the shape limits and accounting already count by."""
        return Key(name=self.name, models=self.models, rpm=self.rpm, tpm=self.tpm, max_concurrent=self.max_concurrent,
                   searches_per_day=self.searches_per_day, budget=self.budget)

    @functools.cached_property
    def parsed(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.networks)


class Auth(_Frozen):
    keys: tuple[Key, ...] = ()
    trusted_networks: tuple[TrustedNetwork, ...] = ()
    keys_file: str = ""  # runtime keys; default keys.json in the data dir


class Usage(_Frozen):
    enabled: bool = True
    path: str = ""
    retention_days: float = 90


class State(_Frozen):
    """Where instances share state (Redis or Valkey); absent = everything stays in this process."""

    redis_url: str
    key_prefix: str = "litegate:"
    password_env: str | None = None
    password: str | None = None  # resolved from password_env at load; never in the file
    instance: str = ""  # empty: the host name, filled in by litegate.state
    fail_open: bool = True
    timeout_ms: float = 500
    retry_s: float = 2


class Responses(_Frozen):
    store: bool = True
    path: str = ""
    retention_days: float = 30
    max_stored: int = 10_000


class WebSearch(_Frozen):
    provider: str
    api_base: str | None = None
    api_key_env: str | None = None
    api_key: str | None = None  # resolved from api_key_env at load
    max_results: int = 5
    timeout_s: float = 10
    cache_ttl_s: float = 3600
    max_rounds: int = 4
    max_chars: int = 6000
    searches_per_day: int | None = None
    no_tools_fallback: str = "inject"
    gl: str | None = None
    hl: str | None = None


class FetchUrl(_Frozen):
    max_mb: float = 2
    timeout_s: float = 10
    max_chars: int = 8000
    allow_private: bool = False


class Images(_Frozen):
    max_mb: float = 10
    timeout_s: float = 10
    allow_private: bool = False


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, dict=True):
    """The whole snapshot. (dict=True only so the derived views below can be cached on it.)"""

    models: tuple[Deployment, ...]
    server: Server = Server()
    router: Router = Router()
    auth: Auth = Auth()
    images: Images = Images()
    usage: Usage = Usage()
    state: State | None = None
    responses: Responses = Responses()
    web_search: WebSearch | None = None
    fetch_url: FetchUrl = FetchUrl()
    source: str = ""
    loaded_at: float = 0.0

    @functools.cached_property
    def _groups(self) -> dict[str, tuple[Deployment, ...]]:
        out: dict[str, list[Deployment]] = {}
        for d in self.models:
            out.setdefault(d.name, []).append(d)
        return {k: tuple(v) for k, v in out.items()}

    def groups(self) -> dict[str, tuple[Deployment, ...]]:
        """Model name -> its deployments, in config order (computed once per snapshot)."""
        return self._groups

    @functools.cached_property
    def trusted_proxies(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """server.trusted_proxies as networks (a bare address is a /32 or /128)."""
        return tuple(ipaddress.ip_network(p, strict=False) for p in self.server.trusted_proxies)

    def is_trusted_proxy(self, peer: str | None) -> bool:
        if not peer or not self.server.trusted_proxies:
            return False
        try:
            addr = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.trusted_proxies)

    @functools.cached_property
    def has_context_windows(self) -> bool:
        return any(d.context_window for d in self.models)

    def resolve_name(self, name: str) -> str:
        """Client-facing name -> model or route name (aliases resolved, one hop; patterns last)."""
        hit = self.router.aliases.get(name)
        if hit is not None:
            return hit
        if self._alias_patterns and name not in self._groups and name not in self.router.routes:
            for pattern, target in self._alias_patterns:
                if fnmatch.fnmatchcase(name, pattern):
                    return target
        return name

    def alias_pattern_for(self, name: str) -> str | None:
        """The alias pattern that `name` resolves through, if it is reached by a pattern."""
        if name in self.router.aliases or name in self._groups or name in self.router.routes:
            return None
        return next((p for p, _ in self._alias_patterns if fnmatch.fnmatchcase(name, p)), None)

    @functools.cached_property
    def _alias_patterns(self) -> tuple[tuple[str, str], ...]:
        """Aliases whose name holds * or ? (e.g. claude-* for Claude Code's model names), in config order."""
        return tuple((k, v) for k, v in self.router.aliases.items() if "*" in k or "?" in k)

    def client_names(self) -> list[str]:
        """Every name a client may send as `model`: models, virtual routes, aliases."""
        return [*self.groups(), *self.router.routes, *self.router.aliases]


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
    validator = jsonschema.Draft202012Validator(schema())
    problems = [(e.json_path, _redact(e)) for e in sorted(validator.iter_errors(doc), key=lambda e: e.json_path)]
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
