"""Anthropic's error shape for every GatewayError (anthropic-messages.md §6, §9.5).

`{"type":"error","error":{"type":<error_type>,"message":…}}` with the status Anthropic's SDKs
map to the matching exception class: an overloaded backend is 529 `overloaded_error` (the SDK
retries it), a timeout 504 `timeout_error`, any other server-side failure `api_error`.
The same body is the `error` event that ends a stream which fails after its first byte.
"""

from __future__ import annotations

import orjson

from litegate.errors import GatewayError

_BY_STATUS = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 504: "timeout_error",
    529: "overloaded_error",
}


def error_type(err: GatewayError) -> tuple[int, str]:
    """(status, Anthropic error type) for one of our errors."""
    status = err.status
    if status in (503, 529) or err.type == "service_unavailable_error" or err.code == "backend_unavailable":
        return 529, "overloaded_error"
    if status in _BY_STATUS:
        return status, _BY_STATUS[status]
    if 400 <= status < 500:
        return status, "invalid_request_error"  # 405, 409, 422...: Anthropic uses this type for other 4xx
    return status, "api_error"


def render_error(err: GatewayError) -> tuple[int, bytes]:
    """The Surface contract's renderer: (HTTP status, JSON body) in Anthropic's shape."""
    status, kind = error_type(err)
    return status, orjson.dumps({"type": "error", "error": {"type": kind, "message": err.message}})


def error_event(err: GatewayError) -> bytes:
    """The SSE frame that reports a failure after the 200 (the SDK raises on it)."""
    return b"event: error\ndata: " + render_error(err)[1] + b"\n\n"
