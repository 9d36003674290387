"""Fake Ollama server speaking the native API (``/api/...``, not ``/v1``).

Build it with :func:`make_app` and serve it with ``aiohttp_server``/``TestServer``.
Behaviour is chosen by the request's ``model``: the part before any ``:`` tag
is the scenario name (``"slow:latest"`` -> ``"slow"``); any other name gets the
default ``echo`` behaviour.

``/api/chat`` (and, where it makes sense, ``/api/generate``) scenarios:

==================  ==========================================================
echo (default)      reply ``Hello from <model>``; streamed as 3 pieces
                    ("Hello", " from", " <model>"); prompt_eval_count = number
                    of whitespace-separated words in the string contents;
                    eval_count = 3
missing             404 ``model "<model>" not found, try pulling it first``
tools-before-done   one line with content "" and two complete tool calls
                    without ids or index, then the done line (done_reason stop)
tools-with-ids      same, each call with ``id`` and ``function.index``
                    (both answer "Got <n> tool results" when the last message is a tool result)
thinking            ``message.thinking`` pieces "Let me", " think", then content
                    "The answer", " is 4." (no thinking when ``think: false``)
loading             sleep ``app[LOAD_DELAY]`` before any byte, then echo
slow                "tick", wait for ``app[GATE]``, then " tock" + done
error-midstream     "partial", then ``{"error": ...}`` line, no done line;
                    non-stream: HTTP 500
truncated           one content line, then the TCP connection is aborted
no-tools            400 ``... does not support tools`` when ``tools`` is non-empty
no-prompt-count     done line without ``prompt_eval_count`` (cached prompt)
empty               no content at all: only the done line
crash               500 ``llama runner process has terminated: exit status 2``
busy                503 ``server busy, please try again.  maximum pending ...``
length              echo with ``done_reason: "length"``
searcher, ...       tool-using agents (web_search / fetch_url): see ollama_agents.py
(model management)  /api/pull, push, create, delete, copy, embeddings: see ollama_admin.py
==================  ==========================================================

``messages: []`` (chat) or an empty ``prompt`` (generate) returns the load
response (``done_reason: "load"``, ``"unload"`` with ``keep_alive: 0``) as a single JSON object, as
Ollama does.
``stream`` defaults to true.  Metrics follow Go's ``omitempty``: zero values
are left out.  ``/api/generate`` with ``suffix`` replies ``fim:<prompt>|<suffix>``.

State lives on the app: ``REQUESTS`` (every request seen), ``CANCELLED``
(model names of requests whose client went away mid-response), ``LOAD_DELAY``
and ``GATE``.  Cancellation is only observed as ``CancelledError`` when the
server runs with ``handler_cancellation=True`` (``TestServer`` does); a write
to a vanished client (``ConnectionResetError``) is recorded as well.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from . import ollama_admin, ollama_agents

REQUESTS: web.AppKey[list[dict[str, Any]]] = web.AppKey("requests", list)
CANCELLED: web.AppKey[list[str]] = web.AppKey("cancelled", list)
LOAD_DELAY = web.AppKey("load_delay", float)
GATE = web.AppKey("gate", asyncio.Event)

MIDSTREAM_ERROR = "an error was encountered while running the model"
CALLS_WITHOUT_IDS: list[dict[str, Any]] = [
    {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
    {"function": {"name": "get_time", "arguments": {}}},
]
CALLS_WITH_IDS: list[dict[str, Any]] = [
    {"id": "call_ab12cd34", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Oslo"}}},
    {"id": "call_ef56gh78", "function": {"index": 1, "name": "get_time", "arguments": {}}},
]
_SCHEDULE_ERRORS = {
    "crash": (500, "llama runner process has terminated: exit status 2"),
    "busy": (503, "server busy, please try again.  maximum pending requests exceeded"),
}
_DIGEST = "0123456789abcdef" * 4

Step = tuple[str, Any]  # ("content"|"thinking"|"tools"|"gate"|"error"|"abort", value)
BodyFn = Callable[[dict[str, Any]], dict[str, Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Work = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


@dataclass
class Plan:
    """One generation: the steps to stream, then (unless cut short) the done line."""

    steps: list[Step]
    done_reason: str = "stop"
    prompt_count: bool = True
    final_extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------- helpers


def scenario_of(model: str) -> str:
    return model.split(":", 1)[0]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(obj: Any) -> str:
    """Compact JSON like Go's encoding/json."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _line_bytes(obj: Any) -> bytes:
    return _dumps(obj).encode() + b"\n"


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=_dumps)


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _words(*texts: Any) -> int:
    return sum(len(t.split()) for t in texts if isinstance(t, str))


