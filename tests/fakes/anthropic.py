"""Fake Anthropic Messages server (``POST /v1/messages``) for the test-suite.

Build it with :func:`make_app` and serve it with ``aiohttp_server``/``TestServer``. Requests
need ``x-api-key`` (the ``api_key`` given to make_app) and ``anthropic-version``, else 401
``authentication_error``. Bodies are validated the way the real API does where that is cheap
(400 ``invalid_request_error``): ``max_tokens`` required; roles alternate starting with user;
no empty or blank text; tool ids match ``^[a-zA-Z0-9_-]+$``; each ``tool_use`` of an assistant
turn is answered by a ``tool_result`` in the next user turn (results first) and every result
answers a call of the turn before; ``temperature`` in [0, 1] and not together with ``top_p``;
a named ``tool_choice`` names a tool; thinking budget >= 1024 and < max_tokens, no forced
tool and no temperature with thinking, and the last assistant turn holding tool_use must
then open with a thinking block carrying :data:`SIGNATURE` (what this fake issues).

Behaviour by ``model``:

==============  ==============================================================
(default) echo  text "Hello from <model>", streamed as "Hello", " from", " <model>"
tools           (a follow-up whose last turn holds tool_result blocks gets text "Got <n> tool
                results" in every tool scenario) text "Let me check.", tool_use get_weather {"city": "Oslo"} (input
                streamed as "" + 3 fragments split mid-JSON), tool_use get_time {}
                (a single "" fragment); stop_reason tool_use
thinking-tools  thinking (thinking_delta x2 + signature_delta) then tool_use get_weather
thinking        thinking then text "The answer is 4."
refusal         partial text, stop_reason refusal
max-tokens      text "Hello from", stop_reason max_tokens
truncated       stream ends (clean EOF) after the first text delta, no message_stop
error-event     first text delta, then ``event: error`` overloaded_error, EOF
cached          echo whose usage has cache_read 100 / cache_creation 20 input tokens
overloaded      HTTP 529 overloaded_error
rate-limited    HTTP 429 rate_limit_error with ``retry-after: 2``
==============  ==============================================================

``POST /v1/messages/count_tokens`` answers ``{"input_tokens": 3 + words of all texts + 5 per tool}``
(400 when ``max_tokens`` or ``stream`` is sent, as the real endpoint does).

Streams use real SSE framing (``event: <type>\\ndata: <json>\\n\\n``) with a ``ping`` after
``message_start``. Every request (auth failures included) is recorded in ``app[REQUESTS]``
as ``{"path", "json", "headers"}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

REQUESTS: web.AppKey[list[dict[str, Any]]] = web.AppKey("requests", list)
API_KEY: web.AppKey[str] = web.AppKey("api_key", str)

SIGNATURE = "EqQBCkgIBRABGAIiQFakeSignatureForLitegateTests0123456789abcdefABCDEF=="
INPUT_TOKENS = 12
_ID_OK = re.compile(r"^[a-zA-Z0-9_-]+$")
_FORCED = ("any", "tool")
Event = tuple[str, dict[str, Any]]


class Invalid(Exception):
    """A request the real API would refuse with 400 invalid_request_error."""


def make_app(*, api_key: str = "test-anthropic-key") -> web.Application:
    app = web.Application()
    app[REQUESTS] = []
    app[API_KEY] = api_key
    app.router.add_post("/v1/messages", _messages)
    app.router.add_post("/v1/messages/count_tokens", _count_tokens)
    return app


async def _count_tokens(request: web.Request) -> web.Response:
    """POST /v1/messages/count_tokens: ``{"input_tokens": n}``, n = 3 + words of every text in the body
    (system, messages, tool descriptions) + 5 per tool: a real count of its own, never the client's."""
    app = request.app
    try:
        body = await request.json()
    except ValueError:
        body = None
    app[REQUESTS].append({"path": request.path, "json": body, "headers": dict(request.headers)})
    if request.headers.get("x-api-key") != app[API_KEY] or not request.headers.get("anthropic-version"):
        return _error(401, "authentication_error", "invalid x-api-key")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
        return _error(400, "invalid_request_error", "model and messages: Field required")
    if "max_tokens" in body or "stream" in body:
        return _error(400, "invalid_request_error", "max_tokens: Extra inputs are not permitted")
    words = sum(len(t.split()) for t in _texts(body))
    return web.json_response({"input_tokens": 3 + words + 5 * len(body.get("tools") or [])})


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k in ("text", "description") and isinstance(v, str)] + [
            t for k, v in node.items() if k not in ("text", "description") for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


# ---------------------------------------------------------------- handler
async def _messages(request: web.Request) -> web.StreamResponse:
    app = request.app
    try:
        body = await request.json()
    except ValueError:
        body = None
    app[REQUESTS].append({"path": request.path, "json": body, "headers": dict(request.headers)})
    if request.headers.get("x-api-key") != app[API_KEY] or not request.headers.get("anthropic-version"):
        return _error(401, "authentication_error", "invalid x-api-key")
    try:
        _validate(body)
    except Invalid as e:
        return _error(400, "invalid_request_error", str(e))
    model = body["model"]
    if model == "overloaded":
        return _error(529, "overloaded_error", "Overloaded")
    if model == "rate-limited":
        return _error(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit",
                      {"retry-after": "2"})
    msg_id = f"msg_fake{len(app[REQUESTS]):04d}"
    blocks, stop_reason, usage = _scenario(model, msg_id)
    answered = _tool_results_in_last_turn(body)
    if answered and stop_reason == "tool_use":
        blocks, stop_reason = [_text(f"Got {answered} tool results")], "end_turn"
    if not body.get("stream"):
        return web.json_response(_message(msg_id, model, blocks, stop_reason, usage), headers=_request_id(msg_id))
    return await _stream(request, msg_id, _events(msg_id, model, blocks, stop_reason, usage))


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    return web.json_response(body, status=status, headers={**_request_id("fake"), **(headers or {})})


def _request_id(msg_id: str) -> dict[str, str]:
    return {"request-id": "req_" + msg_id.removeprefix("msg_")}


async def _stream(request: web.Request, msg_id: str, events: list[Event]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache",
                                       **_request_id(msg_id)})
    await resp.prepare(request)
    for name, data in events:
        await resp.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
    await resp.write_eof()
    return resp


