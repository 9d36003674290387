"""Fake OpenAI-compatible server (the vLLM / LM Studio / llama.cpp flavour) for tests.

Build it with :func:`make_app` and serve it with ``aiohttp_server``/``TestServer``.
With ``make_app(api_key="k")`` every request must carry ``Authorization: Bearer k``
or gets 401 with the OpenAI error envelope (code ``invalid_api_key``).

Behaviour is chosen by the request's ``model`` (the part before any ``:``);
any other name gets the default ``echo`` behaviour.  ``/v1/chat/completions``
scenarios (``/v1/completions`` shares the text-only ones):

=====================  =======================================================
echo (default)         ``Hello from <model>``; streamed as role chunk, 3 content
                       chunks, finish chunk, (usage chunk), ``[DONE]``;
                       prompt_tokens = words in string contents, completion 3
tools-split            two parallel tool calls; call 0 ``get_weather`` has its
                       arguments ``{"city":"Oslo"}`` split over 3 fragments after
                       a first fragment (index, id, type, name, arguments "");
                       call 1 ``get_time`` arrives whole with arguments ``{}``;
                       finish_reason ``tool_calls``.  Non-stream: content null
tools-no-id            same, but no ``id`` anywhere
usage-in-choice-chunk  ignores stream_options; ``usage`` rides on the finish
                       chunk (llama.cpp style), no separate usage chunk
no-finish-reason       ``[DONE]`` without any non-null finish_reason
no-done                finish chunk (and usage chunk), then clean EOF, no [DONE]
truncated              role + one content chunk, then the TCP connection aborts
keepalive-comments     ``: ping`` SSE comment before every event
bad-request            400 ``context_length_exceeded`` (param ``messages``)
rate-limited           429 ``rate_limit_error`` with ``retry-after: 1``
server-error           500 ``server_error``
overloaded             503 ``service_unavailable_error``
missing                404 ``model_not_found``
slow                   "tick", wait for ``app[GATE]``, then " tock"
loading                sleep ``app[LOAD_DELAY]`` before any byte, then echo
midstream-error        one content chunk, then ``data: {"error": ...}`` and EOF
                       (no [DONE]); non-stream: 500 ``backend exploded``
=====================  =======================================================

``/v1/completions`` honours ``suffix`` (reply ``fim:<prompt>|<suffix>``);
``/v1/embeddings`` returns ``[len(text)/10, 0.5, -0.25, i]`` per input, as
floats or base64 little-endian float32; ``/v1/models`` lists two models.

State lives on the app: ``REQUESTS``, ``CANCELLED`` (model names of requests
whose client went away mid-response; needs ``handler_cancellation=True``, which
``TestServer`` uses), ``LOAD_DELAY`` and ``GATE``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

REQUESTS: web.AppKey[list[dict[str, Any]]] = web.AppKey("requests", list)
CANCELLED: web.AppKey[list[str]] = web.AppKey("cancelled", list)
LOAD_DELAY = web.AppKey("load_delay", float)
GATE = web.AppKey("gate", asyncio.Event)
API_KEY: web.AppKey[str | None] = web.AppKey("api_key")

Step = tuple[Any, ...]  # ("role",) ("text", s) ("tool", fragment) ("gate",) ("ping",) ("error", obj)
# ("abort",) ("finish", reason, usage_in_chunk) ("usage",) ("done",)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Work = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]

# name: (status, message, type, param, code)
_HTTP_ERRORS: dict[str, tuple[int, str, str, str | None, str | None]] = {
    "bad-request": (
        400, "This model's maximum context length is 8192 tokens", "invalid_request_error",
        "messages", "context_length_exceeded",
    ),
    "rate-limited": (429, "Rate limit reached for requests", "rate_limit_error", None, "rate_limit_exceeded"),
    "server-error": (500, "The server had an error while processing your request.", "server_error", None, None),
    "overloaded": (
        503, "The server is overloaded or not ready yet.", "service_unavailable_error", None, "server_is_overloaded",
    ),
}
MIDSTREAM_ERROR = {"error": {"message": "backend exploded", "type": "server_error", "param": None, "code": None}}
_WEATHER_ARGS = ['{"city":', '"Oslo', '"}']


# ----------------------------------------------------------------- helpers


def scenario_of(model: str) -> str:
    return model.split(":", 1)[0]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=_dumps)


def error_response(
    status: int, message: str, type_: str = "invalid_request_error",
    param: str | None = None, code: str | None = None,
) -> web.Response:
    response = _json({"error": {"message": message, "type": type_, "param": param, "code": code}}, status)
    if status == 429:
        response.headers["retry-after"] = "1"
    return response


def _words(*texts: Any) -> int:
    return sum(len(t.split()) for t in texts if isinstance(t, str))


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def _endpoint(required: str) -> Callable[[Work], Handler]:
    """Wrap a model endpoint: parse, validate, scenario errors, loading, cancellation."""

    def wrap(work: Work) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                body = json.loads(await request.read())
            except ValueError:
                return error_response(400, "Invalid JSON in request body")
            if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                return error_response(400, "'model' is a required property", param="model")
            if required not in body:
                return error_response(400, f"'{required}' is a required property", param=required)
            model = body["model"]
            scenario = scenario_of(model)
            if scenario in _HTTP_ERRORS:
                return error_response(*_HTTP_ERRORS[scenario])
            if scenario == "missing":
                return error_response(404, f"The model `{model}` does not exist.", code="model_not_found")
            try:
                if scenario == "loading":
                    await asyncio.sleep(request.app[LOAD_DELAY])
                return await work(request, body)
            except (asyncio.CancelledError, ConnectionResetError):
                request.app[CANCELLED].append(model)
                raise

        return handler

    return wrap


# ----------------------------------------------------------------- plans


def _include_usage(body: dict[str, Any]) -> bool:
    if scenario_of(body["model"]) == "usage-in-choice-chunk":  # this server ignores stream_options
        return False
    options = body.get("stream_options")
    return bool(body.get("stream")) and isinstance(options, dict) and bool(options.get("include_usage"))


def _tool_fragments(with_ids: bool) -> list[dict[str, Any]]:
    def first(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
        fragment: dict[str, Any] = {"index": index}
        if with_ids:
            fragment["id"] = call_id
        fragment.update(type="function", function={"name": name, "arguments": arguments})
        return fragment

    return [
        first(0, "call_0a1b2c3d", "get_weather", ""),
        *({"index": 0, "function": {"arguments": piece}} for piece in _WEATHER_ARGS),
        first(1, "call_4e5f6a7b", "get_time", "{}"),
    ]


def _steps(scenario: str, pieces: list[str], include_usage: bool) -> list[Step]:
    """The events of one streamed response, before SSE rendering."""
    if scenario == "truncated":
        return [("role",), ("text", pieces[0]), ("abort",)]
    if scenario == "midstream-error":
        return [("role",), ("text", "partial"), ("error", MIDSTREAM_ERROR)]
    finish = "stop"
    body: list[Step] = [("text", p) for p in pieces]
    if scenario in ("tools-split", "tools-no-id"):
        body, finish = [("tool", f) for f in _tool_fragments(scenario == "tools-split")], "tool_calls"
    elif scenario == "slow":
        body = [("text", "tick"), ("gate",), ("text", " tock")]
    steps: list[Step] = [("role",), *body]
    if scenario == "usage-in-choice-chunk":
        return [*steps, ("finish", finish, True), ("done",)]
    if scenario != "no-finish-reason":
        steps.append(("finish", finish, False))
    if include_usage:
        steps.append(("usage",))
    if scenario != "no-done":
        steps.append(("done",))
    if scenario == "keepalive-comments":
        steps = [s for step in steps for s in (("ping",), step)]
    return steps


# ----------------------------------------------------------------- generation


class _Run:
    """Render the steps of one response as SSE chunks or as one JSON object."""

    def __init__(self, request: web.Request, body: dict[str, Any], steps: list[Step], chat: bool, prompt_tokens: int):
        self.request, self.body, self.steps, self.chat = request, body, steps, chat
        self.model = body["model"]
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-fake{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = sum(1 for step in steps if step[0] in ("text", "tool"))
        self.include_usage = _include_usage(body)

    def usage(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}

    def _envelope(self, choices: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
        if self.chat:
            kind = "chat.completion.chunk" if stream else "chat.completion"
        else:
            kind = "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, "choices": choices}

    def _chunk(self, step: Step) -> dict[str, Any] | None:
        kind = step[0]
        finish = step[1] if kind == "finish" else None
        if self.chat:
            choice = {"index": 0, "delta": _delta(step), "logprobs": None, "finish_reason": finish}
        elif kind in ("role", "tool"):
            return None
        else:
            text = step[1] if kind == "text" else ""
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        chunk = self._envelope([choice], stream=True)
        if kind == "finish" and step[2]:
            chunk["usage"] = self.usage()
        elif self.include_usage:
            chunk["usage"] = None
        return chunk

    async def stream(self) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Cache-Control": "no-cache"})
        resp.content_type = "text/event-stream"
        await resp.prepare(self.request)
        for step in self.steps:
            kind = step[0]
            if kind == "gate":
                await self.request.app[GATE].wait()
            elif kind == "abort":
                _abort(self.request)
                return resp
            elif kind == "ping":
                await resp.write(b": ping\n\n")
            elif kind == "done":
                await resp.write(b"data: [DONE]\n\n")
            elif kind == "error":
                await resp.write(f"data: {_dumps(step[1])}\n\n".encode())
            elif kind == "usage":
                await resp.write(f"data: {_dumps({**self._envelope([], True), 'usage': self.usage()})}\n\n".encode())
            elif (chunk := self._chunk(step)) is not None:
                await resp.write(f"data: {_dumps(chunk)}\n\n".encode())
        await resp.write_eof()
        return resp

    async def collect(self) -> web.StreamResponse:
        text, finish = "", None
        calls: list[dict[str, Any]] = []
        for step in self.steps:
            kind = step[0]
            if kind == "gate":
                await self.request.app[GATE].wait()
            elif kind == "abort":
                _abort(self.request)
                return web.Response()
            elif kind == "error":
                return error_response(500, step[1]["error"]["message"], "server_error")
            elif kind == "text":
                text += step[1]
            elif kind == "tool":
                _merge_fragment(calls, step[1])
            elif kind == "finish":
                finish = step[1]
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": None if calls else text, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return _json({**self._envelope([choice], stream=False), "usage": self.usage()})

    async def respond(self) -> web.StreamResponse:
        return await (self.stream() if self.body.get("stream") else self.collect())


def _delta(step: Step) -> dict[str, Any]:
    if step[0] == "role":
        return {"role": "assistant", "content": ""}
    if step[0] == "text":
        return {"content": step[1]}
    if step[0] == "tool":
        return {"tool_calls": [step[1]]}
    return {}


def _merge_fragment(calls: list[dict[str, Any]], fragment: dict[str, Any]) -> None:
    index = fragment["index"]
    if index == len(calls):
        call = {k: v for k, v in fragment.items() if k != "index"}
        calls.append({**call, "function": dict(fragment["function"])})
    else:
        calls[index]["function"]["arguments"] += fragment["function"]["arguments"]


# ----------------------------------------------------------------- handlers


def _message_words(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    return _words(*(m.get("content") for m in messages if isinstance(m, dict)))


@_endpoint("messages")
async def chat_completions(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return error_response(400, "'messages' must contain at least 1 item", param="messages")
    problem = _shape_problem(body)
    if problem is not None:
        return error_response(400, f"Missing required parameter: '{problem}'.", param=problem,
                              code="missing_required_parameter")
    model = body["model"]
    steps = _steps(scenario_of(model), ["Hello", " from", f" {model}"], _include_usage(body))
    return await _Run(request, body, steps, chat=True, prompt_tokens=_message_words(messages)).respond()


def _shape_problem(body: dict[str, Any]) -> str | None:
    """What OpenAI's API itself refuses (openai-chat.md §2, §3): every tool and tool call has its `type`,
    a call its `id` and string `arguments`, a tool message its `tool_call_id`. None when the body is sound."""
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
            return f"tools[{i}].type"
        if tool["type"] == "function" and not (tool.get("function") or {}).get("name"):
            return f"tools[{i}].function.name"
    for i, m in enumerate(body["messages"]):
        if not isinstance(m, dict):
            continue
        if m.get("role") == "tool" and not m.get("tool_call_id"):
            return f"messages[{i}].tool_call_id"
        for j, call in enumerate(m.get("tool_calls") or []):
            where = f"messages[{i}].tool_calls[{j}]"
            if call.get("type") != "function":
                return f"{where}.type"
            if not call.get("id"):
                return f"{where}.id"
            if not isinstance((call.get("function") or {}).get("arguments"), str):
                return f"{where}.function.arguments"
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") not in ("function", "allowed_tools", "custom"):
        return "tool_choice.type"
    return None


@_endpoint("prompt")
async def completions(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    model, prompt, suffix = body["model"], body["prompt"], body.get("suffix")
    prompt = "".join(prompt) if isinstance(prompt, list) else str(prompt)
    pieces = [f"fim:{prompt}", f"|{suffix}"] if suffix is not None else ["Hello", " from", f" {model}"]
    scenario = scenario_of(model)
    steps = _steps("echo" if scenario.startswith("tools-") else scenario, pieces, _include_usage(body))
    return await _Run(request, body, steps, chat=False, prompt_tokens=_words(prompt, suffix)).respond()


@_endpoint("input")
async def embeddings(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    inputs = body["input"]
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
        return error_response(400, "'input' must be a string or a non-empty array of strings", param="input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        return error_response(400, f"unsupported encoding_format: {encoding}", param="encoding_format")
    data = []
    for i, text in enumerate(inputs):
        vector = [len(text) / 10, 0.5, -0.25, float(i)]
        encoded: Any = vector
        if encoding == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    tokens = _words(*inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _json({"object": "list", "data": data, "model": body["model"], "usage": usage})


async def models(request: web.Request) -> web.Response:
    data = [
        {"id": "llama-3.1-8b-instruct", "object": "model", "created": 1727690400, "owned_by": "vllm"},
        {"id": "qwen3-8b", "object": "model", "created": 1727690400, "owned_by": "vllm"},
    ]
    return _json({"object": "list", "data": data})


# ----------------------------------------------------------------- app


@web.middleware
async def _record_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    raw = await request.read() if request.can_read_body else b""
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    request.app[REQUESTS].append({"path": request.path, "json": parsed, "headers": dict(request.headers)})
    key = request.app[API_KEY]
    if key is not None and request.headers.get("Authorization") != f"Bearer {key}":
        return error_response(401, "Incorrect API key provided", code="invalid_api_key")
    return await handler(request)


def make_app(*, api_key: str | None = None) -> web.Application:
    """Build the fake; with ``api_key`` set, requests need ``Authorization: Bearer <api_key>``."""
    app = web.Application(middlewares=[_record_and_auth])
    app[REQUESTS] = []
    app[CANCELLED] = []
    app[LOAD_DELAY] = 0.0
    app[GATE] = asyncio.Event()
    app[API_KEY] = api_key
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    return app
