"""The GatewayError tree: every failure litegate reports, with its HTTP status and OpenAI type.

Foreign errors (aiohttp, msgspec, a backend's error body) are translated into these at the
boundary where they happen; api.py is the one place that turns them into responses.
`retryable` tells the gateway whether another attempt or a fallback deployment may succeed.
"""

from __future__ import annotations

import msgspec


class ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


_encode = msgspec.json.Encoder().encode


class GatewayError(Exception):
    status = 500
    type = "server_error"
    code: str | None = None
    retryable = False
    close_connection = False  # the request body was not read to its end: no further request can follow

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if retryable is not None:
            self.retryable = retryable
        if error_type is not None:
            self.type = error_type
        self.retry_after = retry_after

    def body(self) -> ErrorEnvelope:
        return ErrorEnvelope(ErrorBody(self.message, self.type, self.param, self.code))

    def to_json(self) -> bytes:
        return _encode(self.body())

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(0, int(self.retry_after + 0.999)))}


class SeeOther(GatewayError):
    """Not a failure of the request but a redirect: a browser without a session goes to sign in."""

    status = 303
    type = "see_other"

    def __init__(self, location: str) -> None:
        super().__init__(f"see {location}")
        self.location = location

    def headers(self) -> dict[str, str]:
        return {"location": self.location, "cache-control": "no-store"}


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeout(GatewayError):
    """The client did not send its request (its body) in time; the connection is closed."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"
    close_connection = True


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"
    close_connection = True


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class InternalError(GatewayError):
    status = 500
    type = "server_error"
    code = "internal_error"


class ShuttingDown(GatewayError):
    """litegate is stopping and its drain grace (server.shutdown_grace_s) ran out."""

    status = 503
    type = "service_unavailable_error"
    code = "server_shutting_down"


def clip(text: str, limit: int = 200) -> str:
    """A client-supplied value as it may be echoed in a message or a log line: at most `limit` characters."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


class UpstreamError(GatewayError):
    """The backend answered with an error or with something that is not its protocol."""

    status = 502
    type = "api_error"
    code = "upstream_error"
    retryable = True


class UpstreamUnavailable(UpstreamError):
    """Could not connect, or the backend says it is overloaded."""

    status = 502
    code = "backend_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout_error"
    code = "backend_timeout"


class StreamInterrupted(UpstreamError):
    """The backend's stream ended before its terminal event, or broke mid-way."""

    code = "stream_interrupted"


def from_backend_status(status: int, message: str, *, retry_after: float | None = None) -> GatewayError:
    """Map a backend HTTP error to ours, keeping its status class (mapping.md §3 Errors).

    The client's key is litegate's, not the backend's, so a backend 401/403 is a 502.
    """
    if status == 404:
        # The model may be missing on this deployment only (not pulled on that Mac): try others.
        return ModelNotFound(message, retryable=True)
    if status == 413:
        return PayloadTooLarge(message)
    if status == 429:
        return RateLimited(message, retry_after=retry_after)
    if status in (401, 403):
        return UpstreamError(f"backend rejected litegate's credentials: {message}", code="backend_auth_error", retryable=False)
    if status == 408:
        return UpstreamTimeout(message)
    if 400 <= status < 500:
        return BadRequest(message, status=status if status in (400, 409, 422) else 400)
    if status in (503, 529):
        return UpstreamUnavailable(
            message, status=503, error_type="service_unavailable_error", code="server_is_overloaded", retry_after=retry_after
        )
    if status == 504:
        return UpstreamTimeout(message)
    return UpstreamError(message)


# Codes of litegate's own policy: the key's limits, budgets and rights. Not a model failing.
POLICY_CODES = frozenset({"rate_limit_requests", "rate_limit_tokens", "concurrency_limit", "budget_exceeded",
                          "search_limit", "model_not_allowed", "admin_required", "keys_required"})
# Codes a backend (or the way to it) is to blame for, whatever the status.
BACKEND_CODES = frozenset({"upstream_error", "backend_unavailable", "backend_timeout", "stream_interrupted",
                           "server_is_overloaded", "backend_auth_error", "deployment_at_capacity",
                           "rate_limit_exceeded"})


def error_class(status: int, code: str | None) -> str | None:
    """Who a failed request's outcome is down to: "backend" (a model or the way to it failed), "policy"
    (litegate's own limits, budgets and key rights said no), "client" (a bad request, a missing or wrong key,
    a misspelled model, a client that went away); None for a success. Dashboards count model errors apart
    from the others, so a key hitting its budget does not read as an unhealthy model."""
    if status < 400 and code is None:
        return None
    if code in POLICY_CODES:
        return "policy"
    if code in BACKEND_CODES or status >= 500:
        return "backend"
    if status == 403:
        return "policy"
    if status < 400:  # a stream that began and then failed
        return "backend"
    return "client"