def _metrics(prompt_tokens: int, eval_count: int, load_seconds: float) -> dict[str, int]:
    load = int(load_seconds * 1e9) or 21_000_000
    prompt_ns, eval_ns = prompt_tokens * 1_000_000, eval_count * 10_000_000
    metrics = {
        "total_duration": load + prompt_ns + eval_ns + 5_000_000,
        "load_duration": load,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": eval_count,
        "eval_duration": eval_ns,
    }
    return {k: v for k, v in metrics.items() if v}  # Go's omitempty


async def _read_json(request: web.Request, go_type: str) -> dict[str, Any] | web.Response:
    """Parse the body like gin's ShouldBindJSON, returning Ollama's 400 on failure."""
    raw = await request.read()
    if not raw.strip():
        return _error(400, "missing request body")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(exc.doc.rstrip()):
            return _error(400, "unexpected EOF")
        return _error(400, f"invalid character {exc.doc[exc.pos]!r} looking for beginning of value")
    except ValueError:  # not UTF-8
        return _error(400, "invalid character '\ufffd' looking for beginning of value")
    if not isinstance(body, dict):
        kind = "array" if isinstance(body, list) else type(body).__name__
        return _error(400, f"json: cannot unmarshal {kind} into Go value of type api.{go_type}")
    if not body.get("model"):
        return _error(400, "model is required")
    return body


def _precheck(body: dict[str, Any]) -> web.Response | None:
    """Errors Ollama raises before anything is generated."""
    model = body["model"]
    scenario = scenario_of(model)
    if scenario == "missing":
        return _error(404, f'model "{model}" not found, try pulling it first')
    if scenario == "no-tools" and body.get("tools"):
        name = model if ":" in model else f"{model}:latest"
        return _error(400, f"registry.ollama.ai/library/{name} does not support tools")
    if scenario in _SCHEDULE_ERRORS:
        return _error(*_SCHEDULE_ERRORS[scenario])
    return None


def _endpoint(go_type: str) -> Callable[[Work], Handler]:
    """Wrap a model endpoint: parse, pre-check, simulate loading, record cancellation."""

    def wrap(work: Work) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            body = await _read_json(request, go_type)
            if isinstance(body, web.Response):
                return body
            if (failed := _precheck(body)) is not None:
                return failed
            try:
                if scenario_of(body["model"]) == "loading":
                    await asyncio.sleep(request.app[LOAD_DELAY])
                return await work(request, body)
            except (asyncio.CancelledError, ConnectionResetError):
                request.app[CANCELLED].append(body["model"])
                raise

        return handler

    return wrap


def _load_seconds(request: web.Request, model: str) -> float:
    return request.app[LOAD_DELAY] if scenario_of(model) == "loading" else 0.0


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


# ----------------------------------------------------------------- plans


def _plan(scenario: str, pieces: list[str], think: Any) -> Plan:
    text = [("content", p) for p in pieces]
    if scenario == "tools-before-done":
        return Plan([("tools", CALLS_WITHOUT_IDS)])
    if scenario == "tools-with-ids":
        return Plan([("tools", CALLS_WITH_IDS)])
    if scenario == "thinking":
        thinking = [] if think is False else [("thinking", "Let me"), ("thinking", " think")]
        return Plan([*thinking, ("content", "The answer"), ("content", " is 4.")])
    if scenario == "slow":
        return Plan([("content", "tick"), ("gate", None), ("content", " tock")])
    if scenario == "error-midstream":
        return Plan([("content", "partial"), ("error", MIDSTREAM_ERROR)])
    if scenario == "truncated":
        return Plan([("content", "Hello"), ("abort", None)])
    if scenario == "empty":
        return Plan([])
    if scenario == "length":
        return Plan(text, done_reason="length")
    if scenario == "no-prompt-count":
        return Plan(text, prompt_count=False)
    return Plan(text)


