"""Assembly: create_app() wires routes, middlewares and the shared services (backend sessions,
usage store, limits, metrics) under typed AppKeys; daemon.py runs it as a service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import AsyncIterator

import platformdirs

import aiohttp
import structlog
from aiohttp import web

from . import admin, api, dashboard, limits, upstream
from .config import Budget, Config, ConfigError, ConfigHolder
from .errors import GatewayError
from .gateway import Services
from .tools import SearchCache
from .usage import UsageStore

USAGE = web.AppKey("usage", object)

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
    app[admin.RELOAD] = _reload_without_env(holder)  # daemon.py replaces it with its Reloader
    api.add_routes(app)
    admin.add_routes(app)
    dashboard.add_routes(app)
    return app


def _reload_without_env(holder: ConfigHolder):
    async def reload() -> tuple[bool, str | None]:
        try:
            holder.reload()
        except ConfigError as e:
            return False, e.describe()
        return True, None
    return reload


async def _usage_store(app: web.Application) -> AsyncIterator[None]:
    """Open the usage store and restore each key's day/month sums; flush and close it at the very end.

    aiohttp runs cleanup_ctx teardown only after AppRunner.cleanup() has closed the listening socket and
    waited (up to server.shutdown_grace_s) for every in-flight request and stream, so the rows the last
    streams record are still here to flush. (on_shutdown would be too early: it runs before the drain.)
    """
    cfg = app[api.HOLDER].current
    store = None
    if cfg.usage.enabled:
        path = cfg.usage.path or os.environ.get("LITEGATE_DATA_DIR") or platformdirs.user_data_dir("litegate")
        store = UsageStore(path, retention_days=cfg.usage.retention_days)
        await store.start()
    app[USAGE] = store
    yield
    if store is not None:
        await store.close()


async def _services(app: web.Application) -> AsyncIterator[None]:
    cfg = app[api.HOLDER].current
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30, enable_cleanup_closed=True),
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"user-agent": "litegate"},
        auto_decompress=True,
    )
    fetcher = upstream.fetch_session(allow_private=False)
    open_fetcher = upstream.fetch_session(allow_private=True)
    ttl = cfg.web_search.cache_ttl_s if cfg.web_search else 3600
    services = app[api.SERVICES] = Services(session=session, fetcher=fetcher, open_fetcher=open_fetcher,
                                            usage=app[USAGE], search_cache=SearchCache(ttl_s=ttl, max_entries=2048))
    budgets = any(k.budget != Budget() for k in cfg.auth.keys)
    if budgets and services.usage is not None and services.usage.available:
        await _restore_limits(services)  # only budgets need history; rate windows start empty
    poller = asyncio.create_task(_poll_loaded(app, services))
    yield
    poller.cancel()
    await asyncio.gather(poller, return_exceptions=True)
    await session.close()
    await fetcher.close()
    await open_fetcher.close()


async def _restore_limits(services: Services) -> None:
    """Budgets survive a restart: today's and this month's use per key, from the usage store."""
    now = time.time()
    try:
        day = await services.usage.sums_by_key_since(limits.start_of_day(now))
        month = await services.usage.sums_by_key_since(limits.start_of_month(now))
    except GatewayError as e:
        logger.warning("limits_restore_failed", error=e.code)
        return
    services.limits.restore(day, month)


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
