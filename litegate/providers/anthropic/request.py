"""OpenAI chat request -> Anthropic Messages request (mapping.md §1, §2, §4).

Owns the conversation fix-ups the Messages API insists on: system/developer text pulled into
top-level `system`; same-role neighbours merged; tool results first in the user turn that
follows the calls they answer (checked here, so a bad history is a 400 naming the client's
field, not a backend message); no blank text; a user turn first (a system-only request sends
its system text as the user turn); no trailing whitespace in an assistant prefill. Tool ids
Anthropic would reject are rewritten by hash, identically in the tool_use and its tool_result.

Thinking: the blocks remembered under memo[tool_call_id]["anthropic_thinking"] are put back
at the start of the assistant turn that made that call. When the latest tool turn (or a
prefill) cannot open with its thinking (memo lost, e.g. after a restart), or a tool is forced,
thinking is switched off for the request instead of earning a 400.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from litegate.config import Deployment
from litegate.errors import BadRequest
from litegate.wire import ChatRequest, Message
from litegate.providers.base import UpstreamRequest, api_base
from litegate.providers.messages import add_turn, image_url_of, parse_data_uri, text_of, tool_arguments
from litegate.providers.anthropic.response import JSON_TOOL, THINKING_MEMO

DEFAULT_API_BASE = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
PLACEHOLDER = "Continue."  # user text where a user turn must exist but the client sent none
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768}
_MIN_BUDGET = 1024
_THINKING = ("thinking", "redacted_thinking")
_JSON_OBJECT = "Respond with a single JSON object and nothing else: no prose, no code fences."
_ID_OK = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def anthropic_id(call_id: str) -> str:
    """A client's tool-call id as Anthropic accepts it; any other id maps to a stable hash."""
    if _ID_OK.fullmatch(call_id):
        return call_id
    return "toolu_lg" + hashlib.sha256(call_id.encode()).hexdigest()[:24]


def build_chat(req: ChatRequest, target: Deployment, memo: Mapping[str, dict] = _EMPTY) -> UpstreamRequest:
    if req.n is not None and req.n > 1:
        raise BadRequest(f"n={req.n}: Anthropic models return one choice; send n=1", param="n")
    _check_tool_pairs(req.messages)
    system, turns = _shape(*_conversation(req.messages, memo))
    tools, choice = _tools(req)
    tools, choice = _response_format(req, system, tools, choice)
    budget = _effort_budget(req.reasoning_effort)
    forced = choice is not None and choice["type"] in ("any", "tool")
    if budget is not None and (forced or not _thinking_fits(turns)):
        budget = None
    if budget is None:
        _strip_thinking(turns)
    max_tokens, thinking = _max_tokens(req.max_output, target.default_max_tokens, budget)
    body: dict[str, Any] = {"model": target.model, "max_tokens": max_tokens, "messages": turns}
    if system:
        body["system"] = "\n\n".join(system)
    if tools:
        body["tools"] = tools
    if choice:
        body["tool_choice"] = choice
    if thinking:
        body["thinking"] = thinking
    _sampling(req, body, target.options, thinking is not None)
    if req.stream:
        body["stream"] = True
    return UpstreamRequest("POST", url(target), orjson.dumps(body), headers(target))


# ---------------------------------------------------------------- conversation
def _check_tool_pairs(messages: list[Message]) -> None:
    """Each tool message answers a call of the assistant message before it; each call is answered.

    Anthropic wants every result in the very next user turn (OpenAI rejects the same gaps).
    """
    pending: dict[str, str] = {}  # call id -> where it was made
    called: set[str] = set()
    closed = False  # a user/tool message came after the calls in `pending`
    for i, m in enumerate(messages):
        if m.role == "assistant":
            if closed:
                _unanswered(pending)
                closed = False
            for j, call in enumerate(m.tool_calls or ()):
                where = f"messages[{i}].tool_calls[{j}]"
                pending[call.id or where] = where
                called.add(call.id or where)
        elif m.role in ("tool", "function"):
            closed = True
            if m.tool_call_id is None or pending.pop(m.tool_call_id, None) is None:
                where = f"messages[{i}].tool_call_id"
                why = ("does not answer a call of the assistant message before it" if m.tool_call_id in called
                       else "matches no earlier assistant tool call")
                raise BadRequest(f"{where} {m.tool_call_id!r} {why}", param=where)
        elif m.role == "user":
            closed = True
    _unanswered(pending)


def _unanswered(pending: dict[str, str]) -> None:
    if pending:
        call_id, where = next(iter(pending.items()))
        raise BadRequest(f"{where}: no tool message answers tool call {call_id!r}", param=where)


