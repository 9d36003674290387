"""What the offline subcommands do: check-config, route, keys new, usage (cli.py only parses).

Each returns a process exit code and prints for a person; none needs the server running.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Mapping

from litegate import state
from litegate.core import auth
from litegate.core import rules
from litegate.config import Config, ConfigError, load
from litegate.config.envfile import EnvFileError, environment


class _Offline(Mapping):
    """The environment, where a secret that is not set reads as a placeholder: offline commands (route)
    never call a backend, so they need no keys."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def __getitem__(self, name: str) -> str:
        return self._env.get(name) or "(not set: offline)"

    def __iter__(self):
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


def _load(path: str, env_file: str | None, *, offline: bool = False) -> Config | None:
    try:
        env = environment(env_file)
        return load(path, _Offline(env) if offline else env)
    except EnvFileError as e:
        print(e, file=sys.stderr)
    except ConfigError as e:
        print(e.describe(), file=sys.stderr)
    return None


def check_config(path: str, env_file: str | None = None) -> int:
    cfg = _load(path, env_file)
    if cfg is None:
        return 1
    missing = state.missing_library(cfg)
    if missing:
        print(f"{path}: {missing}", file=sys.stderr)
        return 1
    print(f"{path}: valid")
    print(f"  listen: {cfg.server.host}:{cfg.server.port}")
    for name, deps in cfg.groups().items():
        for d in deps:
            print(f"  model {name}: {d.provider} {d.model} ({d.id})")
    for name, route in cfg.router.routes.items():
        print(f"  route {name}: {len(route.rules)} rule(s), default {route.default}")
    for alias, target in cfg.router.aliases.items():
        kind = "alias pattern" if "*" in alias or "?" in alias else "alias"
        print(f"  {kind} {alias} -> {target}")
    for name, chain in cfg.router.fallbacks.items():
        print(f"  fallbacks {name} -> {', '.join(chain)}")
    print(f"  keys: {len(cfg.auth.keys)}" if cfg.auth.keys else "  keys: none (loopback only)")
    if cfg.web_search:
        print(f"  web search: {cfg.web_search.provider}")
    if cfg.state:
        print(f"  shared state: {state.safe_url(cfg.state.redis_url)} (prefix {cfg.state.key_prefix!r}, "
              f"{'fail-open' if cfg.state.fail_open else 'fail-closed'})")
    pulls = sorted({d.model for d in cfg.models if d.provider == "ollama"})
    if pulls:
        print("  Ollama models it needs (on each Ollama it names):")
        for model in pulls:
            print(f"    ollama pull {model}")
    return 0


def route(path: str, message: str, model: str | None, *, key: str | None = None, headers: list[str] = (),
          image: bool = False, tools: bool = False, label: str | None = None, env_file: str | None = None) -> int:
    """Print which model a message would reach, and why: every rule looked at, offline (no secrets needed)."""
    cfg = _load(path, env_file, offline=True)
    if cfg is None:
        return 1
    names = [model] if model else list(cfg.router.routes)
    if not names:
        print("this config has no router.routes; pass --model NAME to see a plain model's targets", file=sys.stderr)
        return 1
    from litegate.wire import ChatRequest, ContentPart, ImageURL, Message, Tool, FunctionDef

    content = [ContentPart("text", text=message)] + ([ContentPart("image_url", image_url=ImageURL(
        "data:image/png;base64,iVBORw0KGgo="))] if image else [])
    req = ChatRequest(model=names[0], messages=[Message("user", content)],
                      tools=[Tool(FunctionDef("some_tool"))] if tools else None)
    hdrs = dict(h.split("=", 1) for h in headers if "=" in h)
    for name in names:
        if _explain(cfg, name, req, key, hdrs, label):
            return 1
    return 0


