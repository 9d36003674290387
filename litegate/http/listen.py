"""The listening side: how connections are accepted, timed out and refused before any route runs.

- `runner(app)`: the AppRunner litegate serves with (the daemon, and tests that need a real socket):
  handlers cancelled when their client goes away, no aiohttp access log (the middleware writes
  one line per request), idle and header-read timeout server.idle_timeout_s (aiohttp closes a
  connection that has no complete request by then, whether idle after a reply or still sending
  its headers), and the drain grace plus a margin (the daemon ends what is left at the grace).
- a per-peer connection cap (server.max_connections_per_peer; trusted proxies exempt): one client
  holding the file-descriptor limit in open sockets would lock everyone out, with no key needed.
  A connection over the cap gets a 503 in the OpenAI error shape and is closed at once.
- aiohttp's own answers to malformed HTTP (bad request line, header too long, bad chunking) as
  JSON in the OpenAI error shape, with one log line instead of a traceback.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from litegate.config import ConfigHolder
from litegate.errors import GatewayError, UpstreamUnavailable
from litegate.http.appkeys import HOLDER

log = structlog.get_logger("litegate.http")
CUT_MARGIN_S = 2.0  # after the grace the daemon ends what is left; aiohttp's own cancel comes this much later
_BUSY = UpstreamUnavailable("too many open connections from your address", code="too_many_connections",
                            status=503, error_type="service_unavailable_error").to_json()
_TOO_MANY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
             b"content-length: %d\r\n\r\n%s" % (len(_BUSY), _BUSY))


def runner(app: web.Application) -> web.AppRunner:
    server = app[HOLDER].current.server
    return Runner(app, handler_cancellation=True, access_log=None, keepalive_timeout=server.idle_timeout_s,
                  shutdown_timeout=server.shutdown_grace_s + CUT_MARGIN_S)


class Runner(web.AppRunner):
    """An AppRunner whose server guards each connection (GuardedServer)."""

    async def _make_server(self) -> web.Server:
        return GuardedServer.adopt(await super()._make_server(), self.app[HOLDER])


class GuardedServer(web.Server):
    """aiohttp's Server with a count of open connections per peer address."""

    holder: ConfigHolder
    peers: dict[str, int]

    @classmethod
    def adopt(cls, server: web.Server, holder: ConfigHolder) -> GuardedServer:
        # The app built this server (its handler, request factory and handler settings); only the
        # protocol it makes per connection changes, so it is re-classed rather than rebuilt.
        server.__class__ = cls
        server.holder, server.peers = holder, {}
        return server  # type: ignore[return-value]

    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)

    def admit(self, peer: str) -> bool:
        cfg = self.holder.current
        cap = cfg.server.max_connections_per_peer
        open_now = self.peers.get(peer, 0)
        if cap and open_now >= cap and not cfg.is_trusted_proxy(peer):
            return False
        self.peers[peer] = open_now + 1
        return True

    def release(self, peer: str) -> None:
        left = self.peers.get(peer, 1) - 1
        if left > 0:
            self.peers[peer] = left
        else:
            self.peers.pop(peer, None)


class _Handler(RequestHandler):
    __slots__ = ("_peer",)

    def __init__(self, manager: GuardedServer, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._peer: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, (tuple, list)) and peername else "unix"
        server: GuardedServer = self._manager  # type: ignore[assignment]
        if not server.admit(peer):
            log.warning("connection_refused", peer=peer, reason="max_connections_per_peer",
                        limit=server.holder.current.server.max_connections_per_peer)
            transport.write(_TOO_MANY)  # type: ignore[attr-defined]
            transport.close()
            self.force_close()
            return
        self._peer = peer
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._peer is not None and self._manager is not None:
            self._manager.release(self._peer)  # type: ignore[attr-defined]
            self._peer = None
        super().connection_lost(exc)

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's answer to a request no route saw (malformed HTTP, or an error that escaped the
        middleware): one log line and the OpenAI error shape, then the connection closes."""
        reason = " ".join(str(getattr(exc, "message", None) or exc or message or "").split())[:200]
        if status >= 500:
            log.error("http_internal_error", peer=request.remote, status=status, error=type(exc).__name__)
            err = GatewayError("litegate hit an internal error; see its log", status=status, code="internal_error")
        else:
            log.warning("bad_http_request", peer=request.remote, status=status, error=reason)
            err = GatewayError(f"malformed HTTP request: {reason}", status=status,
                               error_type="invalid_request_error", code="bad_http_request")
        if request.writer.output_size > 0:  # part of a reply is out: nothing can be said any more
            raise ConnectionError("response already begun")
        resp = web.Response(status=status, body=err.to_json(), content_type="application/json")
        resp.force_close()
        return resp