def _conversation(messages: list[Message], memo: Mapping[str, dict]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if m.role in ("system", "developer"):
            text = text_of(m.content)
            if text.strip():
                system.append(text)
        elif m.role == "user":
            add_turn(turns, "user", _user_blocks(i, m), "content")
        elif m.role == "assistant":
            add_turn(turns, "assistant", _assistant_blocks(i, m, memo), "content")
        else:
            add_turn(turns, "user", [_tool_result(m)], "content")
    return system, turns


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}] if text.strip() else []


def _user_blocks(i: int, m: Message) -> list[dict[str, Any]]:
    if not isinstance(m.content, list):
        return _text(m.content or "")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(m.content):
        if part.type in ("text", "input_text"):
            blocks += _text(part.text or "")
        elif part.type == "image_url":
            blocks.append(_image(f"messages[{i}].content[{j}].image_url", image_url_of(part) or ""))
        else:
            where = f"messages[{i}].content[{j}]"
            raise BadRequest(f"{where}: content parts of type {part.type!r} are not supported for this model",
                             param=where)
    return blocks


def _image(where: str, url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        mime, data = parse_data_uri(url, where)
        mime = "image/jpeg" if mime.lower() == "image/jpg" else mime.lower()
        if mime not in _IMAGE_TYPES:
            raise BadRequest(f"{where}: image type {mime!r} is not supported; use one of "
                             f"{', '.join(sorted(_IMAGE_TYPES))}", param=where)
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest(f"{where}: image URL must be http(s) or a data: URI", param=where)


def _assistant_blocks(i: int, m: Message, memo: Mapping[str, dict]) -> list[dict[str, Any]]:
    blocks = _text(text_of(m.content))
    for j, call in enumerate(m.tool_calls or ()):
        thinking = _remembered(memo, call.id)
        if j == 0:
            blocks[:0] = thinking  # the turn must open with the thinking that led to its calls
        else:
            blocks += thinking  # interleaved thinking goes back before its own call
        blocks.append({"type": "tool_use", "id": anthropic_id(call.id or f"call_{i}_{j}"),
                       "name": call.function.name, "input": tool_arguments(i, j, call.function.arguments)})
    return blocks


def _remembered(memo: Mapping[str, dict], call_id: str | None) -> list[dict[str, Any]]:
    entry = memo.get(call_id) if call_id else None
    blocks = entry.get(THINKING_MEMO) if isinstance(entry, dict) else None
    return [dict(b) for b in blocks or () if isinstance(b, dict) and b.get("type") in _THINKING]


def _tool_result(m: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": anthropic_id(m.tool_call_id or "")}
    text = text_of(m.content)
    if text.strip():
        block["content"] = text
    return block


def _shape(system: list[str], turns: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Tool results lead their user turn, a user turn comes first, a prefill has no trailing blanks."""
    if not turns:
        text = "\n\n".join(system)
        return [], [{"role": "user", "content": [{"type": "text", "text": text if text.strip() else PLACEHOLDER}]}]
    for turn in turns:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")  # stable: order kept otherwise
    if turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": PLACEHOLDER}]})
    last = turns[-1]["content"]
    if turns[-1]["role"] == "assistant" and last[-1]["type"] == "text":
        last[-1]["text"] = last[-1]["text"].rstrip()  # the API rejects a prefill ending in whitespace
    return system, turns


# ---------------------------------------------------------------- thinking
def _effort_budget(effort: str | None) -> int | None:
    if effort is None or effort == "none":
        return None
    if effort not in _BUDGETS:
        raise BadRequest(f"reasoning_effort must be one of none, {', '.join(_BUDGETS)}", param="reasoning_effort")
    return _BUDGETS[effort]


def _thinking_fits(turns: list[dict[str, Any]]) -> bool:
    """With thinking on, the latest assistant turn must open with thinking if it holds tool_use
    or is a prefill; without the remembered blocks that is impossible."""
    for k in range(len(turns) - 1, -1, -1):
        turn = turns[k]
        if turn["role"] == "assistant":
            needs = k == len(turns) - 1 or any(b["type"] == "tool_use" for b in turn["content"])
            return not needs or turn["content"][0]["type"] in _THINKING
    return True


def _strip_thinking(turns: list[dict[str, Any]]) -> None:
    for turn in turns:
        if turn["role"] == "assistant":
            turn["content"] = [b for b in turn["content"] if b["type"] not in _THINKING]


def _max_tokens(explicit: int | None, default: int, budget: int | None) -> tuple[int, dict[str, Any] | None]:
    """max_tokens, and the thinking config: budget >= 1024 and < max_tokens (the API's rule).

    A client limit covers thinking too (as OpenAI's max_completion_tokens covers reasoning), so
    the budget shrinks to fit it, and the limit grows only when even 1024 would not fit. Without
    a client limit the answer keeps the whole default on top of a budget that would not fit.
    """
    if budget is None:
        return (explicit if explicit is not None else default), None
    if explicit is None:
        max_tokens = default if budget < default else budget + default
    else:
        budget = max(_MIN_BUDGET, min(budget, explicit - 1))
        max_tokens = max(explicit, budget + 1)
    return max_tokens, {"type": "enabled", "budget_tokens": budget}


# ---------------------------------------------------------------- tools and formats
def _tools(req: ChatRequest) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    tools = []
    for t in req.tools or ():
        schema = t.function.parameters or {"type": "object", "properties": {}}
        tool: dict[str, Any] = {"name": t.function.name, "input_schema": {"type": "object", **schema}}
        if t.function.description:
            tool["description"] = t.function.description
        tools.append(tool)
    return tools, _tool_choice(req, {t["name"] for t in tools})


def _tool_choice(req: ChatRequest, names: set[str]) -> dict[str, Any] | None:
    tc = req.tool_choice
    if tc is None or tc == "auto":
        choice = {"type": "auto"} if names and (tc == "auto" or req.parallel_tool_calls is False) else None
    elif tc == "none":
        return {"type": "none"} if names else None  # tools stay so earlier tool_use blocks stay valid
    elif tc == "required":
        if not names:
            raise BadRequest("tool_choice 'required' needs tools", param="tool_choice")
        choice = {"type": "any"}
    elif isinstance(tc, str):
        raise BadRequest(f"tool_choice {tc!r} is not one of none, auto, required", param="tool_choice")
    else:
        if tc.function.name not in names:
            raise BadRequest(f"tool_choice names unknown tool {tc.function.name!r}", param="tool_choice")
        choice = {"type": "tool", "name": tc.function.name}
    if choice is not None and req.parallel_tool_calls is False:
        choice["disable_parallel_tool_use"] = True
    return choice


def _response_format(req: ChatRequest, system: list[str], tools: list[dict[str, Any]],
                     choice: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """json_object -> a system instruction; json_schema -> a forced tool whose input is the answer."""
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return tools, choice
    if fmt.type == "json_object":
        system.append(_JSON_OBJECT)
        return tools, choice
    spec = fmt.json_schema
    if spec is None:
        raise BadRequest("response_format.json_schema is required for type json_schema", param="response_format")
    schema = spec.schema or {"type": "object"}
    if schema.get("type", "object") != "object":
        where = "response_format.json_schema.schema"
        raise BadRequest(f"{where}: this model's backend needs an object schema at the top level", param=where)
    tool = {"name": JSON_TOOL, "input_schema": {"type": "object", **schema},
            "description": spec.description or f"Give the final answer ({spec.name}) as this tool's input."}
    if choice is None or choice["type"] != "tool":  # a named client tool keeps its precedence
        real = bool(tools) and req.tool_choice != "none"
        choice = {"type": "any"} if real else {"type": "tool", "name": JSON_TOOL}
        if req.parallel_tool_calls is False:
            choice["disable_parallel_tool_use"] = True
    return tools + [tool], choice


# ---------------------------------------------------------------- the rest of the body
def _sampling(req: ChatRequest, body: dict[str, Any], options: Mapping[str, Any], thinking: bool) -> None:
    """Sampling knobs within the API's rules: temperature 0..1, not with top_p on newer models,
    neither temperature nor top_k with thinking (top_p then only 0.95..1)."""
    temperature, top_p = req.temperature, req.top_p
    if thinking:
        temperature = None
        top_p = max(top_p, 0.95) if top_p is not None else None
    if temperature is not None:
        body["temperature"] = min(max(temperature, 0.0), 1.0)
    elif top_p is not None:
        body["top_p"] = top_p
    top_k = req.top_k if req.top_k is not None else options.get("top_k")
    if top_k is not None and not thinking:
        body["top_k"] = top_k
    if options.get("service_tier"):
        body["service_tier"] = options["service_tier"]
    stops = [s for s in req.stop_list or () if s.strip()]
    if stops:
        body["stop_sequences"] = stops
    user = req.user or req.safety_identifier
    if user:
        body["metadata"] = {"user_id": user}


def url(target: Deployment, path: str = "/v1/messages") -> str:
    base = api_base(target, DEFAULT_API_BASE)
    return (base[:-3] if base.endswith("/v1") else base) + path


def headers(target: Deployment, client: Mapping[str, str] = _EMPTY) -> dict[str, str]:
    """The deployment's key; the client's anthropic-version and betas (a pass-through), then the deployment's."""
    out = {"content-type": "application/json", "anthropic-version": client.get("anthropic-version") or API_VERSION}
    if target.api_key:
        out["x-api-key"] = target.api_key
    betas = [b.strip() for b in (client.get("anthropic-beta") or "").split(",") if b.strip()]
    own = target.options.get("anthropic_beta")
    for b in ([own] if isinstance(own, str) else list(own or ())):
        if b not in betas:
            betas.append(b)
    if betas:
        out["anthropic-beta"] = ",".join(betas)
    return out
