"""Assembly and life cycle: create_app() wires routes, middlewares and shared services;
serve() runs it as a daemon with SIGHUP (reload) and SIGTERM (graceful drain) handling.

Life cycle, as launchd (or anyone) sees it:
- start: ready in a fraction of a second; a config, env-file or exposure fault is one line on stderr
  and exit EX_CONFIG (78), a port that cannot be bound is one line and exit 1.
- SIGHUP (and, with server.watch_config, a changed file): re-read the env file and the config, swap
  the snapshot whole or keep the old one and log config_reload_failed with the JSON paths.
- SIGTERM/SIGINT: close the listening socket (new connections are refused), let in-flight requests
  and streams finish within server.shutdown_grace_s, run cleanup_ctx teardown, exit 0. A second
  signal exits at once with status 1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from . import api, log, upstream
from .config import Config, ConfigError, ConfigHolder, load
from .gateway import Services

logger = structlog.get_logger("litegate")


def create_app(holder: ConfigHolder) -> web.Application:
    cfg = holder.current
    app = web.Application(
        client_max_size=int(cfg.server.max_body_mb * (1 << 20)),
        middlewares=[api.context_middleware, api.error_middleware, api.auth_middleware],
    )
    app[api.HOLDER] = holder
    app[api.STARTED] = time.time()
    app.cleanup_ctx.append(_usage_store)  # first in, last out: its teardown runs after _services'
    app.cleanup_ctx.append(_services)
    api.add_routes(app)
    return app


async def _usage_store(app: web.Application) -> AsyncIterator[None]:
    """Hook for the usage store (litegate/usage.py): open it before the yield, flush and close it after.

    aiohttp runs cleanup_ctx teardown only after AppRunner.cleanup() has closed the listening socket and
    waited (up to server.shutdown_grace_s) for every in-flight request and stream, so the rows the last
    streams record are still here to flush. (on_shutdown would be too early: it runs before the drain.)
    """
    yield


async def _services(app: web.Application) -> AsyncIterator[None]:
    cfg = app[api.HOLDER].current
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30, enable_cleanup_closed=True),
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"user-agent": "litegate"},
        auto_decompress=True,
    )
    fetcher = upstream.fetch_session(cfg.images.allow_private)
    services = app[api.SERVICES] = Services(session=session, fetcher=fetcher)
    poller = asyncio.create_task(_poll_loaded(app, services))
    yield
    poller.cancel()
    await asyncio.gather(poller, return_exceptions=True)
    await session.close()
    await fetcher.close()


async def _poll_loaded(app: web.Application, services: Services) -> None:
    """Keep Backends' view of loaded Ollama models fresh (router.ollama_poll_s; 0 = off)."""
    while True:
        cfg = app[api.HOLDER].current
        if cfg.router.ollama_poll_s <= 0:
            await asyncio.sleep(5)
            continue
        await services.backends.poll_loaded(services.session, cfg)
        await asyncio.sleep(cfg.router.ollama_poll_s)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(cfg: Config, host: str) -> str | None:
    """A reason to refuse start-up: a non-loopback bind with no keys would open the gateway to all."""
    if not is_loopback(host) and not cfg.auth.keys:
        return (f"refusing to listen on {host} without API keys: anyone on the network could use your models. "
                f"Add auth.keys to the config (see README, 'Keys'), or bind 127.0.0.1")
    return None


EX_CONFIG = 78  # sysexits.h: the configuration is at fault; `launchctl print` shows "78: EX_CONFIG"
EX_FAILURE = 1
WATCH_INTERVAL_S = 1.0
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


async def _run(holder: ConfigHolder, host: str, port: int, env: EnvFile | None = None) -> int:
    cfg = holder.current
    app = create_app(holder)
    # shutdown_timeout bounds the drain: runner.cleanup() stops the site (listening socket closed), waits for
    # each connection's in-flight handler up to this long, then cancels what is left, then runs cleanup_ctx.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                           shutdown_timeout=cfg.server.shutdown_grace_s)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        return _fail(f"cannot listen on {host}:{port}: {os.strerror(e.errno) if e.errno else e}", EX_FAILURE)
    loop = asyncio.get_running_loop()
    reload = Reloader(holder, env)
    stop = asyncio.Event()
    _on_signals(loop, reload, stop, cfg.server.shutdown_grace_s)
    watcher = asyncio.create_task(_watch(holder, reload))
    print(f"litegate listening on http://{host}:{port}", flush=True)
    logger.info("ready", host=host, port=port, models=len(cfg.groups()), config=holder.path)
    await stop.wait()
    watcher.cancel()
    started = time.monotonic()
    for s in list(runner.sites):
        await s.stop()  # the listening socket closes now: new connections are refused, not queued
    logger.info("shutdown_draining", open_connections=len(runner.server.connections) if runner.server else 0)
    await runner.cleanup()
    logger.info("shutdown_complete", drain_s=round(time.monotonic() - started, 3))
    return 0


