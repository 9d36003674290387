"""Relaying a Responses stream from a backend that serves the API itself (native pass-through).

The backend's events go to the client as they came (only the SSE `event:` line is rebuilt,
since upstream framing keeps just the data). What the relay needs from them it reads on the
way: the response id and the last sequence_number (so a relay that breaks can still end the
stream with a well-formed `response.failed`), and the usage of the terminal event for accounting.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from litegate.errors import GatewayError
from litegate.surfaces.responses.items import failure
from litegate.wire import CompletionTokensDetails, PromptTokensDetails, Usage, encoder

_TYPE = re.compile(rb'"type"\s*:\s*"([^"]+)"')
_SEQ = re.compile(rb'"sequence_number"\s*:\s*(\d+)')
_TERMINAL = (b'"response.completed"', b'"response.incomplete"', b'"response.failed"')


def usage_of(response: dict[str, Any]) -> Usage | None:
    """A Response object's usage in the internal form (None when it has none)."""
    u = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(u, dict):
        return None
    cached = (u.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    usage = Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0), int(u.get("total_tokens") or 0))
    if cached:
        usage.prompt_tokens_details = PromptTokensDetails(int(cached))
    if reasoning:
        usage.completion_tokens_details = CompletionTokensDetails(int(reasoning))
    return usage


class NativeWriter:
    """StreamWriter over raw event payloads (bytes) instead of StreamEvents."""

    media_type = "text/event-stream"
    keepalive = b": keep-alive\n\n"

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.response: dict[str, Any] | None = None  # the latest Response object the backend sent
        self.seq = -1
        self.ended = False

    def feed(self, payload: bytes) -> list[bytes]:
        head = payload[:200]
        if b'"response.created"' in head or any(t in head for t in _TERMINAL) or self.response is None:
            event = orjson.loads(payload)
            self._note(event)
        else:  # deltas: the type and sequence number are all the relay needs, read without a full parse
            event = {"type": _field(head), "sequence_number": _int(head)}
            if event["sequence_number"] is not None:
                self.seq = event["sequence_number"]
        kind = event.get("type") or "message"
        return [b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"]

    def _note(self, event: dict[str, Any]) -> None:
        if isinstance(event.get("sequence_number"), int):
            self.seq = event["sequence_number"]
        response = event.get("response")
        if isinstance(response, dict):
            self.response = response
            if event.get("type") in ("response.completed", "response.incomplete", "response.failed"):
                self.ended = True
                self.usage = usage_of(response)

    def finish(self) -> list[bytes]:
        if self.ended:
            return []
        return self.fail(GatewayError("the backend's stream ended before its terminal event", code="stream_interrupted"))

    def fail(self, err: GatewayError) -> list[bytes]:
        response = {**(self.response or {"id": "", "object": "response", "output": []}),
                    "status": "failed", "error": failure(err)}
        self.seq += 1
        self.ended = True
        payload = encoder.encode({"type": "response.failed", "sequence_number": self.seq, "response": response})
        return [b"event: response.failed\ndata: " + payload + b"\n\n"]


def _field(head: bytes) -> str | None:
    m = _TYPE.search(head)
    return m.group(1).decode() if m else None


def _int(head: bytes) -> int | None:
    m = _SEQ.search(head)
    return int(m.group(1)) if m else None