def _chat_body(acc: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": acc.get("content", "")}
    if acc.get("thinking"):
        message["thinking"] = acc["thinking"]
    if acc.get("tools"):
        message["tool_calls"] = acc["tools"]
    return {"message": message}


def _generate_body(acc: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"response": acc.get("content", "")}
    if acc.get("thinking"):
        body["thinking"] = acc["thinking"]
    return body


# ----------------------------------------------------------------- generation


class _Run:
    """Render a Plan as an NDJSON stream or as a single JSON object."""

    def __init__(self, request: web.Request, model: str, plan: Plan, body_fn: BodyFn, prompt_tokens: int):
        self.request, self.model, self.plan, self.body_fn = request, model, plan, body_fn
        self.prompt_tokens = prompt_tokens if plan.prompt_count else 0
        self.eval_count = 0

    def _line(self, acc: dict[str, Any], done: bool) -> dict[str, Any]:
        line = {"model": self.model, "created_at": _now(), **self.body_fn(acc), "done": done}
        if done:
            line["done_reason"] = self.plan.done_reason
            line.update(self.plan.final_extra)
            line.update(_metrics(self.prompt_tokens, self.eval_count, _load_seconds(self.request, self.model)))
        return line

    async def stream(self) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "application/x-ndjson"
        await resp.prepare(self.request)
        for kind, value in self.plan.steps:
            if kind == "gate":
                await self.request.app[GATE].wait()
            elif kind == "abort":
                _abort(self.request)
                return resp
            elif kind == "error":
                await resp.write(_line_bytes({"error": value}))
                await resp.write_eof()
                return resp
            else:
                self.eval_count += 1
                await resp.write(_line_bytes(self._line({kind: value}, done=False)))
        await resp.write(_line_bytes(self._line({}, done=True)))
        await resp.write_eof()
        return resp

    async def collect(self) -> web.StreamResponse:
        acc: dict[str, Any] = {"content": "", "thinking": "", "tools": []}
        for kind, value in self.plan.steps:
            if kind == "gate":
                await self.request.app[GATE].wait()
            elif kind == "abort":
                _abort(self.request)
                return web.Response()
            elif kind == "error":
                return _error(500, value)
            else:
                self.eval_count += 1
                acc[kind] += value
        return _json(self._line(acc, done=True))


def _load_response(model: str, body_fn: BodyFn, keep_alive: Any = None) -> web.Response:
    reason = "unload" if keep_alive in (0, "0", "0s", "0m") else "load"
    return _json({"model": model, "created_at": _now(), **body_fn({}), "done": True, "done_reason": reason})


async def _generate_common(
    request: web.Request, body: dict[str, Any], plan: Plan, body_fn: BodyFn, prompt_tokens: int
) -> web.StreamResponse:
    run = _Run(request, body["model"], plan, body_fn, prompt_tokens)
    return await (run.stream() if body.get("stream") is not False else run.collect())


# ----------------------------------------------------------------- handlers


@_endpoint("ChatRequest")
async def chat(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    model, messages = body["model"], body.get("messages") or []
    for i, tool in enumerate(body.get("tools") or []):
        # Stricter than Ollama itself, on purpose: the server accepts a tool without its type, but the
        # documented shape (ollama.md) has it and model templates read it (issue 21, outbound fidelity).
        if not isinstance(tool, dict) or tool.get("type") != "function":
            return _error(400, f"tools[{i}]: type must be \"function\"")
    if not messages:
        return _load_response(model, _chat_body, body.get("keep_alive"))
    scenario = scenario_of(model)
    answered = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "tool")
    if scenario.startswith("tools-") and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        scenario = "answer"  # the tool results came back: answer in text
    agent = ollama_agents.steps(scenario, messages, body.get("tools") or [])
    plan = Plan(agent) if agent is not None else _plan(
        scenario, [f"Got {answered} tool results"] if scenario == "answer" else ["Hello", " from", f" {model}"],
        body.get("think"))
    prompt_tokens = _words(*(m.get("content") for m in messages if isinstance(m, dict)))
    return await _generate_common(request, body, plan, _chat_body, prompt_tokens)


@_endpoint("GenerateRequest")
async def generate(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    model, prompt, suffix = body["model"], body.get("prompt") or "", body.get("suffix")
    if not prompt and not suffix:
        return _load_response(model, _generate_body, body.get("keep_alive"))
    pieces = [f"fim:{prompt}", f"|{suffix}"] if suffix is not None else ["Hello", " from", f" {model}"]
    scenario = scenario_of(model)
    plan = _plan("echo" if scenario.startswith("tools-") else scenario, pieces, body.get("think"))
    plan.final_extra = {"context": [1, 2, 3]}
    return await _generate_common(request, body, plan, _generate_body, _words(prompt, suffix, body.get("system")))


@_endpoint("EmbedRequest")
async def embed(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else [] if inputs is None else inputs
    if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
        return _error(400, "invalid input type")
    load = int(_load_seconds(request, body["model"]) * 1e9) or 21_000_000
    result = {
        "model": body["model"],
        "embeddings": [[len(text) / 10, 0.5, -0.25, float(i)] for i, text in enumerate(inputs)],
        "total_duration": load + 14_000_000,
        "load_duration": load,
        "prompt_eval_count": _words(*inputs),
    }
    return _json({k: v for k, v in result.items() if v or k == "embeddings"})


# ----------------------------------------------------------------- model info

_MODELS = {  # name: (family, parameter_size, size on disk, context length)
    "llama3.1:8b": ("llama", "8.0B", 4_920_753_328, 131072),
    "qwen3:8b": ("qwen3", "8.2B", 5_225_388_164, 40960),
    "nomic-embed-text:latest": ("nomic-bert", "137M", 274_302_450, 2048),
}
_MODIFIED_AT = "2025-09-30T12:00:00.000000000+02:00"


def _details(name: str) -> dict[str, Any]:
    family, parameter_size, _, _ = _MODELS.get(name) or _MODELS.get(f"{name}:latest") or ("llama", "8.0B", 0, 8192)
    quant = "F16" if family == "nomic-bert" else "Q4_K_M"
    return {"parent_model": "", "format": "gguf", "family": family, "families": [family],
            "parameter_size": parameter_size, "quantization_level": quant}


def capabilities(model: str) -> list[str]:
    """Capabilities /api/show reports for a model name."""
    name = scenario_of(model)
    if "embed" in name:
        return ["embedding"]
    if name == "no-tools":
        return ["completion"]
    if name in ("qwen3", "thinking"):
        return ["completion", "tools", "thinking"]
    return ["completion", "tools", "insert"]


async def tags(request: web.Request) -> web.Response:
    models = [
        {"name": name, "model": name, "modified_at": _MODIFIED_AT, "size": size, "digest": _DIGEST,
         "details": _details(name)}
        for name, (_, _, size, _) in _MODELS.items()
    ]
    return _json({"models": models})


async def ps(request: web.Request) -> web.Response:
    expires = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    loaded = {"name": "llama3.1:8b", "model": "llama3.1:8b", "size": 6_654_289_920, "digest": _DIGEST,
              "details": _details("llama3.1:8b"), "expires_at": expires, "size_vram": 6_654_289_920,
              "context_length": 4096}
    return _json({"models": [loaded]})


async def version(request: web.Request) -> web.Response:
    return _json({"version": "0.12.3"})


async def root(request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


async def show(request: web.Request) -> web.Response:
    body = await _read_json(request, "ShowRequest")
    if isinstance(body, web.Response):
        return body
    model = body["model"]
    if scenario_of(model) == "missing":
        return _error(404, f"model '{model}' not found")
    details = _details(model)
    family = details["family"]
    context = (_MODELS.get(model) or _MODELS.get(f"{model}:latest") or (0, 0, 0, 8192))[3]
    return _json(
        {
            "modelfile": f"# Modelfile generated by \"ollama show\"\nFROM {model}\n",
            "parameters": 'stop                           "<|eot_id|>"',
            "template": "{{ .Prompt }}",
            "details": details,
            "model_info": {"general.architecture": family, f"{family}.context_length": context},
            "capabilities": capabilities(model),
            "modified_at": _MODIFIED_AT,
        }
    )


# ----------------------------------------------------------------- app


@web.middleware
async def _record(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    raw = await request.read() if request.can_read_body else b""
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    request.app[REQUESTS].append({"path": request.path, "json": parsed, "headers": dict(request.headers)})
    return await handler(request)


def make_app(*, api_key: str | None = None) -> web.Application:
    """Build the fake.  ``api_key`` is accepted for symmetry and ignored (local Ollama has no auth)."""
    app = web.Application(middlewares=[_record])
    app[REQUESTS] = []
    app[CANCELLED] = []
    app[LOAD_DELAY] = 0.0
    app[GATE] = asyncio.Event()
    app.router.add_get("/", root)
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/api/generate", generate)
    app.router.add_post("/api/embed", embed)
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/api/ps", ps)
    app.router.add_get("/api/version", version)
    app.router.add_post("/api/show", show)
    ollama_admin.add_routes(app)
    return app
