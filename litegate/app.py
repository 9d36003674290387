"""Assembly and life cycle: create_app() wires routes, middlewares and shared services;
serve() runs it as a daemon with SIGHUP (reload) and SIGTERM (graceful drain) handling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
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
    app.cleanup_ctx.append(_services)
    api.add_routes(app)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    cfg = app[api.HOLDER].current
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30, enable_cleanup_closed=True),
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"user-agent": "litegate"},
        auto_decompress=True,
    )
    fetcher = upstream.fetch_session(cfg.images.allow_private)
    app[api.SERVICES] = Services(session=session, fetcher=fetcher)
    yield
    await session.close()
    await fetcher.close()


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


async def _run(holder: ConfigHolder, host: str, port: int) -> int:
    cfg = holder.current
    app = create_app(holder)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                           shutdown_timeout=cfg.server.shutdown_grace_s)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        print(f"litegate: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stops = 0

    def on_term() -> None:
        nonlocal stops
        stops += 1
        if stops > 1:
            logger.warning("shutdown_forced")
            sys.stdout.flush()
            os._exit(1)
        logger.info("shutdown_started", grace_s=holder.current.server.shutdown_grace_s)
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, on_term)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(holder)))
    print(f"litegate listening on http://{host}:{port}", flush=True)
    logger.info("ready", host=host, port=port, models=len(cfg.groups()), config=holder.path)
    await stop.wait()
    await runner.cleanup()
    logger.info("shutdown_complete")
    return 0


async def _reload(holder: ConfigHolder) -> None:
    try:
        cfg = holder.reload()
    except ConfigError as e:
        logger.error("config_reload_failed", problems=[f"{p}: {r}" for p, r in e.problems])
        return
    logger.info("config_reloaded", models=len(cfg.groups()))


def serve(config_path: str, host: str | None = None, port: int | None = None) -> int:
    try:
        cfg = load(config_path)
    except ConfigError as e:
        print(f"litegate: invalid config\n{e.describe()}", file=sys.stderr)
        return 2
    log.configure(cfg.server.log_level, cfg.server.log_format)
    host = host or cfg.server.host
    port = cfg.server.port if port is None else port
    refusal = check_exposure(cfg, host)
    if refusal:
        print(f"litegate: {refusal}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(ConfigHolder(config_path, cfg), host, port))
    except KeyboardInterrupt:
        return 0
