"""What monitors ask: /health (liveness, no backend calls), /health/backends and /metrics
(an admin key is needed for the latter two when keys are configured)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from litegate import __version__
from litegate.config import Config
from litegate.core import auth
from litegate.core.services import Call, Services
from litegate.http.appkeys import CALL, HOLDER, SERVICES, STARTED


async def health(request: web.Request) -> web.Response:
    holder = request.app[HOLDER]
    body = {"status": "ok", "version": __version__, "uptime_s": round(time.time() - request.app[STARTED], 1),
            "config_loaded_at": holder.current.loaded_at, "models": len(holder.current.groups())}
    return web.json_response(body, headers={"x-request-id": request[CALL].request_id})


def _admin_key(request: web.Request, call: Call) -> None:
    """For the public paths that still need an admin when keys are configured."""
    auth.require_admin(auth.authenticate(call.cfg, request.headers.get("authorization"),
                                         request.headers.get("x-api-key")))


def backends_body(svc: Services, cfg: Config) -> dict[str, Any]:
    """Each deployment's state and what each Ollama has loaded (/health/backends, /admin/backends)."""
    return {"deployments": svc.backends.report(cfg), "loaded_models": svc.backends.loaded_models,
            "state": svc.state.status()}


async def health_backends(request: web.Request) -> web.Response:
    call = request[CALL]
    _admin_key(request, call)
    return web.json_response(backends_body(request.app[SERVICES], call.cfg),
                             headers={"x-request-id": call.request_id})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    call = request[CALL]
    _admin_key(request, call)
    svc = request.app[SERVICES]
    gauges = []
    for d in svc.backends.report(call.cfg):
        labels = (("deployment", d["id"]), ("model", d["name"]))
        gauges += [("litegate_deployment_healthy", labels, 1.0 if d["state"] == "healthy" else 0.0),
                   ("litegate_deployment_in_flight", labels, float(d["in_flight"])),
                   ("litegate_deployment_queued", labels, float(d["queued"]))]
    shared = svc.state.status()
    if shared["shared"]:
        gauges.append(("litegate_state_store_up", (), 1.0 if shared["up"] else 0.0))
    if svc.usage is not None:
        stats = svc.usage.stats()
        gauges += [("litegate_usage_rows_pending", (), float(stats["rows_pending"])),
                   ("litegate_usage_rows_dropped_total", (), float(stats["rows_dropped"]))]
    return web.Response(text=svc.metrics.render(gauges), content_type="text/plain",
                        headers={"x-request-id": call.request_id})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/health/backends", health_backends)
    app.router.add_get("/metrics", metrics)
