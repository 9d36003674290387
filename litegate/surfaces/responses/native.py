"""The Responses stream of a backend that serves the API itself (native pass-through), as it goes out.

The provider's pass-through row relays the backend's events as ready frames (bytes) and then the
usage of the terminal event; this writer passes them on and reads on the way what a relay that
breaks needs to end the stream well-formed: the latest Response object and sequence_number, for a
closing `response.failed`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from litegate.errors import GatewayError
from litegate.surfaces.responses.items import failure
from litegate.wire import Usage, UsageEvent, encoder

_SEQ = re.compile(rb'"sequence_number"\s*:\s*(\d+)')
_WHOLE = (b"event: response.created\n", b"event: response.in_progress\n", b"event: response.completed\n",
          b"event: response.incomplete\n", b"event: response.failed\n")
_TERMINAL = _WHOLE[2:]


class NativeWriter:
    """StreamWriter over a pass-through's frames (bytes) instead of StreamEvents."""

    media_type = "text/event-stream"
    keepalive = b": keep-alive\n\n"

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.response: dict[str, Any] | None = None  # the latest Response object the backend sent
        self.seq = -1
        self.ended = False

    def feed(self, frame: bytes | UsageEvent) -> list[bytes]:
        if type(frame) is UsageEvent:
            self.usage = frame.usage
            return []
        if frame.startswith(_WHOLE) or self.response is None:
            event = orjson.loads(frame[frame.find(b"\ndata: ") + 7:])
            if isinstance(event.get("response"), dict):
                self.response = event["response"]
            self.ended = self.ended or frame.startswith(_TERMINAL)
            seq = event.get("sequence_number")
        else:  # deltas: the sequence number is all the relay needs, read without a full parse
            m = _SEQ.search(frame, 0, 300)
            seq = int(m.group(1)) if m else None
        if isinstance(seq, int):
            self.seq = seq
        return [frame]

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
