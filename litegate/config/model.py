"""The config's shape: frozen msgspec Structs, one per section, and the Config snapshot with the
lookups every request makes (groups by name, aliases and patterns). Built only by config.load."""

from __future__ import annotations

import fnmatch
import ipaddress
import functools
from typing import Any

import msgspec


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
