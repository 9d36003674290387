"""Fake Google Gemini API (v1beta generateContent / streamGenerateContent / embeddings).

Build it with :func:`make_app` and serve it with ``aiohttp_server``/``TestServer``.
Routes: ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent`` (SSE
``data: {...}\\r\\n\\r\\n`` blocks only with ``?alt=sse``, no ``[DONE]``, EOF ends it; without
``alt=sse`` one JSON array), ``:embedContent``, ``:batchEmbedContents`` and ``:countTokens`` (words of all texts + 4 per
function declaration).
``x-goog-api-key`` (or ``?key=``) must equal ``api_key``: missing -> 401 UNAUTHENTICATED,
wrong -> 403 PERMISSION_DENIED, both with Google's ``{"error": {code, message, status}}`` body.

Validation like the real API (400 INVALID_ARGUMENT): roles other than user/model; a part
without exactly one data field; a user turn whose number of ``functionResponse`` parts differs
from the ``functionCall`` parts of the model turn before it; a function declaration name that
is not ``[A-Za-z_][A-Za-z0-9_.:-]{0,127}``; ``parameters`` holding a keyword outside Gemini's
Schema (``$defs``, ``$ref``, ``title``, ``default``, ``additionalProperties``, ``const``, ...),
a list-valued ``type``, or a top-level OBJECT without properties; more than 5 stopSequences;
for models starting with ``thinking``: a model turn whose first ``functionCall`` part lacks a
``thoughtSignature`` this fake issued (Google's dummy values are accepted), or any call part
with a signature it never issued.

Scenario = the model name:

================  ==========================================================================
(anything else)   echo: "Hello", " from", " <model>" in 3 chunks, usageMetadata on the last
                  (promptTokenCount = words in all request texts, candidatesTokenCount 3),
                  finishReason STOP
tools             two functionCall parts without ids in one chunk: get_weather {"city":"Oslo"}
                  and get_time (no ``args``), finishReason STOP
thinking-tools    a thought part, then the same two calls; only the first carries a
                  thoughtSignature (as Gemini does for parallel calls); thoughtsTokenCount
thinking          thought parts "Let me", " think", text "The answer is 4.", then
                  ``{"text": "", "thoughtSignature": ...}`` with finishReason STOP
safety            a candidate with finishReason SAFETY and no content
blocked           promptFeedback.blockReason SAFETY, no candidates
max-tokens        "Hello", " from" then finishReason MAX_TOKENS
cached            echo with cachedContentTokenCount 6 and thoughtsTokenCount 5
rate-limited      429 RESOURCE_EXHAUSTED with a RetryInfo detail ``retryDelay: "2s"``
unavailable       503 UNAVAILABLE "The model is overloaded. Please try again later."
bad-request       400 INVALID_ARGUMENT
missing           404 NOT_FOUND
truncated         stream: one text chunk, then half a JSON object and the TCP connection is
                  aborted; non-stream: 200 with a body cut mid-JSON
midstream-error   stream: one text chunk, then ``data: {"error": {...}}`` and a clean EOF;
                  non-stream: 500 INTERNAL
================  ==========================================================================

``tools`` and ``thinking-tools`` answer a request whose last turn holds functionResponse parts
with text ("Got <n> tool results") instead of calling again. Embeddings: deterministic vectors
from sha256 of the text, ``outputDimensionality`` values (default 8); each batch request's
``model`` must be ``models/<model>``. The error scenarios apply to every route.

State on the app: ``REQUESTS`` (``{"path", "query", "json", "headers"}`` for every request,
auth failures included) and ``SIGNATURES`` (thought signatures issued so far).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

REQUESTS: web.AppKey[list[dict[str, Any]]] = web.AppKey("requests", list)
SIGNATURES: web.AppKey[set[str]] = web.AppKey("signatures", set)
API_KEY = web.AppKey("api_key", str)

DUMMY_SIGNATURES = frozenset({"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"})
SCHEMA_KEYWORDS = frozenset({
    "type", "format", "description", "nullable", "enum", "items", "properties", "required",
    "propertyOrdering", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength",
    "pattern", "minProperties", "maxProperties", "anyOf", "example",
})
PART_FIELDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
_SAFETY = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
CALLS = [{"name": "get_weather", "args": {"city": "Oslo"}}, {"name": "get_time"}]

Chunk = dict[str, Any]
Action = Callable[[web.Request, str, dict[str, Any]], Awaitable[web.StreamResponse]]


# ----------------------------------------------------------------- errors
def google_error(code: int, status: str, message: str, details: list[dict] | None = None) -> web.Response:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return web.json_response({"error": err}, status=code)


def _invalid(message: str) -> web.Response:
    return google_error(400, "INVALID_ARGUMENT", message)


_RETRY = [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
     "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                     "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"},
]
FAILURES: dict[str, Callable[[str], web.Response]] = {
    "rate-limited": lambda m: google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please "
                                           "check your plan and billing details.", _RETRY),
    "unavailable": lambda m: google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "bad-request": lambda m: _invalid("Request contains an invalid argument."),
    "missing": lambda m: google_error(404, "NOT_FOUND", f"models/{m} is not found for API version v1beta, "
                                      "or is not supported for generateContent."),
}


# ----------------------------------------------------------------- validation
def _check_key(request: web.Request) -> web.Response | None:
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if not key:
        return google_error(401, "UNAUTHENTICATED", "Method doesn't allow unregistered callers (callers without "
                            "established identity). Please use API Key or other form of API consumer identity.")
    if key != request.app[API_KEY]:
        return google_error(403, "PERMISSION_DENIED", "The caller does not have permission")
    return None


def _schema_problem(node: Any, where: str) -> str | None:
    if not isinstance(node, dict):
        return f"Invalid value at '{where}': expected a Schema object"
    for key, value in node.items():
        if key not in SCHEMA_KEYWORDS:
            return f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
        if key == "type" and not isinstance(value, str):
            return f"Invalid JSON payload received. Proto field is not repeating, cannot start list. at '{where}.type'"
    children = [(f"{where}.properties[{k}]", v) for k, v in (node.get("properties") or {}).items()]
    children += [(f"{where}.items", node["items"])] if "items" in node else []
    children += [(f"{where}.any_of[{i}]", v) for i, v in enumerate(node.get("anyOf") or ())]
    return next((p for w, child in children if (p := _schema_problem(child, w))), None)


def _tools_problem(body: dict[str, Any]) -> str | None:
    for t, tool in enumerate(body.get("tools") or ()):
        for d, decl in enumerate(tool.get("functionDeclarations") or ()):
            where = f"tools[{t}].function_declarations[{d}]"
            if not _NAME.match(str(decl.get("name", ""))):
                return f"* GenerateContentRequest.{where}.name: Invalid function name."
            params = decl.get("parameters")
            if params is None:
                continue
            if str(params.get("type", "")).upper() == "OBJECT" and not params.get("properties"):
                return f"* GenerateContentRequest.{where}.parameters.properties: should be non-empty for OBJECT type"
            if problem := _schema_problem(params, f"{where}.parameters"):
                return problem
    return None


def _contents_problem(contents: Any, thinking: bool, issued: set[str]) -> str | None:
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    calls_before = 0
    for c, content in enumerate(contents):
        role, parts = content.get("role", "user"), content.get("parts") or []
        if role not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{c}].role = {role!r})"
        if not parts or any(sum(f in p for f in PART_FIELDS) != 1 for p in parts):
            return f"* GenerateContentRequest.contents[{c}].parts: each part needs exactly one data field"
        calls = [p for p in parts if "functionCall" in p]
        responses = sum("functionResponse" in p for p in parts)
        if role == "user" and (calls_before or responses) and responses != calls_before:
            return ("Please ensure that the number of function response parts is equal to the number of "
                    "function call parts of the function call turn.")
        if role == "model" and thinking and (problem := _signature_problem(calls, issued)):
            return problem
        calls_before = len(calls) if role == "model" else 0
    return None


def _signature_problem(calls: list[dict[str, Any]], issued: set[str]) -> str | None:
    valid = issued | DUMMY_SIGNATURES
    for i, part in enumerate(calls):
        sig = part.get("thoughtSignature")
        if (i == 0 and sig not in valid) or (sig is not None and sig not in valid):
            name = part["functionCall"].get("name")
            return ("Function call is missing a thought_signature in functionCall parts. This is required for "
                    f"tools to work correctly. Additional data, function call `default_api:{name}` , position {i + 1}.")
    return None


def _generate_problem(body: dict[str, Any], model: str, issued: set[str]) -> str | None:
    stops = (body.get("generationConfig") or {}).get("stopSequences") or []
    if len(stops) > 5:
        return "* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences"
    return _contents_problem(body.get("contents"), model.startswith("thinking"), issued) or _tools_problem(body)


# ----------------------------------------------------------------- scripted replies
def _sign(app: web.Application) -> str:
    sig = base64.b64encode(f"fake-thought-signature-{len(app[SIGNATURES])}".encode()).decode()
    app[SIGNATURES].add(sig)
    return sig


def _words(body: dict[str, Any]) -> int:
    turns = [*(body.get("contents") or []), body.get("systemInstruction") or {}]
    return sum(len(str(p.get("text", "")).split()) for c in turns for p in c.get("parts") or ())


def _chunk(model: str, parts: list[dict] | None, finish: str | None = None, usage: dict | None = None) -> Chunk:
    cand: dict[str, Any] = {"index": 0}
    if parts is not None:
        cand["content"] = {"role": "model", "parts": parts}
    if finish:
        cand.update(finishReason=finish, safetyRatings=_SAFETY)
    out: Chunk = {"candidates": [cand]}
    if usage:
        out["usageMetadata"] = usage
    return {**out, "modelVersion": model, "responseId": "fake-" + hashlib.md5(model.encode()).hexdigest()[:12]}


def _usage(prompt: int, output: int, **extra: int) -> dict[str, int]:
    total = prompt + output + extra.get("thoughtsTokenCount", 0)
    return {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": total, **extra}


def _answered_tools(body: dict[str, Any]) -> int:
    last = (body.get("contents") or [{}])[-1]
    return sum("functionResponse" in p for p in last.get("parts") or ())


def script(app: web.Application, model: str, body: dict[str, Any]) -> list[Chunk]:
    """The chunks of a reply; the non-streaming reply is their merge."""
    prompt, texts = _words(body), [{"text": t} for t in ("Hello", " from", f" {model}")]
    if model in ("tools", "thinking-tools") and (n := _answered_tools(body)):
        return [_chunk(model, [{"text": f"Got {n} tool results"}], "STOP", _usage(prompt, 4))]
    if model == "tools":
        return [_chunk(model, [{"functionCall": c} for c in CALLS], "STOP", _usage(prompt, 12))]
    if model == "thinking-tools":
        calls = [{"functionCall": CALLS[0], "thoughtSignature": _sign(app)}, {"functionCall": CALLS[1]}]
        return [_chunk(model, [{"text": "I should check the weather.", "thought": True}]),
                _chunk(model, calls, "STOP", _usage(prompt, 12, thoughtsTokenCount=30))]
    if model == "thinking":
        return [_chunk(model, [{"text": "Let me", "thought": True}]),
                _chunk(model, [{"text": " think", "thought": True}]), _chunk(model, [{"text": "The answer is 4."}]),
                _chunk(model, [{"text": "", "thoughtSignature": _sign(app)}], "STOP",
                       _usage(prompt, 5, thoughtsTokenCount=20))]
    if model == "safety":
        return [_chunk(model, None, "SAFETY", _usage(prompt, 0))]
    if model == "blocked":
        return [{"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _SAFETY},
                 "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt}, "modelVersion": model}]
    if model == "max-tokens":
        return [_chunk(model, texts[:1]), _chunk(model, texts[1:2], "MAX_TOKENS", _usage(prompt, 2))]
    extra = {"cachedContentTokenCount": 6, "thoughtsTokenCount": 5} if model == "cached" else {}
    first = _chunk(model, texts[:1], usage={"promptTokenCount": prompt})
    return [first, _chunk(model, texts[1:2]), _chunk(model, texts[2:], "STOP", _usage(prompt, 3, **extra))]


def merge(chunks: list[Chunk]) -> Chunk:
    """A streamed reply as generateContent returns it: parts joined, last finish and usage."""
    out = {k: v for k, v in chunks[-1].items() if k != "candidates"}
    parts: list[dict[str, Any]] = []
    cand: dict[str, Any] = {"index": 0}
    for chunk in chunks:
        for c in chunk.get("candidates") or ():
            cand.update({k: v for k, v in c.items() if k != "content"})
            for part in (c.get("content") or {}).get("parts") or ():
                _append_part(parts, part)
    if any("candidates" in c for c in chunks):
        out["candidates"] = [{**cand, "content": {"role": "model", "parts": parts}} if parts else cand]
    return out


def _append_part(parts: list[dict[str, Any]], part: dict[str, Any]) -> None:
    last = parts[-1] if parts else None
    joinable = last is not None and "text" in last and "text" in part and last.get("thought") == part.get("thought")
    if joinable and "thoughtSignature" not in last:
        last["text"] += part["text"]
        if "thoughtSignature" in part:
            last["thoughtSignature"] = part["thoughtSignature"]
    else:
        parts.append(dict(part))


# ----------------------------------------------------------------- routes
def _sse(chunk: Any) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"


async def generate(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    if problem := _generate_problem(body, model, request.app[SIGNATURES]):
        return _invalid(problem)
    if model == "midstream-error":
        return google_error(500, "INTERNAL", "An internal error has occurred.")
    if model == "truncated":
        return web.Response(body=json.dumps(merge(script(request.app, model, body))).encode()[:40],
                            content_type="application/json")
    return web.json_response(merge(script(request.app, model, body)))


async def stream(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    if problem := _generate_problem(body, model, request.app[SIGNATURES]):
        return _invalid(problem)
    chunks = script(request.app, model, body)
    if request.query.get("alt") != "sse":
        return web.json_response(chunks)
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    if model in ("truncated", "midstream-error"):
        await resp.write(_sse(chunks[0]))
        if model == "truncated":
            await resp.write(_sse(chunks[1])[:30])
            if request.transport is not None:
                request.transport.abort()
            return resp
        chunks = [{"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}]
    for chunk in chunks:
        await resp.write(_sse(chunk))
    await resp.write_eof()
    return resp


def vector(text: str, dims: int) -> list[float]:
    raw = b"".join(hashlib.sha256(f"{i}:{text}".encode()).digest() for i in range(dims // 32 + 1))
    return [round((b - 128) / 128, 6) for b in raw[:dims]]


def _embedding(req: dict[str, Any]) -> dict[str, list[float]]:
    text = " ".join(str(p.get("text", "")) for p in (req.get("content") or {}).get("parts") or ())
    return {"values": vector(text, int(req.get("outputDimensionality") or 8))}


async def embed(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    if not (body.get("content") or {}).get("parts"):
        return _invalid("* EmbedContentRequest.content: contents is not specified")
    return web.json_response({"embedding": _embedding(body)})


async def batch_embed(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return _invalid("* BatchEmbedContentsRequest.requests: requests is not specified")
    for i, req in enumerate(requests):
        if req.get("model") != f"models/{model}":
            return _invalid(f"Model name in requests[{i}].model ({req.get('model')}) does not match models/{model}")
    return web.json_response({"embeddings": [_embedding(r) for r in requests]})


async def count_tokens(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    """countTokens: ``{"totalTokens": words of all texts + 4 per function declaration}`` for a
    ``generateContentRequest`` (whose ``model`` must be ``models/<model>``) or bare ``contents``."""
    req = body.get("generateContentRequest") or {"contents": body.get("contents")}
    if "generateContentRequest" in body and req.get("model") != f"models/{model}":
        return _invalid(f"generateContentRequest.model ({req.get('model')}) does not match models/{model}")
    if not req.get("contents"):
        return _invalid("* CountTokensRequest.contents: contents is not specified")
    functions = sum(len(t.get("functionDeclarations") or ()) for t in req.get("tools") or ())
    return web.json_response({"totalTokens": _words(req) + 4 * functions})


ACTIONS: dict[str, Action] = {
    "generateContent": generate, "streamGenerateContent": stream,
    "embedContent": embed, "batchEmbedContents": batch_embed, "countTokens": count_tokens,
}


async def dispatch(request: web.Request) -> web.StreamResponse:
    model, _, action = request.match_info["target"].rpartition(":")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    request.app[REQUESTS].append({"path": request.path, "query": dict(request.query), "json": body,
                                  "headers": dict(request.headers)})
    if (denied := _check_key(request)) is not None:
        return denied
    if action not in ACTIONS:
        return google_error(404, "NOT_FOUND", f"Method {action or '(none)'} is not found")
    if not isinstance(body, dict):
        return _invalid("Invalid JSON payload received.")
    if model in FAILURES:
        return FAILURES[model](model)
    return await ACTIONS[action](request, model, body)


def make_app(*, api_key: str = "test-gemini-key") -> web.Application:
    app = web.Application()
    app[REQUESTS] = []
    app[SIGNATURES] = set()
    app[API_KEY] = api_key
    app.router.add_post("/v1beta/models/{target}", dispatch)
    return app
