"""A prompt-size estimate for a Messages request (anthropic-messages.md §9.3, §9.4).

Claude Code sizes its context and decides when to compact from input_tokens, so litegate never
reports 0 for a real prompt: until (or unless) a backend counts, the estimate is characters / 4
(what Ollama's own Anthropic layer uses) over system text, message text, tool inputs and
results, and tool schemas, plus a flat figure per image.
"""

from __future__ import annotations

from typing import Any, Union

import orjson

from litegate.surfaces.anthropic.body import Block, MessagesRequest

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 1600  # Anthropic's figure for an image at its largest default size (~1.15 megapixels)


def estimate(req: MessagesRequest) -> int:
    chars, images = 0, 0
    if isinstance(req.system, str):
        chars += len(req.system)
    elif req.system:
        chars += sum(len(b.text or "") for b in req.system)
    for m in req.messages:
        c, i = _content(m.content)
        chars, images = chars + c, images + i
    if req.tools:
        chars += sum(len(t.name) + len(t.description or "") + len(orjson.dumps(t.input_schema or {}))
                     for t in req.tools)
    tokens = chars // CHARS_PER_TOKEN + images * IMAGE_TOKENS
    return max(tokens, 1) if req.messages else tokens


def _content(content: Union[str, list[Block], dict[str, Any], None]) -> tuple[int, int]:
    if isinstance(content, str):
        return len(content), 0
    if not isinstance(content, list):
        return 0, 0
    chars, images = 0, 0
    for b in content:
        if b.type == "image":
            images += 1
            continue
        chars += len(b.text or "") + len(b.thinking or "")
        if b.input:
            chars += len(orjson.dumps(b.input))
        if b.content is not None:
            c, i = _content(b.content)
            chars, images = chars + c, images + i
    return chars, images
