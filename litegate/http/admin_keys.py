"""The admin API's keys: list every key (config and runtime) with its last use and refusals, make a key,
revoke one. Admin only (a bearer admin key, or a dashboard session with its CSRF token).

A new key's secret is in the one response that makes it and nowhere else: the runtime keys file
(config/runtime_keys.py) keeps a salted hash, like `litegate keys new`. The snapshot is swapped whole
(ConfigHolder.keys_changed), so requests in flight keep the keys they started with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import structlog
from aiohttp import web

from litegate.config import ConfigError, ConfigHolder, runtime_keys
from litegate.core import auth
from litegate.errors import BadRequest, GatewayError, NotFound
from litegate.http.admin import json_reply
from litegate.http.appkeys import CALL, HOLDER, PRINCIPAL, SERVICES
from litegate.usage import queries

log = structlog.get_logger("litegate.http.admin_keys")


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    models: list[str] = []
    admin: bool = False
    rpm: int | None = None


_new_key = msgspec.json.Decoder(NewKey)


async def list_keys(request: web.Request) -> web.Response:
    """GET /admin/keys: each key's name, where it lives, rights, state, last use, and refusals in 24 h."""
    auth.require_admin(request[PRINCIPAL])
    cfg = request[CALL].cfg
    store = request.app[SERVICES].usage
    activity: dict[str, dict] = {}
    if store is not None:
        try:
            activity = await store.query(queries.key_activity, time.time() - 86400)
        except GatewayError:
            activity = {}  # the usage store is unavailable: keys are still listed
    keys = [{"name": k.name, "source": k.source, "admin": k.admin, "revoked": k.revoked, "models": list(k.models),
             "created_at": k.created_at or None, **activity.get(k.name, {"last_used": None, "refused": 0})}
            for k in cfg.auth.keys]
    unknown = activity.get("unauthenticated", {})
    return json_reply({"keys": keys, "keys_file": str(runtime_keys.path_for(cfg)),
                  "unauthenticated": {"last_at": unknown.get("last_used")}})


async def create_key(request: web.Request) -> web.Response:
    """POST /admin/keys {"name", "models"?, "admin"?, "rpm"?}: 201 with the secret, shown this once."""
    auth.require_admin(request[PRINCIPAL])
    try:
        body = _new_key.decode(await request.read())
    except msgspec.ValidationError as e:
        raise BadRequest(f"invalid key request: {e}", param="name") from None
    except msgspec.DecodeError:
        raise BadRequest("the body must be JSON: {\"name\": ..., \"models\": [...], \"admin\": false}") from None
    holder: ConfigHolder = request.app[HOLDER]
    cfg = holder.current
    if not runtime_keys.NAME.match(body.name):
        raise BadRequest(f"key name {body.name!r}: use letters, digits and . _ @ - (at most 64)", param="name")
    if any(k.name == body.name for k in cfg.auth.keys):
        raise BadRequest(f"a key named {body.name!r} exists already; revoked names are not reused", param="name")
    names = cfg.client_names()
    for pattern in body.models:
        if not any(c in pattern for c in "*?[") and pattern not in names:
            raise BadRequest(f"model {pattern!r} is no model, route or alias of this gateway", param="models")
    if not cfg.auth.keys and not body.admin:
        raise BadRequest("the first key turns keys on for everyone, the dashboard included: make it an admin "
                         "key (\"admin\": true), or you could not sign in again", param="admin")
    if body.rpm is not None and body.rpm < 0:
        raise BadRequest("rpm must be 0 or more", param="rpm")
    secret = auth.new_key()
    with _file_errors():
        runtime_keys.add(runtime_keys.path_for(cfg), name=body.name, key_hash=auth.hash_key(secret),
                         models=body.models, admin=body.admin, rpm=body.rpm)
        holder.keys_changed()
    log.info("key_created", key=body.name, admin=body.admin, by=request[PRINCIPAL].name)
    return json_reply({"name": body.name, "key": secret, "models": body.models or ["*"], "admin": body.admin,
                  "note": "shown once: litegate keeps only a salted hash"}, status=201)


async def revoke_key(request: web.Request) -> web.Response:
    """POST /admin/keys/{name}/revoke: the key stops working at once, and stays revoked across reloads."""
    auth.require_admin(request[PRINCIPAL])
    name = request.match_info["name"]
    holder: ConfigHolder = request.app[HOLDER]
    key = next((k for k in holder.current.auth.keys if k.name == name), None)
    if key is None:
        raise NotFound(f"no key named {name!r}", param="name")
    with _file_errors():
        runtime_keys.revoke(runtime_keys.path_for(holder.current), name, runtime=key.source == "runtime")
        holder.keys_changed()
    log.info("key_revoked", key=name, by=request[PRINCIPAL].name)
    return json_reply({"name": name, "revoked": True})


@contextmanager
def _file_errors() -> Iterator[None]:
    """The keys file could not be read or written: a 500 that names the file (the old keys stay)."""
    try:
        yield
    except (runtime_keys.KeysFileError, ConfigError) as e:
        raise GatewayError(str(e), status=500, code="keys_file_error") from None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/keys", list_keys)
    app.router.add_post("/admin/keys", create_key)
    app.router.add_post("/admin/keys/{name}/revoke", revoke_key)
