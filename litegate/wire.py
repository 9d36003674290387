"""OpenAI wire types: the gateway's one internal currency.

Requests from clients are decoded straight into these msgspec Structs (decode errors carry the
JSON path of the bad field), providers translate to and from them, and the API layer encodes
them back. Encoders/decoders are built once here and shared (they hold no mutable state).
Fields that OpenAI omits when absent use UNSET; fields OpenAI always sends as null use None.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType


class _In(msgspec.Struct, omit_defaults=True):
    """Base for inbound (client request) types: unknown fields are ignored."""


# The integer ranges OpenAI's API accepts (openai-openapi.yaml): outside is a 400 naming the field, never
# passed on (Ollama reads num_predict -1 as "no limit"). Sampling floats are clamped by each provider.
_MAX64 = (1 << 63) - 1
_Int64 = Meta(ge=-(1 << 63), le=_MAX64)
AtLeastOne = Annotated[int, Meta(ge=1, le=_MAX64)]
NonNegative = Annotated[int, Meta(ge=0, le=_MAX64)]
Choices = Annotated[int, Meta(ge=1, le=128)]
Seed = Annotated[int, _Int64]


# ---------------------------------------------------------------- request: content and messages
class ImageURL(_In):
    url: str
    detail: str | None = None


class ContentPart(_In):
    type: str
    text: str | None = None
    image_url: Union[ImageURL, str, None] = None
    input_audio: dict[str, Any] | None = None
    file: dict[str, Any] | None = None
    refusal: str | None = None


# Written out whole even where a field has its default: `"type": "function"` and `arguments` are
# required on the wire (OpenAI rejects a tool without its type), whoever built the struct.
class FunctionCall(_In, omit_defaults=False):
    name: str
    arguments: str = ""


class ToolCall(_In, omit_defaults=False):
    function: FunctionCall
    id: str | None = None
    type: str = "function"


Content = Union[str, list[ContentPart], None]


class Message(_In):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Content = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None


class FunctionDef(_In):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_In, omit_defaults=False):
    function: FunctionDef
    type: str = "function"


class ToolChoiceFunction(_In):
    name: str


class NamedToolChoice(_In, omit_defaults=False):
    function: ToolChoiceFunction
    type: str = "function"


class JsonSchemaFormat(_In):
    name: str
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(_In):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_In):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class _Streamed:
    """What chat and legacy completion requests share: the usage chunk switch and the stop list."""

    __slots__ = ()

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    @property
    def stop_list(self) -> list[str] | None:
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ChatRequest(_In, _Streamed):
    model: str
    messages: list[Message]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_completion_tokens: AtLeastOne | None = None
    max_tokens: AtLeastOne | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None  # not OpenAI's; Anthropic's, Ollama's, Gemini's and most OpenAI-compatible servers'
    stop: Union[str, list[str], None] = None
    n: Choices | None = None
    seed: Seed | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    user: str | None = None
    tools: list[Tool] | None = None
    tool_choice: Union[str, NamedToolChoice, None] = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    web_search_options: dict[str, Any] | None = None
    verbosity: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None

    @property
    def max_output(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class EmbeddingsRequest(_In):
    model: str
    # str, list of str, token ints or lists of token ints (msgspec allows one array type per union)
    input: Union[str, list[Union[str, int, list[int]]]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: AtLeastOne | None = None
    user: str | None = None


class CompletionRequest(_In, _Streamed):
    model: str
    prompt: Union[str, list[Union[str, int, list[int]]], None] = None
    suffix: str | None = None
    max_tokens: NonNegative | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: Union[str, list[str], None] = None
    n: Choices | None = None
    seed: Seed | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    echo: bool | None = None
    best_of: Annotated[int, Meta(ge=0, le=20)] | None = None
    logprobs: Annotated[int, Meta(ge=0, le=5)] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None


# ---------------------------------------------------------------- responses
class PromptTokensDetails(msgspec.Struct, omit_defaults=True):
    cached_tokens: int = 0


class CompletionTokensDetails(msgspec.Struct, omit_defaults=True):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | UnsetType = UNSET
    completion_tokens_details: CompletionTokensDetails | UnsetType = UNSET

    @classmethod
    def of(cls, prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> "Usage":
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            prompt_tokens_details=PromptTokensDetails(cached) if cached else UNSET,
            completion_tokens_details=CompletionTokensDetails(reasoning) if reasoning else UNSET,
        )


class OutFunction(msgspec.Struct):
    name: str
    arguments: str


class OutToolCall(msgspec.Struct):
    id: str
    function: OutFunction
    type: str = "function"


class UrlCitation(msgspec.Struct):
    url: str
    title: str = ""
    start_index: int = 0
    end_index: int = 0


class Annotation(msgspec.Struct):
    url_citation: UrlCitation
    type: str = "url_citation"


class OutMessage(msgspec.Struct):
    content: str | None = None
    role: str = "assistant"
    refusal: str | None = None
    tool_calls: list[OutToolCall] | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    annotations: list[Annotation] | UnsetType = UNSET


class Choice(msgspec.Struct):
    message: OutMessage
    finish_reason: str = "stop"
    index: int = 0
    logprobs: Any = None


class ChatCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | UnsetType = UNSET
    object: str = "chat.completion"
    system_fingerprint: str | UnsetType = UNSET
    # Provider state to remember per tool-call id (never sent to clients; the gateway pops it).
    memo: dict[str, dict[str, Any]] | UnsetType = UNSET


# ---------------------------------------------------------------- stream chunks
class DeltaFunction(msgspec.Struct):
    name: str | UnsetType = UNSET
    arguments: str = ""


class DeltaToolCall(msgspec.Struct):
    index: int
    function: DeltaFunction
    id: str | UnsetType = UNSET
    type: str | UnsetType = UNSET


class Delta(msgspec.Struct):
    role: str | UnsetType = UNSET
    content: str | None | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[DeltaToolCall] | UnsetType = UNSET
    refusal: str | UnsetType = UNSET
    annotations: list[Annotation] | UnsetType = UNSET


class ChunkChoice(msgspec.Struct):
    delta: Delta
    index: int = 0
    finish_reason: str | None = None
    logprobs: Any = None


class ChatChunk(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None | UnsetType = UNSET
    object: str = "chat.completion.chunk"


# ---------------------------------------------------------------- provider-neutral stream events
class TextDelta(msgspec.Struct, tag=True):
    """Assistant text for the client."""
    text: str


class ReasoningDelta(msgspec.Struct, tag=True):
    """Reasoning/thinking text, surfaced as `reasoning_content`."""
    text: str


class ToolCallDelta(msgspec.Struct, tag=True):
    """A tool call or a fragment of one; `id`/`name` only on the first fragment of `index`.

    `extra` is provider state to remember under this call's id (e.g. a Gemini thought
    signature); the gateway keeps it and hands it back to build_chat as `memo`.
    """
    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None
    extra: dict[str, Any] | None = None


class Finish(msgspec.Struct, tag=True):
    """The backend said the answer is complete; `reason` is already an OpenAI finish_reason."""
    reason: str | None = None


class UsageEvent(msgspec.Struct, tag=True):
    usage: Usage


class Started(msgspec.Struct, tag=True):
    """The answer has begun (send the role chunk now), though no content is ready yet."""


class Citations(msgspec.Struct, tag=True):
    """Sources the answer was built from (server-side web search), as url_citation annotations."""
    annotations: list[Annotation]


class ServerToolCall(msgspec.Struct, tag=True):
    """litegate is running a server-side tool the model called (e.g. web_search); faces that can
    show it (Anthropic server_tool_use, Responses web_search_call) do, the others ignore it."""
    id: str
    name: str
    arguments: str  # JSON text


class ServerToolResult(msgspec.Struct, tag=True):
    """What a server-side tool call returned: `results` as {url, title, snippet}, or an error."""
    id: str
    name: str
    results: list[dict[str, str]] = []
    error: str | None = None


StreamEvent = Union[TextDelta, ReasoningDelta, ToolCallDelta, Finish, UsageEvent, Started, Citations,
                    ServerToolCall, ServerToolResult]


# ---------------------------------------------------------------- other endpoints
class Vectors(msgspec.Struct):
    """Embeddings as the backend returned them, before a face encodes them (float or base64)."""
    vectors: list[list[float]]
    prompt_tokens: int = 0


class CompletionChoice(msgspec.Struct):
    text: str
    index: int = 0
    finish_reason: str | None = None
    logprobs: Any = None


class TextCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None | UnsetType = UNSET
    object: str = "text_completion"


# ---------------------------------------------------------------- shared codecs
encoder = msgspec.json.Encoder()
chat_request_decoder = msgspec.json.Decoder(ChatRequest)
embeddings_request_decoder = msgspec.json.Decoder(EmbeddingsRequest)
completion_request_decoder = msgspec.json.Decoder(CompletionRequest)
