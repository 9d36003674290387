"""The Anthropic Messages face: what Claude Code and the `anthropic` SDKs speak (§9 of
/work/shared/protocols/anthropic-messages.md). Pure translation, like every surface:

- body.py     the Messages body as msgspec Structs (unknown fields ignored)
- request.py  that body -> wire.ChatRequest, and the web search it declares
- tokens.py   the prompt estimate for usage and count_tokens
- blocks.py   StreamEvents -> content blocks (shared by the stream and the whole reply)
- stream.py   MessagesWriter, the SSE StreamWriter
- reply.py    a whole Messages response, from events or a ChatCompletion; the models list
- errors.py   render_error and the `error` event in Anthropic's shape
"""

from __future__ import annotations

from litegate.surfaces.base import Surface
from .errors import render_error
from .reply import MessageBuilder, from_completion, model_list
from .body import MessagesRequest, decoder
from .request import WebSearch, to_chat
from .stream import PING, MessagesWriter
from .tokens import estimate

SURFACE = Surface("anthropic", render_error)

__all__ = ["SURFACE", "PING", "MessageBuilder", "MessagesRequest", "MessagesWriter", "WebSearch", "decoder",
           "estimate", "from_completion", "model_list", "render_error", "to_chat"]
