"""Assembly: create_app() wires the middleware stack, each face's routes and the shared services
(backend sessions, usage store, limits, metrics) under typed AppKeys; service/daemon.py runs the app.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import platformdirs
import structlog
from aiohttp import web

from litegate import state, upstream
from litegate.config import Budget, ConfigHolder
from litegate.core import limits
from litegate.core.services import Services
from litegate.state import team
from litegate.errors import GatewayError
from litegate.http import admin, admin_keys, anthropic, dashboard, middleware, ollama, openai, probes, responses
from litegate.http.appkeys import HOLDER, IN_FLIGHT, RESPONSES, SERVICES, STARTED
from litegate.http.sessions import SESSIONS
from litegate.tools import SearchCache
from litegate.usage import UsageStore
from litegate.usage.responses import ResponseStore, responses_db_file

USAGE = web.AppKey("usage", UsageStore)
ROUTES = (probes.add_routes, openai.add_routes, responses.add_routes, ollama.add_routes, anthropic.add_routes,
          admin.add_routes, admin_keys.add_routes, dashboard.add_routes)  # one row per face

logger = structlog.get_logger("litegate")


def create_app(holder: ConfigHolder) -> web.Application:
    cfg = holder.current
    app = web.Application(
        client_max_size=int(cfg.server.max_body_mb * (1 << 20)),
        middlewares=middleware.MIDDLEWARES,
    )
    app[HOLDER] = holder
    app[STARTED] = time.time()
    app[IN_FLIGHT] = set()
    app.cleanup_ctx.append(_usage_store)  # first in, last out: its teardown runs after _services'
    app.cleanup_ctx.append(_services)
    app.cleanup_ctx.append(_response_store)
    for add_routes in ROUTES:
        add_routes(app)
    return app


async def _usage_store(app: web.Application) -> AsyncIterator[None]:
    """Open the usage store and restore each key's day/month sums; flush and close it at the very end.

    aiohttp runs cleanup_ctx teardown only after AppRunner.cleanup() has closed the listening socket and
    waited (up to server.shutdown_grace_s) for every in-flight request and stream, so the rows the last
    streams record are still here to flush. (on_shutdown would be too early: it runs before the drain.)
    """
    cfg = app[HOLDER].current
    store = None
    if cfg.usage.enabled:
        store = UsageStore(_data_dir(cfg), retention_days=cfg.usage.retention_days)
        await store.start()
    app[USAGE] = store
    yield
    if store is not None:
        await store.close()


def _data_dir(cfg) -> str:
    return cfg.usage.path or os.environ.get("LITEGATE_DATA_DIR") or platformdirs.user_data_dir("litegate")


async def _response_store(app: web.Application) -> AsyncIterator[None]:
    """Stored Responses API answers (responses.store), beside the usage database unless told otherwise."""
    r = app[HOLDER].current.responses
    store = None
    if r.store:
        path = Path(r.path).expanduser() if r.path else responses_db_file(_data_dir(app[HOLDER].current))
        if path.suffix not in (".db", ".sqlite", ".sqlite3"):
            path = path / "responses.db"
        store = app[RESPONSES] = ResponseStore(path, retention_days=r.retention_days, max_rows=r.max_stored)
        if app[HOLDER].current.state is not None:  # shared with the other instances through Redis
            store.shared = app[SERVICES].state
    yield
    if store is not None:
        await store.close()


async def _services(app: web.Application) -> AsyncIterator[None]:
    cfg = app[HOLDER].current
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30, enable_cleanup_closed=True),
        timeout=aiohttp.ClientTimeout(total=None),
        headers={"user-agent": "litegate"},
        auto_decompress=True,
    )
    fetcher = upstream.fetch_session(allow_private=False)
    open_fetcher = upstream.fetch_session(allow_private=True)
    services = app[SERVICES] = Services(session=session, fetcher=fetcher, open_fetcher=open_fetcher,
                                        usage=app[USAGE])
    shared = services.state = state.make(cfg, services.limits, services.metrics,
                                         seed_source=_seed_source(services.usage),
                                         on_cooldown=services.backends.cool)
    team_store = shared if cfg.state is not None else None  # sessions and search results for all instances
    if team_store is not None:
        services.backends.on_cooldown = shared.cooled
    services.search_cache = SearchCache(max_entries=2048, shared=team_store)
    if SESSIONS in app:
        app[SESSIONS].shared = team_store
    budgets = any(k.budget != Budget() for k in (*cfg.auth.keys, *cfg.auth.trusted_networks))
    if budgets and services.usage is not None and services.usage.available:
        await _restore_limits(services)  # only budgets need history; rate windows start empty
    await shared.start()  # never fails: an unreachable Redis means local counts until it is back
    poller = asyncio.create_task(_poll_loaded(app, services))
    yield
    poller.cancel()
    await asyncio.gather(poller, return_exceptions=True)
    await shared.close()
    await services.pool.close()
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


def _seed_source(store: UsageStore | None) -> state.SeedSource | None:
    """This instance's counts from its SQLite log (requests before `until`), published to Redis as its own."""
    if store is None:
        return None

    async def seed(until: float) -> state.Seed:
        day = await store.totals(limits.start_of_day(until), until, "key")
        month = await store.totals(limits.start_of_month(until), until, "key")
        points = [await store.timeseries(until - 31 * 86400, until, 3600, split) for split in (None, "key", "model")]
        return state.Seed(day={t.group: (t.prompt_tokens + t.completion_tokens, t.cost) for t in day},
                          month={t.group: (t.prompt_tokens + t.completion_tokens, t.cost) for t in month},
                          hours=team.hours_from_points(*points))

    return seed


async def _poll_loaded(app: web.Application, services: Services) -> None:
    """Keep Backends' view of loaded Ollama models fresh (router.ollama_poll_s; 0 = off)."""
    while True:
        cfg = app[HOLDER].current
        if cfg.router.ollama_poll_s <= 0:
            await asyncio.sleep(5)
            continue
        await services.backends.poll_loaded(services.session, cfg)
        await asyncio.sleep(cfg.router.ollama_poll_s)
