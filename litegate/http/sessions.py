"""Dashboard sign-in state: in-memory sessions (cookie token -> admin key name, CSRF token, expiry)
and the per-address throttle on sign-in attempts.

A session stands for the admin key that opened it, and only while the running config still has
that key, unchanged, unrevoked and admin: a reload that rotates or revokes the key ends its
sessions. Tokens and CSRF tokens are 256-bit random strings; nothing survives a restart, which
simply means signing in again. With shared state (Redis) a session is also kept there, under the
token's SHA-256 (never the token), so signing in on one instance signs you in on all of them. The store lives on the app (SESSIONS); api.auth_middleware reads it
on /ui and /admin routes, dashboard.py writes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from litegate.config import Config, Key

COOKIE = "litegate_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/ui/login"
STATIC_PREFIX = "/ui/static/"


def is_public(path: str) -> bool:
    """The sign-in page and the static assets (code and style, no data) need no session."""
    return path == LOGIN_PATH or path.startswith(STATIC_PREFIX)


def is_page(path: str) -> bool:
    """A dashboard page: without a session the browser is sent to the sign-in page, not given a 401."""
    return (path == "/ui" or path.startswith("/ui/")) and not path.startswith("/ui/api/")


def sign_in_location(path_qs: str) -> str:
    """Where a browser without a session goes: the sign-in form, which sends it back here after."""
    return f"{LOGIN_PATH}?{urlencode({'next': path_qs})}"


def accepts_cookie(path: str) -> bool:
    """Where a session cookie counts as credentials: the dashboard and the admin API it calls."""
    return path == "/ui" or path.startswith("/ui/") or path.startswith("/admin/")


def fingerprint(key: Key) -> str:
    """Identifies a key's secret without holding it: a rotated key no longer matches its sessions."""
    return hashlib.sha256((key.key_hash or key.secret).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    key_name: str
    key_fp: str
    csrf: str
    expires: float

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(presented.encode(), self.csrf.encode())


class Sessions:
    """Session tokens in memory, oldest evicted beyond max_sessions; expired ones purged as met.
    `shared` (a state backend, set by the app when state is shared) keeps them for the team too."""

    def __init__(self, ttl_s: float = 12 * 3600, max_sessions: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.max_sessions, self.clock = ttl_s, max_sessions, clock
        self._by_token: OrderedDict[str, Session] = OrderedDict()
        self.shared: Any = None

    async def open(self, key: Key) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(key.name, fingerprint(key), secrets.token_urlsafe(32), self.clock() + self.ttl_s)
        self._keep(token, session)
        if self.shared is not None:
            doc = {"key_name": session.key_name, "key_fp": session.key_fp, "csrf": session.csrf,
                   "expires_at": time.time() + self.ttl_s}
            await self.shared.put("session", _digest(token), msgspec.json.encode(doc), self.ttl_s)
        return token, session

    def _keep(self, token: str, session: Session) -> None:
        self._purge()
        while len(self._by_token) >= self.max_sessions:
            self._by_token.popitem(last=False)
        self._by_token[token] = session

    async def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._by_token.get(token)
        if self.shared is not None and self.shared.status()["up"]:
            session = await self._from_team(token)  # the team's word: a sign-out elsewhere ends it here too
        if session is not None and session.expires <= self.clock():
            self._by_token.pop(token, None)
            return None
        return session

    async def _from_team(self, token: str) -> Session | None:
        """The session as the team knows it (kept here too, to its original expiry, for when Redis is away)."""
        raw = await self.shared.get("session", _digest(token))
        if raw is None:
            self._by_token.pop(token, None)
            return None
        try:
            doc = msgspec.json.decode(raw)
            session = Session(str(doc["key_name"]), str(doc["key_fp"]), str(doc["csrf"]),
                              self.clock() + float(doc["expires_at"]) - time.time())
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            return None
        self._keep(token, session)
        return session

    async def close(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)
            if self.shared is not None:
                await self.shared.delete("session", _digest(token))

    async def resolve(self, cfg: Config, token: str | None) -> tuple[Session, Key] | None:
        """The live session for a cookie and the admin key it stands for, or None (and forgotten)."""
        session = await self.get(token)
        if session is None:
            return None
        for key in cfg.auth.keys:
            if key.name == session.key_name and key.admin and not key.revoked and fingerprint(key) == session.key_fp:
                return session, key
        await self.close(token)
        return None

    def __len__(self) -> int:
        return len(self._by_token)

    def _purge(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._by_token.items() if s.expires <= now]:
            del self._by_token[token]


class LoginThrottle:
    """At most `attempts` failed sign-ins per client address in a sliding `window_s`."""

    def __init__(self, attempts: int = 5, window_s: float = 60.0, max_clients: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts, self.window_s, self.max_clients, self.clock = attempts, window_s, max_clients, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int:
        """0 when the client may try now, else the seconds until its oldest failure leaves the window."""
        failures = self._recent(client)
        if len(failures) < self.attempts:
            return 0
        return max(1, int(failures[0] + self.window_s - self.clock()) + 1)

    def failed(self, client: str) -> None:
        failures = self._recent(client)
        failures.append(self.clock())
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client, deque())
        cutoff = self.clock() - self.window_s
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_address(request: web.Request, cfg: Config) -> str:
    """Who is signing in: the peer, unless the peer is a proxy named in server.trusted_proxies (such as
    `tailscale serve` on 127.0.0.1); then the nearest X-Forwarded-For entry that is not itself a trusted
    proxy (each proxy appends the address it saw, so entries further left are the client's own claims)."""
    remote = request.remote or ""
    if not cfg.is_trusted_proxy(remote):
        return remote
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not cfg.is_trusted_proxy(hop):
            return hop
    return hops[0] if hops else remote


def came_over_https(request: web.Request, cfg: Config) -> bool:
    """HTTPS to us, or to a trusted proxy in front (`tailscale serve` sets X-Forwarded-Proto)."""
    if request.secure:
        return True
    if not cfg.is_trusted_proxy(request.remote):
        return False
    return request.headers.get("x-forwarded-proto", "").split(",", 1)[0].strip().lower() == "https"


SESSIONS = web.AppKey("sessions", Sessions)
THROTTLE = web.AppKey("login_throttle", LoginThrottle)