def _tool_results_in_last_turn(body: dict[str, Any]) -> int:
    """How many tool_result blocks the last user turn holds (tool scenarios then answer in text)."""
    last = (body.get("messages") or [{}])[-1]
    content = last.get("content") if isinstance(last, dict) else None
    return sum(1 for b in content if isinstance(b, dict) and b.get("type") == "tool_result") if isinstance(content, list) else 0


# ---------------------------------------------------------------- scenarios
def _scenario(model: str, msg_id: str) -> tuple[list[dict[str, Any]], str, dict[str, int]]:
    usage = {"input_tokens": INPUT_TOKENS, "output_tokens": 3,
             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    text = _text(f"Hello from {model}")
    weather = _tool(f"toolu_{msg_id[4:]}a", "get_weather", {"city": "Oslo"})
    thinking = {"type": "thinking", "thinking": "The user wants the weather. I should call get_weather.",
                "signature": SIGNATURE}
    if model == "tools":
        return [_text("Let me check."), weather, _tool(f"toolu_{msg_id[4:]}b", "get_time", {})], "tool_use", usage
    if model == "thinking-tools":
        return [thinking, weather], "tool_use", usage
    if model == "thinking":
        return [{**thinking, "thinking": "Two plus two is four."}, _text("The answer is 4.")], "end_turn", usage
    if model == "refusal":
        return [_text("I can't")], "refusal", usage
    if model == "max-tokens":
        return [_text("Hello from")], "max_tokens", usage
    if model == "cached":
        usage = {**usage, "input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
    return [text], "end_turn", usage


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _tool(tool_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": args}


def _message(msg_id: str, model: str, blocks: list[dict[str, Any]], stop_reason: str,
             usage: dict[str, int]) -> dict[str, Any]:
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}


def _events(msg_id: str, model: str, blocks: list[dict[str, Any]], stop_reason: str,
            usage: dict[str, int]) -> list[Event]:
    start = {**_message(msg_id, model, [], stop_reason, {**usage, "output_tokens": 1}), "stop_reason": None}
    events: list[Event] = [("message_start", {"type": "message_start", "message": start}), ("ping", {"type": "ping"})]
    for index, block in enumerate(blocks):
        events += _block_events(index, block)
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                     "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    if model in ("truncated", "error-event"):
        cut = next(k for k, (name, _) in enumerate(events) if name == "content_block_delta") + 1
        events = events[:cut]
        if model == "error-event":
            events.append(("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[Event]:
    kind = block["type"]
    if kind == "text":
        first = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": t} for t in _pieces(block["text"])]
    elif kind == "tool_use":
        first = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in _json_pieces(block["input"])]
    else:
        first = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": t} for t in _pieces(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    events: list[Event] = [("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": first})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _pieces(text: str) -> list[str]:
    """"Hello from x" -> ["Hello", " from", " x"] (words keep their leading space)."""
    return re.findall(r"\s*\S+", text) or [text]


def _json_pieces(args: dict[str, Any]) -> list[str]:
    """The input as "" then three fragments cut mid-token; an empty input is a lone ""."""
    if not args:
        return [""]
    text = json.dumps(args)
    a, b = len(text) // 3, 2 * len(text) // 3
    return ["", text[:a], text[a:b], text[b:]]


# ---------------------------------------------------------------- validation
def _validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    if not isinstance(body.get("model"), str):
        raise Invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise Invalid("max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    for k, msg in enumerate(messages):
        _check_turn(k, msg, messages[k - 1] if k else None)
    if any(b.get("type") == "tool_use" for b in _blocks(messages[-1])):
        _check_results(len(messages), [], [b["id"] for b in _blocks(messages[-1]) if b.get("type") == "tool_use"], [])
    _check_sampling(body)
    _check_tools(body)
    _check_thinking(body, max_tokens, messages)


def _blocks(msg: dict[str, Any]) -> list[dict[str, Any]]:
    content = msg.get("content")
    return [_text(content)] if isinstance(content, str) else list(content or [])


def _check_turn(k: int, msg: dict[str, Any], prev: dict[str, Any] | None) -> None:
    if not isinstance(msg, dict) or not all(isinstance(b, dict) for b in _blocks(msg)):
        raise Invalid(f"messages.{k}: Input should be a valid dictionary")
    role = msg.get("role")
    expected = "user" if prev is None or prev.get("role") == "assistant" else "assistant"
    if role != expected:
        raise Invalid(f"messages.{k}.role: roles must alternate between \"user\" and \"assistant\", "
                      f"starting with \"user\"; got {role!r}")
    blocks = _blocks(msg)
    if not blocks:
        raise Invalid(f"messages.{k}: all messages must have non-empty content")
    for n, b in enumerate(blocks):
        if b.get("type") == "text" and not str(b.get("text", "")).strip():
            raise Invalid(f"messages.{k}.content.{n}: text content blocks must contain non-whitespace text")
        if b.get("type") == "tool_use" and not _ID_OK.match(str(b.get("id", ""))):
            raise Invalid(f"messages.{k}.content.{n}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
    calls = [b["id"] for b in _blocks(prev or {}) if b.get("type") == "tool_use"]
    results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
    if role == "user" and (calls or results):
        _check_results(k, blocks, calls, results)


def _check_results(k: int, blocks: list[dict[str, Any]], calls: list[str], results: list[Any]) -> None:
    unexpected = [r for r in results if r not in calls]
    if unexpected:
        raise Invalid(f"messages.{k}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                      f"{unexpected[0]}. Each `tool_result` block must have a corresponding `tool_use` "
                      "block in the previous message.")
    missing = [c for c in calls if c not in results]
    if missing:
        raise Invalid(f"messages.{k - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                      f"after: {missing[0]}. Each `tool_use` block must have a corresponding `tool_result` "
                      "block in the next message.")
    kinds = [b.get("type") for b in blocks]
    if kinds[:len(results)] != ["tool_result"] * len(results):
        raise Invalid(f"messages.{k}.content: tool_result blocks must come first in the user message")


def _check_sampling(body: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        raise Invalid("temperature: Input should be less than or equal to 1")
    if temperature is not None and body.get("top_p") is not None:
        raise Invalid("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")


def _check_tools(body: dict[str, Any]) -> None:
    choice = body.get("tool_choice") or {}
    names = {t.get("name") for t in body.get("tools") or []}
    if choice.get("type") == "tool" and choice.get("name") not in names:
        raise Invalid(f"tool_choice.name: tool {choice.get('name')!r} not found in tools")


def _check_thinking(body: dict[str, Any], max_tokens: int, messages: list[dict[str, Any]]) -> None:
    thinking = body.get("thinking") or {}
    if thinking.get("type") != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        raise Invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if budget >= max_tokens:
        raise Invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    if (body.get("tool_choice") or {}).get("type") in _FORCED:
        raise Invalid("Thinking may not be enabled when tool_choice forces tool use.")
    if body.get("temperature") not in (None, 1):
        raise Invalid("`temperature` may only be set to 1 when thinking is enabled")
    last = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    blocks = _blocks(last or {})
    if any(b.get("type") == "tool_use" for b in blocks):
        first = blocks[0]
        if first.get("type") != "thinking" or first.get("signature") != SIGNATURE:
            raise Invalid("messages: Expected `thinking` or `redacted_thinking`, but found "
                          f"`{first.get('type')}`. When `thinking` is enabled, a final `assistant` message "
                          "must start with a thinking block (preceeding the lastmost set of `tool_use` and "
                          "`tool_result` blocks).")
