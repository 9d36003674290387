"""The admin JSON API (admin key or dashboard session): usage, limits, errors, live requests,
backends, the running config, and reload. The dashboard and `litegate usage` read the same data.
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec
from aiohttp import web

import structlog

from litegate import log
from litegate.config import ConfigError, ConfigHolder, redacted
from litegate.config.envfile import EnvFileError
from litegate.core import auth
from litegate.core.services import Call
from litegate.errors import BadRequest
from litegate.http.appkeys import CALL, HOLDER, PRINCIPAL, SERVICES
from litegate.http.probes import backends_body
from litegate.usage import queries

logger = structlog.get_logger("litegate")

RESTART_ONLY = ("host", "port", "shutdown_grace_s", "idle_timeout_s")
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str | None, default: str, now: float | None = None) -> float:
    """'7d', '24h', '90m' or a unix time -> a unix time; 400 naming `since` otherwise."""
    now = time.time() if now is None else now
    value = value or default
    m = _SPAN.match(value.strip())
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(value)
    except ValueError:
        raise BadRequest(f"since={value!r}: use a span like 7d, 24h, 30m or a unix time", param="since") from None


def _admin(request: web.Request) -> Call:
    auth.require_admin(request.get(PRINCIPAL, auth.ANONYMOUS))
    return request[CALL]


def json_reply(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(obj), status=status, content_type="application/json")


def _whole(query, name: str, default: str, what: str = "a number") -> int:
    try:
        return int(query.get(name, default))
    except ValueError:
        raise BadRequest(f"{name} must be {what}", param=name) from None


def _store(request: web.Request):
    store = request.app[SERVICES].usage
    if store is None:
        raise BadRequest("usage accounting is disabled (usage.enabled is false)", code="usage_disabled")
    return store


async def usage(request: web.Request) -> web.Response:
    _admin(request)
    q = request.query
    since = parse_since(q.get("since"), "7d")
    until = parse_since(q["until"], "0s") if "until" in q else None
    group_by = q.get("group_by") or None
    store = _store(request)
    rows = await store.totals(since, until, group_by)
    body = {"since": since, "until": until, "group_by": group_by, "rows": rows,
            "first_at": await store.query(queries.first_time)}
    team = await request.app[SERVICES].state.team_usage(since, until, group_by)
    if team is not None:  # state shared through Redis: every instance's counts, per instance and in total
        body["team"] = team
    return json_reply(body)


async def timeseries(request: web.Request) -> web.Response:
    _admin(request)
    q = request.query
    since = parse_since(q.get("since"), "24h")
    bucket = _whole(q, "bucket_s", "3600", "a whole number of seconds")
    points = await _store(request).timeseries(since, time.time(), bucket, q.get("split_by") or None)
    return json_reply({"since": since, "bucket_s": bucket, "points": points})


async def errors(request: web.Request) -> web.Response:
    _admin(request)
    limit = max(1, min(500, _whole(request.query, "limit", "50")))
    return json_reply({"errors": await _store(request).recent_errors(limit)})


async def requests_log(request: web.Request) -> web.Response:
    """GET /admin/requests: the request log, newest first, filtered by exact key, model, deployment, status,
    error_class (or "any"), face, route or request_id; `before` pages back. Never a prompt or a reply."""
    _admin(request)
    q = request.query
    since = parse_since(q.get("since"), "24h")
    before = parse_since(q["before"], "0s") if q.get("before") else None
    limit = max(1, min(1000, _whole(q, "limit", "200")))
    filters = {k: v for k, v in q.items() if k not in ("since", "before", "limit") and v != ""}
    rows = await _store(request).query(queries.request_log, since, filters, limit, before)
    return json_reply({"since": since, "requests": rows})


async def latency(request: web.Request) -> web.Response:
    """GET /admin/latency: p50/p95 latency and time to first token per time bucket, and generation speed
    (completion tokens per second) per deployment."""
    _admin(request)
    q = request.query
    since = parse_since(q.get("since"), "24h")
    bucket = _whole(q, "bucket_s", "3600", "a whole number of seconds")
    store = _store(request)
    points = await store.query(queries.latency_series, since, None, bucket)
    return json_reply({"since": since, "bucket_s": bucket, "points": points,
                  "speed": await store.query(queries.speed, since, None)})


async def limits(request: web.Request) -> web.Response:
    call = _admin(request)
    svc = request.app[SERVICES]
    return json_reply({"keys": await svc.state.snapshot(call.cfg), "state": svc.state.status()})


async def live(request: web.Request) -> web.Response:
    _admin(request)
    now = time.perf_counter()
    calls = [{"request_id": c.request_id, "model": c.model, "deployment": c.deployment, "key": c.key,
              "stream": c.stream, "elapsed_s": round(now - c.started, 2)}
             for c in request.app[SERVICES].live.values()]
    return json_reply({"in_flight": calls})


async def backends(request: web.Request) -> web.Response:
    call = _admin(request)
    return json_reply(backends_body(request.app[SERVICES], call.cfg))


async def config(request: web.Request) -> web.Response:
    call = _admin(request)
    holder = request.app[HOLDER]
    store = request.app[SERVICES].usage
    return json_reply({"config": redacted(call.cfg), "path": holder.path, "loaded_at": holder.current.loaded_at,
                  "last_reload": holder.last_reload, "usage_store": store.stats() if store else None})


async def reload_config(request: web.Request) -> web.Response:
    """POST /admin/reload: 200 with the new snapshot's time, or 400 naming what is wrong (old config kept)."""
    _admin(request)
    holder = request.app[HOLDER]
    reload(holder, "admin")
    return json_reply({"ok": True, "loaded_at": holder.current.loaded_at})


def reload(holder: ConfigHolder, reason: str) -> None:
    """Swap in the config file as it is now (env file re-read), or raise and keep the old one."""
    old = holder.current
    try:
        cfg = holder.reload()
    except ConfigError as e:
        logger.error("config_reload_failed", reason=reason, config=e.source, problems=[f"{p}: {r}" for p, r in e.problems])
        raise BadRequest(f"reload failed, the old config stays: {e.describe()}", code="invalid_config") from None
    except EnvFileError as e:
        logger.error("config_reload_failed", reason=reason, problems=[str(e)])
        raise BadRequest(f"reload failed, the old config stays: {e}", code="invalid_config") from None
    if (cfg.server.log_level, cfg.server.log_format) != (old.server.log_level, old.server.log_format):
        log.configure(cfg.server.log_level, cfg.server.log_format)
    changed = [f"server.{f}" for f in RESTART_ONLY if getattr(cfg.server, f) != getattr(old.server, f)]
    if cfg.state != old.state:  # the state backend is built once, at start
        changed.append("state")
    logger.info("config_reloaded", reason=reason, models=len(cfg.groups()), restart_needed=changed or None)


def add_routes(app: web.Application) -> None:
    for path, handler in (("usage", usage), ("timeseries", timeseries), ("errors", errors), ("limits", limits),
                          ("requests", requests_log), ("latency", latency),
                          ("live", live), ("backends", backends), ("config", config)):
        app.router.add_get(f"/admin/{path}", handler)
    app.router.add_post("/admin/reload", reload_config)
