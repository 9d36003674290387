"""OpenAI chat/embeddings requests -> Gemini generateContent / embedContent bodies (mapping.md §1).

Gemini has two roles (`user`, `model`), a top-level `systemInstruction`, function results as
`functionResponse` parts of a user turn (all results of one model turn in one content), and
thought signatures that must come back on the function calls they were issued with. The
signatures, and Gemini's own call ids when it sends them, arrive through `memo`, keyed by the
OpenAI tool_call_id we generated (see response.memo_entry).

Deployment `options` understood here: `generationConfig` (defaults under the request's own
values, e.g. {"topK": 40}), `safetySettings` (sent as is), `taskType` (embeddings only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import orjson

from litegate.config import Deployment
from litegate.errors import BadRequest
from litegate.wire import ChatRequest, ContentPart, EmbeddingsRequest, Message, ToolCall
from litegate.providers.base import UpstreamRequest, api_base
from litegate.providers.messages import add_turn, image_url_of, parse_data_uri, text_of, tool_arguments, tool_name_for
from litegate.providers.gemini.schema import sanitize

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com/v1beta"
# Memo keys (ToolCallDelta.extra / ChatCompletion.memo): MEMO_NAME marks an entry as Gemini's.
MEMO_NAME, MEMO_SIG, MEMO_ID = "gemini_name", "gemini_sig", "gemini_id"
# Google's documented stand-in when the real signature is lost (gateway restart, history from
# another provider): Gemini then skips signature validation for that call.
DUMMY_SIGNATURE = "skip_thought_signature_validator"
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
AUDIO_TYPES = frozenset({"wav", "mp3", "aiff", "aac", "ogg", "flac"})
EFFORT_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}
MAX_STOP = 5
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def model_url(target: Deployment, action: str) -> str:
    model = target.model.removeprefix("models/")
    return f"{api_base(target, DEFAULT_API_BASE)}/models/{model}:{action}"


def headers(target: Deployment) -> dict[str, str]:
    out = {"content-type": "application/json"}
    if target.api_key:
        out["x-goog-api-key"] = target.api_key
    return out


def build_chat(req: ChatRequest, target: Deployment, memo: Mapping[str, dict] = {}) -> UpstreamRequest:
    if req.n is not None and req.n > 1:
        raise BadRequest(f"n={req.n}: Gemini deployments return one choice; send n=1", param="n")
    system, contents = _contents(req.messages, memo)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if req.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(k, t) for k, t in enumerate(req.tools)]}]
        tool_config = _tool_config(req)
        if tool_config:
            body["toolConfig"] = tool_config
    generation = _generation_config(req, target)
    if generation:
        body["generationConfig"] = generation
    if target.options.get("safetySettings"):
        body["safetySettings"] = target.options["safetySettings"]
    action = "streamGenerateContent?alt=sse" if req.stream else "generateContent"
    return UpstreamRequest("POST", model_url(target, action), orjson.dumps(body), headers(target))


def build_count_tokens(req: ChatRequest, target: Deployment, memo: Mapping[str, dict] = {}) -> UpstreamRequest:
    """countTokens over the request generateContent would send: the model's own tokenizer, tools included."""
    body = orjson.loads(build_chat(msgspec.structs.replace(req, stream=False), target, memo).body)
    body.pop("generationConfig", None)  # countTokens refuses none of it, but it counts nothing there either
    wrapped = {"generateContentRequest": {"model": f"models/{target.model}", **body}}
    return UpstreamRequest("POST", model_url(target, "countTokens"), orjson.dumps(wrapped), headers(target))


def parse_count_tokens(body: bytes) -> int | None:
    try:
        n = orjson.loads(body).get("totalTokens")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return n if isinstance(n, int) else None


