"""The typed keys under which the app and each request keep what they share (no module globals)."""

from __future__ import annotations

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
