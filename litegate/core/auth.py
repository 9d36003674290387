"""Bearer keys -> Principal, and what each principal may call.

A presented key is compared in constant time against every configured key (plain secrets from
the environment, or salted SHA-256 hashes from the config), with no early exit. Keys are long
random tokens, so a fast salted hash is enough: there is nothing to brute-force. With no keys
configured the gateway is open; app.py refuses to bind a non-loopback address in that case.
Requests without a key from a configured trusted network (auth.trusted_networks) count as that
network's own principal, for apps that cannot send a key.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from litegate.config import Config, Key, TrustedNetwork
from litegate.errors import BadRequest, Forbidden, Unauthorized, clip

KEY_PREFIX = "sk-lg-"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    models: tuple[str, ...] = ("*",)
    admin: bool = False
    key: Key | None = None

    def may_use(self, model: str) -> bool:
        if self.models == ("*",):
            return True
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)


ANONYMOUS = Principal("anonymous", ("*",), admin=True)


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def hash_key(secret: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    return f"sha256:{salt}:{hashlib.sha256((salt + secret).encode()).hexdigest()}"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _matches(key: Key, given: bytes, presented: str) -> bool:
    if key.key_hash:
        _, salt, _ = key.key_hash.split(":")
        return hmac.compare_digest(hash_key(presented, salt).encode(), key.key_hash.encode())
    return hmac.compare_digest(given, key.secret.encode())


MISSING_KEY = "Missing API key: send it as 'Authorization: Bearer <key>'"


def authenticate(cfg: Config, authorization: str | None, api_key_header: str | None = None,
                 remote: str | None = None) -> Principal:
    """The principal for a request's credentials, or Unauthorized (which says nothing of keys).

    Without a key, a request from a trusted network (`remote`, the peer's address) is that
    network's principal: never an admin, with its own models and limits."""
    if not cfg.auth.keys:
        return ANONYMOUS
    presented = bearer(authorization) or (api_key_header or "").strip()
    if not presented:
        trusted = trusted_network(cfg, remote)
        if trusted is None:
            raise Unauthorized(MISSING_KEY)
        return Principal(trusted.name, trusted.models, False, trusted.key)
    try:
        given = presented.encode()
    except UnicodeEncodeError:  # aiohttp keeps undecodable header bytes as surrogates
        raise BadRequest("the API key header is not valid UTF-8", code="invalid_api_key") from None
    found = None
    for key in cfg.auth.keys:
        if _matches(key, given, presented) and found is None:
            found = key
    if found is None or found.revoked:
        raise Unauthorized("Incorrect API key provided")
    return Principal(found.name, found.models, found.admin, found)


def trusted_network(cfg: Config, remote: str | None) -> TrustedNetwork | None:
    """The first trusted network the peer's address is in, if any."""
    if not remote or not cfg.auth.trusted_networks:
        return None
    try:
        ip = ipaddress.ip_address(remote.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    if getattr(ip, "ipv4_mapped", None):  # ::ffff:100.64.1.2 on a dual-stack socket
        ip = ip.ipv4_mapped
    for t in cfg.auth.trusted_networks:
        if any(ip in net for net in t.parsed):
            return t
    return None


def check_model(principal: Principal, requested: str, resolved: str) -> None:
    """A key may call a model by its client-facing name or by what that name resolves to."""
    if principal.may_use(requested) or principal.may_use(resolved):
        return
    raise Forbidden(f"key '{principal.name}' may not use model '{clip(requested)}'", param="model")


def require_admin(principal: Principal) -> None:
    if not principal.admin:
        raise Forbidden(f"key '{principal.name}' is not an admin key", code="admin_required")
