"""The Anthropic Messages request body as msgspec Structs (anthropic-messages.md §1, §9.2).

Unknown fields are ignored, as the API promises Claude Code: service_tier, context_management,
container, mcp_servers and whatever comes next decode without a 400. One `Block` type holds every
content block (which fields matter depends on `type`); request.py gives them meaning.
"""

from __future__ import annotations

from typing import Any, Literal, Union

import msgspec


class _In(msgspec.Struct, omit_defaults=True):
    """Inbound Messages types: unknown fields are ignored, never a 400 (§9.2)."""


class Source(_In):
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class Block(_In):
    """Any content block; which fields matter depends on `type`."""

    type: str
    text: str | None = None
    source: Source | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: Union[str, list["Block"], dict[str, Any], None] = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None
    cache_control: dict[str, Any] | None = None
    # web_search_result items inside a replayed web_search_tool_result
    url: str | None = None
    title: str | None = None
    encrypted_content: str | None = None


class InMessage(_In):
    role: Literal["user", "assistant"]
    content: Union[str, list[Block]]


class InTool(_In):
    name: str
    type: str | None = None  # absent or "custom" for a client tool; server tools name their version
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    max_uses: int | None = None
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None


class InToolChoice(_In):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(_In):
    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: int | None = None


class OutputFormat(_In):
    type: str
    schema: dict[str, Any] | None = None


class OutputConfig(_In):
    format: OutputFormat | None = None
    effort: str | None = None


class Metadata(_In):
    user_id: str | None = None


class MessagesRequest(_In):
    """POST /v1/messages (and /v1/messages/count_tokens, which omits max_tokens and sampling)."""

    model: str
    messages: list[InMessage]
    max_tokens: int | None = None
    system: Union[str, list[Block], None] = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False
    tools: list[InTool] | None = None
    tool_choice: InToolChoice | None = None
    thinking: Thinking | None = None
    metadata: Metadata | None = None
    output_config: OutputConfig | None = None
    # service_tier, context_management, container, mcp_servers: accepted and ignored (§9.2)


decoder = msgspec.json.Decoder(MessagesRequest)
