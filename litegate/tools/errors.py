"""ToolError: the one exception a server-side tool raises, with a reason the model can read.

A failed search or fetch is not a failed chat completion: the tool loop turns a ToolError into
the tool's result text (e.g. "web_search failed: <message>") and lets the model carry on.
Backends translate every foreign failure (aiohttp, timeouts, bad JSON, HTTP errors) into this.
"""

from __future__ import annotations


class ToolError(Exception):
    """A tool could not do its job. `message` is short, single-line and safe to show the model.

    `code` is a stable word for logs and metrics ("timeout", "unreachable", "auth", "quota",
    "rate_limited", "http_error", "bad_response", "bad_request", "refused", "unsupported");
    `retryable` says whether the same call may succeed a little later.
    """

    def __init__(self, message: str, *, code: str = "error", retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
