"""The Ollama provider: Ollama's native API (/api/chat, /api/generate, /api/embed) translated both
ways (chat.py), and the Ollama face's requests passed through to it (native.py)."""

from __future__ import annotations

from litegate.providers.base import Passthrough, Provider
from litegate.providers.ollama.chat import (
    DEFAULT_API_BASE, build_chat, build_completion, build_embeddings, parse_chat, parse_chat_stream, parse_completion,
    parse_completion_stream, parse_embeddings, parse_error, parse_loaded, with_tag,
)
from litegate.providers.ollama.native import build_api, build_native, relay_lines, relay_native, reply_native

PROVIDER = Provider(
    name="ollama", framing="ndjson", default_api_base=DEFAULT_API_BASE, inline_image_urls=True,
    build_chat=build_chat, parse_chat=parse_chat, parse_chat_stream=parse_chat_stream, parse_error=parse_error,
    build_embeddings=build_embeddings, parse_embeddings=parse_embeddings,
    build_completion=build_completion, parse_completion=parse_completion,
    parse_completion_stream=parse_completion_stream,
    loaded_path="/api/ps", parse_loaded=parse_loaded, loaded_name=with_tag,
    passthrough={"ollama": Passthrough(build_native, relay_native, reply_native),
                 "ollama.api": Passthrough(build_api, relay_lines)},
    # num_ctx: what an Ollama without OLLAMA_CONTEXT_LENGTH may use on a small machine is 4096.
    context_window=4096, context_option="num_ctx",
)