def _explain(cfg: Config, name: str, req, key, headers, label) -> bool:
    target = cfg.resolve_name(name)
    if target != name:
        pattern = cfg.alias_pattern_for(name)
        print(f"{name} -> {target} (alias pattern {pattern!r})" if pattern else f"{name} -> {target} (alias)")
    if target in cfg.router.routes:
        vroute = cfg.router.routes[target]
        feats = rules.features(req, key, headers)
        if rules.needs_label(vroute) and label is None and vroute.classifier:
            label = vroute.classifier.default or None
            print(f"(offline: the classifier is not asked; using label {label!r}; pass --label to try another)")
        decision = rules.decide(vroute, feats, label)
        print(f"{name} -> {decision.model} ({decision.rule})  [~{feats.tokens} tokens, images={feats.has_images}, "
              f"tools={feats.has_tools}, code={feats.has_code}]")
        for line in decision.why:
            print(f"  {line}")
        target = decision.model
    elif target not in cfg.groups():
        print(f"unknown model {name!r}", file=sys.stderr)
        return True
    for i, d in enumerate(cfg.groups()[target]):
        print(f"  deployment {d.id} (weight {d.weight:g}, strategy {cfg.router.strategy.get(target, 'weighted')})")
    for fb in cfg.router.fallbacks.get(target, ()):
        print(f"  then fallback {fb}")
    return False


def keys_new(name: str) -> int:
    """A fresh key, and the two ways to put it in the config."""
    secret = auth.new_key()
    var = "LITEGATE_KEY_" + "".join(c if c.isalnum() else "_" for c in name.upper())
    print(f"key for {name!r} (shown once; give it to its owner):\n\n  {secret}\n")
    print("either keep only its hash in the config (auth.keys):\n")
    print("  " + json.dumps({"name": name, "key_hash": auth.hash_key(secret), "models": ["*"]}))
    print(f"\nor keep the key in your env file as {var}={secret} and use:\n")
    print("  " + json.dumps({"name": name, "key_env": var, "models": ["*"]}))
    return 0


def usage(path: str | None, db: str | None, since: str, by: str, env_file: str | None = None) -> int:
    """A table of usage since a moment, grouped by key, model, deployment or day."""
    from litegate.http.admin import parse_since
    from litegate.errors import GatewayError
    from litegate.usage import UsageStore

    location = db
    if location is None:
        cfg = _load(path, env_file) if path else None
        if path and cfg is None:
            return 1
        import platformdirs
        location = (cfg.usage.path if cfg else "") or os.environ.get("LITEGATE_DATA_DIR") or \
            platformdirs.user_data_dir("litegate")
    try:
        start = parse_since(since, "7d")
    except GatewayError as e:
        print(e.message, file=sys.stderr)
        return 2
    store = UsageStore(location, retention_days=None)
    if not store.db_path.exists():
        print(f"no usage database at {store.db_path}", file=sys.stderr)
        return 1
    rows = asyncio.run(_totals(store, start, by))
    if rows is None:
        print(f"cannot read the usage database at {store.db_path}", file=sys.stderr)
        return 1
    print(f"database: {store.db_path}")
    _print_table(by, rows, start)
    return 0


async def _totals(store, start: float, by: str):
    if not await store.start():
        await store.close()
        return None
    try:
        return await store.totals(start, None, by)
    finally:
        await store.close()


def _print_table(by: str, rows, start: float) -> None:
    since = dt.datetime.fromtimestamp(start).strftime("%Y-%m-%d %H:%M")
    head = (by, "requests", "errors", "prompt", "completion", "cached", "cost $", "p50 ms", "p95 ms")
    body = [(_group(by, r.group), r.requests, r.errors, r.prompt_tokens, r.completion_tokens, r.cached_tokens,
             f"{r.cost:.4f}", _ms(r.latency_p50_ms), _ms(r.latency_p95_ms)) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    print(f"usage since {since}")
    for line in (head, *body):
        print("  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(line, widths))))
    if not body:
        print("(no requests)")


def _group(by: str, value) -> str:
    if by in ("day", "hour") and isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d" if by == "day" else "%Y-%m-%d %H:00")
    return str(value)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"
