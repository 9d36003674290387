"""The OpenAI Responses API as an inbound face (`POST /v1/responses`), pure translation.

types.py decodes the body, request.py turns it into the internal chat request (`Inbound`),
stream.py writes the event stream (`ResponsesWriter`), reply.py builds a whole Response object,
items.py holds the shared pieces (ids, the reasoning token, usage, failure codes). Errors before
the first byte use OpenAI's error JSON, the same envelope as chat.
"""

from __future__ import annotations

from litegate.errors import GatewayError
from litegate.surfaces.base import Surface, decode
from litegate.surfaces.responses.items import (
    ToolKind, conversation, decode_reasoning, encode_reasoning, is_codex, new_id,
)
from litegate.surfaces.responses.native import NativeWriter
from litegate.surfaces.responses.reply import to_response
from litegate.surfaces.responses.request import Inbound, to_chat
from litegate.surfaces.responses.stream import ResponsesWriter
from litegate.surfaces.responses.types import CreateResponse, InputItem, create_response_decoder, input_items_decoder


def render_error(err: GatewayError) -> tuple[int, bytes]:
    """OpenAI's `{"error": {message, type, param, code}}` with the error's status."""
    return err.status, err.to_json()


def decode_request(raw: bytes) -> CreateResponse:
    return decode(create_response_decoder, raw)


SURFACE = Surface("responses", render_error)

__all__ = ["SURFACE", "CreateResponse", "Inbound", "InputItem", "NativeWriter", "ResponsesWriter", "ToolKind",
           "conversation", "decode_reasoning",
           "decode_request", "encode_reasoning", "input_items_decoder", "is_codex", "new_id", "render_error", "to_chat",
           "to_response"]
