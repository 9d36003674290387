"""Fake OpenAI Responses API server (`POST /v1/responses`), the backend of native pass-through.

``make_app(api_key="k")`` requires ``Authorization: Bearer k`` (401 in OpenAI's envelope otherwise).
The scenario is the request's ``model``:

==============  ================================================================================
echo (default)  one message ``Hello from <model>``; streamed (``stream: true``) as OpenAI does:
                created, in_progress, output_item.added, content_part.added, three
                output_text.delta, the done events, response.completed with usage
                (input_tokens 7, cached 2, output_tokens 3, reasoning 1); ``event:`` lines included
bad-request     400 ``invalid_request_error`` param ``input``
midstream-fail  created, one delta, then ``response.failed`` (server_error)
cut             created, then the TCP connection is aborted
==============  ================================================================================

``REQUESTS`` (app key) records ``{"path", "json", "headers"}`` of every request.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

REQUESTS: web.AppKey[list[dict[str, Any]]] = web.AppKey("requests", list)
API_KEY: web.AppKey[str | None] = web.AppKey("api_key")
USAGE = {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 3,
         "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 10}


def _response(model: str, status: str, output: list, usage: dict | None = None) -> dict[str, Any]:
    return {"id": "resp_native1", "object": "response", "created_at": 1767225600, "status": status,
            "error": None, "incomplete_details": None, "instructions": None, "model": model, "output": output,
            "parallel_tool_calls": True, "metadata": {}, "tool_choice": "auto", "tools": [], "temperature": 1.0,
            "top_p": 1.0, "usage": usage}


def _message(text: str, status: str = "completed") -> dict[str, Any]:
    return {"id": "msg_native1", "type": "message", "role": "assistant", "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def _events(model: str, scenario: str) -> list[dict[str, Any]]:
    text = f"Hello from {model}"
    pieces = ["Hello", " from", f" {model}"]
    where = {"item_id": "msg_native1", "output_index": 0, "content_index": 0}
    out = [{"type": "response.created", "response": _response(model, "in_progress", [])},
           {"type": "response.in_progress", "response": _response(model, "in_progress", [])},
           {"type": "response.output_item.added", "output_index": 0, "item": {**_message("", "in_progress"), "content": []}},
           {"type": "response.content_part.added", **where,
            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}]
    if scenario == "midstream-fail":
        out.append({"type": "response.output_text.delta", **where, "delta": "Hel", "logprobs": []})
        out.append({"type": "response.failed", "response": {**_response(model, "failed", []),
                                                            "error": {"code": "server_error", "message": "boom"}}})
    else:
        out += [{"type": "response.output_text.delta", **where, "delta": p, "logprobs": []} for p in pieces]
        out += [{"type": "response.output_text.done", **where, "text": text, "logprobs": []},
                {"type": "response.content_part.done", **where,
                 "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []}},
                {"type": "response.output_item.done", "output_index": 0, "item": _message(text)},
                {"type": "response.completed", "response": _response(model, "completed", [_message(text)], USAGE)}]
    return [{**e, "sequence_number": i} for i, e in enumerate(out)]


async def responses(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        body = None
    request.app[REQUESTS].append({"path": request.path, "json": body, "headers": dict(request.headers)})
    key = request.app[API_KEY]
    if key and request.headers.get("authorization") != f"Bearer {key}":
        return web.json_response({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                             "param": None, "code": "invalid_api_key"}}, status=401)
    model = str(body.get("model", "")) if isinstance(body, dict) else ""
    scenario = model.split(":")[0]
    if scenario == "bad-request":
        return web.json_response({"error": {"message": "Invalid input", "type": "invalid_request_error",
                                            "param": "input", "code": None}}, status=400)
    if not body.get("stream"):
        text = f"Hello from {model}"
        return web.json_response(_response(model, "completed", [_message(text)], USAGE))
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    for i, event in enumerate(_events(model, scenario)):
        await resp.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        if scenario == "cut" and i == 0:
            request.transport.abort()
            return resp
    await resp.write_eof()
    return resp


def make_app(*, api_key: str | None = None) -> web.Application:
    app = web.Application()
    app[REQUESTS] = []
    app[API_KEY] = api_key
    app.router.add_post("/v1/responses", responses)
    return app