# ---------------------------------------------------------------- messages -> contents
def _contents(messages: list[Message], memo: Mapping[str, dict]) -> tuple[list[dict], list[dict]]:
    """(systemInstruction parts, contents) with consecutive same-role turns merged."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if m.role in ("system", "developer"):
            text = text_of(m.content)
            if text:
                system.append({"text": text})
            continue
        add_turn(turns, *_turn(messages, i, memo), "parts")
    if turns:
        return system, turns
    if not system:
        raise BadRequest("messages: no message has content to send", param="messages")
    # Gemini needs at least one content: a system-only request becomes the user's turn.
    return [], [{"role": "user", "parts": system}]


def _turn(messages: list[Message], i: int, memo: Mapping[str, dict]) -> tuple[str, list[dict]]:
    m = messages[i]
    if m.role == "assistant":
        text = text_of(m.content)
        calls = [_function_call(i, j, c, memo) for j, c in enumerate(m.tool_calls or ())]
        return "model", ([{"text": text}] if text else []) + calls
    if m.role in ("tool", "function"):
        return "user", [_function_response(messages, i, memo)]
    if isinstance(m.content, str):
        return "user", [{"text": m.content}] if m.content else []
    return "user", [p for j, part in enumerate(m.content or ()) if (p := _user_part(i, j, part))]


def _user_part(i: int, j: int, part: ContentPart) -> dict[str, Any] | None:
    if part.type in ("text", "input_text"):
        return {"text": part.text} if part.text else None
    if part.type == "image_url":
        return _image(i, j, part)
    if part.type == "input_audio":
        return _audio(i, j, part)
    where = f"messages[{i}].content[{j}].type"
    raise BadRequest(f"{where}: content type {part.type!r} is not supported for Gemini deployments", param=where)


def _image(i: int, j: int, part: ContentPart) -> dict[str, Any]:
    where = f"messages[{i}].content[{j}].image_url"
    url = image_url_of(part) or ""
    if not url.startswith("data:"):
        raise BadRequest(f"{where}: Gemini takes images inline; the URL could not be inlined", param=where)
    mime, data = parse_data_uri(url, where)
    mime = "image/jpeg" if mime == "image/jpg" else mime
    if mime not in IMAGE_TYPES:
        raise BadRequest(f"{where}: Gemini does not accept {mime}; send one of {', '.join(sorted(IMAGE_TYPES))}",
                         param=where)
    return {"inlineData": {"mimeType": mime, "data": data}}


def _audio(i: int, j: int, part: ContentPart) -> dict[str, Any]:
    where = f"messages[{i}].content[{j}].input_audio"
    audio = part.input_audio or {}
    fmt, data = audio.get("format"), audio.get("data")
    if fmt not in AUDIO_TYPES or not isinstance(data, str) or not data:
        raise BadRequest(f"{where}: needs base64 `data` and a `format` in {', '.join(sorted(AUDIO_TYPES))}",
                         param=where)
    return {"inlineData": {"mimeType": f"audio/{fmt}", "data": data}}


def _function_call(i: int, j: int, call: ToolCall, memo: Mapping[str, dict]) -> dict[str, Any]:
    """A functionCall part with the signature Gemini issued for it (a dummy if it was lost)."""
    fc: dict[str, Any] = {"name": call.function.name, "args": tool_arguments(i, j, call.function.arguments)}
    part: dict[str, Any] = {"functionCall": fc}
    entry = memo.get(call.id) if call.id else None
    if entry is not None and MEMO_NAME in entry:
        if entry.get(MEMO_ID):
            fc["id"] = entry[MEMO_ID]
        sig = entry.get(MEMO_SIG)
    else:
        # Gemini validates the first call of each step; parallel calls after it carry none.
        sig = DUMMY_SIGNATURE if j == 0 else None
    if sig:
        part["thoughtSignature"] = sig
    return part


def _function_response(messages: list[Message], i: int, memo: Mapping[str, dict]) -> dict[str, Any]:
    m = messages[i]
    text = text_of(m.content)
    try:
        result: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        result = text
    fr: dict[str, Any] = {"name": tool_name_for(messages, i), "response": {"result": result}}
    entry = memo.get(m.tool_call_id) if m.tool_call_id else None
    if entry and entry.get(MEMO_ID):
        fr["id"] = entry[MEMO_ID]
    return {"functionResponse": fr}


# ---------------------------------------------------------------- tools
def _declaration(k: int, tool: Any) -> dict[str, Any]:
    if tool.type != "function":
        where = f"tools[{k}].type"
        raise BadRequest(f"{where}: only function tools can be sent to Gemini", param=where)
    fn = tool.function
    decl: dict[str, Any] = {"name": fn.name}
    if fn.description:
        decl["description"] = fn.description
    params = sanitize(fn.parameters) if fn.parameters else {}
    if params.get("properties"):  # Gemini rejects an OBJECT without properties: omit it instead
        params.setdefault("type", "object")
        decl["parameters"] = params
    return decl


def _tool_config(req: ChatRequest) -> dict[str, Any] | None:
    choice = req.tool_choice
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in _MODES:
            raise BadRequest(f"tool_choice must be one of {', '.join(_MODES)} or a named function",
                             param="tool_choice")
        return {"functionCallingConfig": {"mode": _MODES[choice]}}
    name = choice.function.name
    if all(t.function.name != name for t in req.tools or ()):
        raise BadRequest(f"tool_choice names unknown tool {name!r}", param="tool_choice")
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


# ---------------------------------------------------------------- generationConfig
def _generation_config(req: ChatRequest, target: Deployment) -> dict[str, Any]:
    config = dict(target.options.get("generationConfig") or {})
    temperature = None if req.temperature is None else min(2.0, max(0.0, req.temperature))
    values = {
        "maxOutputTokens": req.max_output, "temperature": temperature, "topP": req.top_p, "topK": req.top_k,
        "stopSequences": _stop(req), "seed": req.seed,
        "presencePenalty": req.presence_penalty, "frequencyPenalty": req.frequency_penalty,
    }
    config.update({k: v for k, v in values.items() if v is not None})
    config.update(_response_format(req))
    if req.reasoning_effort is not None:
        config["thinkingConfig"] = _thinking(req.reasoning_effort)
    return config


def _stop(req: ChatRequest) -> list[str] | None:
    stops = [s for s in req.stop_list or () if s]
    if len(stops) > MAX_STOP:
        raise BadRequest(f"stop: Gemini takes at most {MAX_STOP} stop sequences", param="stop")
    return stops or None


def _response_format(req: ChatRequest) -> dict[str, Any]:
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return {}
    out: dict[str, Any] = {"responseMimeType": "application/json"}
    if fmt.type == "json_schema" and fmt.json_schema and fmt.json_schema.schema:
        out["responseJsonSchema"] = {k: v for k, v in fmt.json_schema.schema.items() if k != "$schema"}
    return out


def _thinking(effort: str) -> dict[str, Any]:
    if effort not in EFFORT_BUDGET:
        raise BadRequest(f"reasoning_effort must be one of {', '.join(EFFORT_BUDGET)}", param="reasoning_effort")
    budget = EFFORT_BUDGET[effort]
    return {"thinkingBudget": 0} if budget == 0 else {"thinkingBudget": budget, "includeThoughts": True}


# ---------------------------------------------------------------- embeddings
def build_embeddings(req: EmbeddingsRequest, target: Deployment) -> UpstreamRequest:
    """A string -> :embedContent; a list of strings -> :batchEmbedContents (order kept)."""
    if isinstance(req.input, str):
        body = _embed_one(req.input, req, target)
        return UpstreamRequest("POST", model_url(target, "embedContent"), orjson.dumps(body), headers(target))
    if not req.input or not all(isinstance(x, str) for x in req.input):
        raise BadRequest("input: Gemini embeds text; send a string or a non-empty list of strings "
                         "(token arrays are not supported)", param="input")
    model = "models/" + target.model.removeprefix("models/")
    body = {"requests": [{"model": model, **_embed_one(text, req, target)} for text in req.input]}
    return UpstreamRequest("POST", model_url(target, "batchEmbedContents"), orjson.dumps(body), headers(target))


def _embed_one(text: str, req: EmbeddingsRequest, target: Deployment) -> dict[str, Any]:
    body: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
    if req.dimensions is not None:
        body["outputDimensionality"] = req.dimensions
    if target.options.get("taskType"):
        body["taskType"] = target.options["taskType"]
    return body
