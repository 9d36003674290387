"""Anthropic Messages API (/v1/messages) <-> OpenAI Chat Completions.

request.py builds the Messages body (conversation fix-ups, tools, json_schema via a forced tool,
reasoning_effort -> thinking with remembered signatures), response.py reads replies and error
bodies, and stream.py turns the SSE events into stream events; native.py passes the Anthropic
face's own requests through. Pure translation: no I/O here.
"""

from __future__ import annotations

from litegate.providers.base import Passthrough, Provider
from litegate.providers.anthropic import native
from litegate.providers.anthropic.request import DEFAULT_API_BASE, build_chat
from litegate.providers.anthropic.response import JSON_TOOL, THINKING_MEMO, parse_chat, parse_error
from litegate.providers.anthropic.stream import parse_chat_stream

PROVIDER = Provider(
    name="anthropic", framing="sse", default_api_base=DEFAULT_API_BASE, inline_image_urls=False,
    build_chat=build_chat, parse_chat=parse_chat, parse_chat_stream=parse_chat_stream, parse_error=parse_error,
    passthrough={  # Messages in, Messages out (native.py); the token count is Anthropic's own
        "anthropic": Passthrough(native.build, native.relay, native.reply),
        "anthropic.count_tokens": Passthrough(native.build_count, reply=native.count),
    },
    context_window=200_000, vision=True,
)

__all__ = ["JSON_TOOL", "PROVIDER", "THINKING_MEMO"]
