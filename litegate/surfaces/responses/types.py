"""The Responses API request body (`CreateResponse`) as msgspec Structs, and its decoder.

Input items are one flat Struct (`InputItem`) rather than a tagged union: clients send bare
`{role, content}` messages without a `type`, and Codex omits ids, so the item kind is read
from `type` (default "message") by request.py. Unknown fields are ignored everywhere, so
what a newer client adds (client_metadata, context_management, stream_options, ...) is
accepted without error. Tools stay plain dicts: they are echoed back as sent, and hosted
tool types are many and open-ended.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec


class _In(msgspec.Struct, omit_defaults=True):
    """Inbound: unknown fields are ignored."""


class Part(_In):
    """A content part of a message or a tool output (input_text, input_image, output_text, ...)."""

    type: str = "input_text"
    text: str | None = None
    image_url: Union[str, dict[str, Any], None] = None  # a URL or data URI; some clients nest {url}
    file_id: str | None = None
    detail: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None
    refusal: str | None = None


class SummaryPart(_In):
    text: str = ""
    type: str = "summary_text"


class InputItem(_In):
    """Any input item; which fields matter depends on `type` (request.py reads them)."""

    type: str = "message"
    role: str | None = None
    content: Union[str, list[Part], None] = None
    id: str | None = None
    # function_call / custom_tool_call / local_shell_call and their outputs
    call_id: str | None = None
    name: str | None = None
    namespace: str | None = None
    arguments: str | None = None
    input: str | None = None
    output: Union[str, list[Part], None] = None
    action: dict[str, Any] | None = None
    # reasoning
    summary: list[SummaryPart] | None = None
    encrypted_content: str | None = None


class TextFormat(_In):
    type: str = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class TextParam(_In):
    format: TextFormat | None = None
    verbosity: str | None = None


class ReasoningParam(_In):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None


class CreateResponse(_In):
    model: str
    input: Union[str, list[InputItem], None] = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Union[str, dict[str, Any], None] = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: Union[str, dict[str, Any], None] = None
    include: list[str] | None = None
    reasoning: ReasoningParam | None = None
    text: TextParam | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    prompt_cache_key: str | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    truncation: str | None = None
    background: bool | None = None
    max_tool_calls: int | None = None


create_response_decoder = msgspec.json.Decoder(CreateResponse)
input_items_decoder = msgspec.json.Decoder(list[InputItem])
