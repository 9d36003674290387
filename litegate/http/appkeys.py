"""The typed keys under which the app and each request keep what they share (no module globals)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from litegate.config import ConfigHolder
from litegate.core.auth import Principal
from litegate.core.services import Call, Services
from litegate.usage.responses import ResponseStore

HOLDER = web.AppKey("holder", ConfigHolder)
SERVICES = web.AppKey("services", Services)
STARTED = web.AppKey("started", float)
CALL = web.RequestKey("call", Call)
PRINCIPAL = web.RequestKey("principal", Principal)
RESPONSES = web.AppKey("responses", ResponseStore)  # stored Responses API answers; absent when responses.store is false
# The tasks handling a request right now: when the shutdown grace runs out each is ended by litegate
# (middleware.cut_in_flight): a 503, or the face's error frame on a stream, instead of a dropped socket.
IN_FLIGHT = web.AppKey("in_flight", set[asyncio.Task])
