"""The Messages SSE stream Claude Code parses (anthropic-messages.md §4, §9.4): a StreamWriter.

Every frame has its `event:` line (the SDK drops events without one) and a JSON `type` equal
to it; there is no `[DONE]`. message_start carries the prompt estimate as usage.input_tokens
(the backend counts only at the end); message_delta carries the stop reason and the final
input/output counts; `ping` is the keep-alive; a failure after the first byte is an `error`
event and the stream ends without message_stop. Block rules live in blocks.py.

An Anthropic deployment answers natively: its frames arrive already in this shape (bytes, from
providers.anthropic.native) and pass straight through; only their usage is kept.
"""

from __future__ import annotations

import orjson

from litegate.errors import GatewayError
from litegate.wire import StreamEvent, UsageEvent
from .blocks import Blocks, message_id
from .errors import error_event

PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":%s}}\n\n'
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'


def frame(event: str, payload: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class MessagesWriter(Blocks):
    """StreamEvents in, Anthropic SSE frames out (the surfaces.base.StreamWriter protocol)."""

    media_type = "text/event-stream"
    keepalive = PING

    def __init__(self, model: str, *, input_estimate: int = 0, id: str | None = None) -> None:
        super().__init__(input_estimate)
        self.id = id or message_id()
        self.model = model
        self._out: list[bytes] = []
        self.native = False  # the frames come ready-made from an Anthropic deployment

    # ---- hooks
    def _message_start(self) -> None:
        self._out.append(frame("message_start", {"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self.input_estimate, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}))

    def _start(self, block: dict) -> None:
        self._out.append(frame("content_block_start", {"type": "content_block_start", "index": self.index,
                                                       "content_block": block}))

    def _delta(self, kind: str, key: str, value: str) -> None:
        self._out.append(_DELTA % (self.index, kind.encode(), key.encode(), orjson.dumps(value)))

    def _stop(self) -> None:
        self._out.append(_BLOCK_STOP % self.index)

    # ---- StreamWriter
    def _take(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def feed(self, ev: StreamEvent | bytes) -> list[bytes]:
        if type(ev) is bytes:
            self.native = True
            return [ev]
        if self.native:
            if type(ev) is UsageEvent:
                self.usage = ev.usage
            return []
        self._event(ev)
        return self._take() if self._out else []

    def finish(self) -> list[bytes]:
        if self.native:
            return []  # message_stop came from the backend
        reason = self._end()
        self._out.append(frame("message_delta", {"type": "message_delta",
                                                 "delta": {"stop_reason": reason, "stop_sequence": None},
                                                 "usage": self.final_usage()}))
        self._out.append(_STOP)
        return self._take()

    def fail(self, err: GatewayError) -> list[bytes]:
        out = self._take()
        out.append(error_event(err))
        return out
