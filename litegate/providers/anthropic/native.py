"""Messages in, Messages out: a client's Anthropic request passed to an Anthropic deployment natively.

No round trip through the chat form, so cache_control, thinking signatures, server tools,
context_management and betas survive (anthropic-messages.md §9). What litegate still changes:
- `model` becomes the deployment's model; the reply's `model` becomes the client's name again;
- `max_tokens` is clamped to what the deployment can produce (the edge computes the limit);
- thinking blocks litegate itself signed (`lg1.` signatures, made when another backend answered
  earlier in the conversation) are dropped, and thinking is switched off when the latest tool
  turn then lacks its signed thinking (the API would refuse it);
- the key is the deployment's; `anthropic-version` and `anthropic-beta` are the client's, joined
  with the deployment's configured betas.
`NativeRelay` re-frames the backend's SSE data payloads with their `event:` lines, rewrites the
model in message_start, and reads the usage (message_start + message_delta) for accounting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Union

import orjson

from litegate.config import Deployment
from litegate.errors import StreamInterrupted, UpstreamError
from litegate.wire import Usage, UsageEvent
from litegate.providers.base import NativeRequest, UpstreamRequest, event_type
from litegate.providers.anthropic.request import headers as client_headers, url
from litegate.providers.anthropic.response import Counts, counts_of, error_for, usage

LITEGATE_SIGNATURE = "lg1."  # prefix of the signatures litegate's Anthropic face writes
_THINKING = ("thinking", "redacted_thinking")


def build(native: NativeRequest, target: Deployment) -> UpstreamRequest:
    """The Passthrough row's build: /v1/messages, max_tokens clamped to the deployment's limit."""
    return build_native(orjson.loads(native.body), target, native.headers, max_tokens=target.max_output_tokens)


def build_count(native: NativeRequest, target: Deployment) -> UpstreamRequest:
    """/v1/messages/count_tokens: Anthropic's own count of the client's body."""
    return build_native(orjson.loads(native.body), target, native.headers, path="/v1/messages/count_tokens")


def build_native(body: dict[str, Any], target: Deployment, headers: Mapping[str, str], *,
                 max_tokens: int | None = None, path: str = "/v1/messages") -> UpstreamRequest:
    """The client's Messages body (already JSON-decoded) for `target`; `headers` are the client's."""
    out = dict(body)
    out["model"] = target.model
    if max_tokens is not None and isinstance(out.get("max_tokens"), int) and out["max_tokens"] > max_tokens:
        out["max_tokens"] = max_tokens
    if isinstance(out.get("messages"), list):
        out["messages"] = [_without_foreign_thinking(m) for m in out["messages"]]
        if isinstance(out.get("thinking"), dict) and out["thinking"].get("type") == "enabled" \
                and not _thinking_fits(out["messages"]):
            del out["thinking"]
    return UpstreamRequest("POST", url(target, path), orjson.dumps(out), client_headers(target, headers))


def _without_foreign_thinking(m: Any) -> Any:
    if not isinstance(m, dict) or m.get("role") != "assistant" or not isinstance(m.get("content"), list):
        return m
    kept = [b for b in m["content"] if not _foreign(b)]
    if len(kept) == len(m["content"]):
        return m
    return {**m, "content": kept or [{"type": "text", "text": "(no content)"}]}


def _foreign(b: Any) -> bool:
    if not isinstance(b, dict) or b.get("type") != "thinking":
        return False
    sig = b.get("signature")
    return not sig or (isinstance(sig, str) and sig.startswith(LITEGATE_SIGNATURE))


def _thinking_fits(messages: list[Any]) -> bool:
    """With thinking on, the latest assistant turn holding tool_use must open with a thinking block."""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), list):
            blocks = [b for b in m["content"] if isinstance(b, dict)]
            if not any(b.get("type") == "tool_use" for b in blocks):
                return True
            return bool(blocks) and blocks[0].get("type") in _THINKING
    return True


class NativeRelay:
    """Backend SSE data payloads -> the client's frames, unchanged but for message_start's model."""

    __slots__ = ("model", "counts", "saw_stop", "error")

    def __init__(self, model: str) -> None:
        self.model = model
        self.counts = Counts()
        self.saw_stop = False
        self.error: dict[str, Any] | None = None  # the backend's `error` event, if it sent one

    def frame(self, payload: bytes) -> bytes:
        kind = event_type(payload)
        if kind == b"message_start":
            ev = orjson.loads(payload)
            msg = ev.get("message") or {}
            msg["model"] = self.model
            self.counts.update(counts_of(msg.get("usage")))
            payload = orjson.dumps(ev)
        elif kind == b"message_delta":
            self.counts.update(counts_of(orjson.loads(payload).get("usage")))
        elif kind == b"message_stop":
            self.saw_stop = True
        elif kind == b"unknown":  # not a JSON object with a type: relayed, no client could read it
            raise UpstreamError("sent a stream frame that is not Anthropic's format")
        elif kind == b"error":
            self.error = orjson.loads(payload).get("error") or {}
            raise error_for(str(self.error.get("type", "")),
                            f"backend error mid-stream: {self.error.get('message') or 'unknown error'}", None, {})
        return b"event: " + kind + b"\ndata: " + payload + b"\n\n"

    @property
    def usage(self) -> Usage:
        return usage(self.counts)


async def relay(frames: AsyncIterator[bytes], target: Deployment,
                native: NativeRequest) -> AsyncIterator[Union[bytes, UsageEvent]]:
    """The backend's frames for the client, then the usage they reported (for accounting).

    An `error` event raises the mapped GatewayError (before the first frame a retry may still
    happen); EOF before message_stop raises StreamInterrupted."""
    r = NativeRelay(native.model)
    async for payload in frames:
        if not payload.strip():
            continue
        yield r.frame(payload)
        if r.saw_stop:
            yield UsageEvent(r.usage)
            return
    raise StreamInterrupted("Anthropic stream ended before message_stop")


def count(body: bytes, target: Deployment, native: NativeRequest) -> tuple[bytes, Usage | None]:
    """A count_tokens reply, and its input_tokens as the usage the counted request would have."""
    try:
        n = orjson.loads(body).get("input_tokens")
    except (orjson.JSONDecodeError, AttributeError):
        n = None
    return body, Usage.of(n, 0) if isinstance(n, int) else None


def reply(body: bytes, target: Deployment, native: NativeRequest) -> tuple[bytes, Usage]:
    """A whole Messages reply under the client's model name, and its usage."""
    msg = orjson.loads(body)
    if isinstance(msg, dict):
        msg["model"] = native.model
        return orjson.dumps(msg), usage(counts_of(msg.get("usage")))
    return body, Usage()
