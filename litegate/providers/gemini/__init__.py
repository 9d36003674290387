"""Google Gemini (Generative Language API v1beta) <-> OpenAI Chat Completions and Embeddings.

request.py builds generateContent / streamGenerateContent?alt=sse / (batch)embedContent bodies,
schema.py is the tool/response schema sanitiser, and response.py reads replies, SSE frames (as
stream events) and errors. Pure translation: no I/O here.
"""

from __future__ import annotations

from litegate.providers.base import Provider
from litegate.providers.gemini.request import (
    DEFAULT_API_BASE, build_chat, build_count_tokens, build_embeddings, parse_count_tokens,
)
from litegate.providers.gemini.response import parse_chat, parse_chat_stream, parse_embeddings, parse_error

PROVIDER = Provider(
    name="gemini", framing="sse", default_api_base=DEFAULT_API_BASE, inline_image_urls=True,
    build_chat=build_chat, parse_chat=parse_chat, parse_chat_stream=parse_chat_stream, parse_error=parse_error,
    build_embeddings=build_embeddings, parse_embeddings=parse_embeddings,
    build_count_tokens=build_count_tokens, parse_count_tokens=parse_count_tokens,
    context_window=1_048_576, vision=True,
)

__all__ = ["PROVIDER"]