def _on_signals(loop: asyncio.AbstractEventLoop, reload: Reloader, stop: asyncio.Event, grace_s: float) -> None:
    """SIGHUP reloads (on the loop, between requests); the first SIGTERM/SIGINT drains, the second exits now."""

    def on_term() -> None:
        if stop.is_set():
            logger.warning("shutdown_forced")
            sys.stdout.flush()
            os._exit(EX_FAILURE)
        logger.info("shutdown_started", grace_s=grace_s)
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, on_term)
    loop.add_signal_handler(signal.SIGHUP, reload, "sighup")


class Reloader:
    """The one door for reloads (SIGHUP, file watch): env file, then config; swap whole or keep the old."""

    RESTART_ONLY = ("host", "port", "max_body_mb", "shutdown_grace_s")

    def __init__(self, holder: ConfigHolder, env: EnvFile | None = None) -> None:
        self.holder, self.env = holder, env
        self.stamp = _stamp(holder.path)

    def __call__(self, reason: str = "sighup") -> bool:
        self.stamp = _stamp(self.holder.path)
        old = self.holder.current
        try:
            if self.env:
                self.env.apply()
            cfg = self.holder.reload()
        except EnvFileError as e:
            self.holder.last_reload = {"ok": False, "at": time.time(), "error": str(e)}
            logger.error("config_reload_failed", reason=reason, problems=[str(e)])
            return False
        except ConfigError as e:
            logger.error("config_reload_failed", reason=reason, config=e.source,
                         problems=[f"{p}: {r}" for p, r in e.problems])
            return False
        if (cfg.server.log_level, cfg.server.log_format) != (old.server.log_level, old.server.log_format):
            log.configure(cfg.server.log_level, cfg.server.log_format)
        changed = [f"server.{f}" for f in self.RESTART_ONLY if getattr(cfg.server, f) != getattr(old.server, f)]
        logger.info("config_reloaded", reason=reason, models=len(cfg.groups()), restart_needed=changed or None)
        return True


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


async def _watch(holder: ConfigHolder, reload: Reloader, interval: float = WATCH_INTERVAL_S) -> None:
    """server.watch_config: a stat a second triggers the same reload as SIGHUP when the file changed.

    The task always runs so a reload can switch watching on or off; while off it does not even stat.
    Inode and size are compared too: editors that save by rename keep the mtime's second.
    """
    while True:
        await asyncio.sleep(interval)
        if holder.current.server.watch_config and _stamp(holder.path) != reload.stamp:
            reload("file_changed")


class EnvFileError(Exception):
    """An env file that cannot be used; the message names the file and line, never a value."""


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines, `#` comments and a leading `export ` are allowed, one pair of matching
    quotes around the value is removed, nothing is expanded. The file holds secrets, so it must not be
    open to group or others (chmod 600), as ssh insists for private keys."""
    try:
        with open(path, encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode & 0o777
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise EnvFileError(f"env file {path}: cannot read it: {getattr(e, 'strerror', None) or e}") from None
    if mode & 0o077:
        raise EnvFileError(f"env file {path} is open to other users (mode {mode:o}); run: chmod 600 {path}")
    values: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not _ENV_NAME.fullmatch(key.strip()):
            raise EnvFileError(f"env file {path}, line {n}: expected KEY=VALUE")  # the line may hold a secret
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


class EnvFile:
    """Puts an env file's pairs into os.environ (file wins); a reload also drops keys no longer in it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.applied: set[str] = set()

    def apply(self) -> None:
        values = read_env_file(self.path)
        for key in self.applied - values.keys():
            os.environ.pop(key, None)
        os.environ.update(values)
        self.applied = set(values)


def _fail(message: str, code: int) -> int:
    """Start-up failure: exactly one line on stderr (launchd files it in litegate.err.log)."""
    print("litegate: " + " ".join(message.splitlines()), file=sys.stderr, flush=True)
    return code


def config_error_line(e: ConfigError) -> str:
    return f"invalid config {e.source}: " + "; ".join(f"{path}: {reason}" for path, reason in e.problems)


def serve(config_path: str, host: str | None = None, port: int | None = None, env_file: str | None = None) -> int:
    env = EnvFile(env_file) if env_file else None
    try:
        if env:
            env.apply()
        cfg = load(config_path)
    except EnvFileError as e:
        return _fail(str(e), EX_CONFIG)
    except ConfigError as e:
        return _fail(config_error_line(e), EX_CONFIG)
    log.configure(cfg.server.log_level, cfg.server.log_format)
    host = host or cfg.server.host
    port = cfg.server.port if port is None else port
    refusal = check_exposure(cfg, host)
    if refusal:
        return _fail(refusal, EX_CONFIG)
    try:
        return asyncio.run(_run(ConfigHolder(config_path, cfg), host, port, env))
    except KeyboardInterrupt:
        return 0
