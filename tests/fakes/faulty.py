"""A backend that fails in every way a real one does, speaking any provider's chat paths.

One aiohttp app answers POSTs for all four providers: the provider is told by the path
(`/api/chat` Ollama, `/chat/completions` OpenAI, `/v1/messages` Anthropic, `:generateContent` /
`:streamGenerateContent` Gemini) and the fault by the model name (the body's `model`, or the
Gemini path's `models/<name>:`). Where a fault happens after the answer began, the stream first
carries one valid text event in that provider's own format ("Hel"), so litegate has sent bytes.

====================  ========================================================================
ok                    one valid text event, then the provider's proper end (the control case)
timeout               nothing at all until the gate opens (no headers): first-token timeout
hang                  headers and one event (non-stream: headers, half a body), then silence
early-eof             headers and one event (non-stream: content-length 1000, 10 bytes), abort
garbage               200 with bytes that are not JSON (and not SSE/NDJSON framing)
wrong-shape           200 with JSON of the wrong shape (a top-level array; odd counts in usage)
html                  502 with an HTML page, as a proxy in front of a backend sends
rate-limited          429 with `retry-after: 1`
server-error          500 with a plain text body
huge                  200 with a reply far larger than any sane cap (4 MB; no line break)
====================  ========================================================================

POST .../embeddings answers one embedding whose base64 is not base64.
`app[GATE]` releases `timeout` and `hang` at the end of a test (so nothing lingers).
"""

from __future__ import annotations

import asyncio
import json
import re

from aiohttp import web

GATE = web.AppKey("gate", asyncio.Event)
FAULTS = ("timeout", "hang", "early-eof", "garbage", "wrong-shape", "html", "rate-limited", "server-error", "huge")
HUGE = 4 << 20

_FIRST = {
    "ollama": b'{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Hel"},'
              b'"done":false}\n',
    "openai": b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
              b'"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n',
    "anthropic": b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
                 b'"role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,'
                 b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
                 b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
                 b'"content_block":{"type":"text","text":""}}\n\n'
                 b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                 b'"delta":{"type":"text_delta","text":"Hel"}}\n\n',
    "gemini": b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}]}\n\n',
}
_END = {
    "ollama": b'{"model":"m","created_at":"2025-01-01T00:00:01Z","message":{"role":"assistant","content":"lo"},'
              b'"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":2}\n',
    "openai": b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
              b'"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n'
              b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
              b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\ndata: [DONE]\n\n',
    "anthropic": b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                 b'"delta":{"type":"text_delta","text":"lo"}}\n\n'
                 b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
                 b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
                 b'"stop_sequence":null},"usage":{"output_tokens":2}}\n\n'
                 b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    "gemini": b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},"finishReason":"STOP",'
              b'"index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5}}\n\n',
}
_WHOLE = {
    "ollama": b'{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Hello"},'
              b'"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":2}',
    "openai": b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":'
              b'{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],'
              b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}',
    "anthropic": b'{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text",'
                 b'"text":"Hello"}],"stop_reason":"end_turn","stop_sequence":null,'
                 b'"usage":{"input_tokens":3,"output_tokens":2}}',
    "gemini": b'{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello"}]},"finishReason":"STOP",'
              b'"index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5}}',
}
# The wrong shape each provider might meet: a top-level array, and (OpenAI) usage counts that are not numbers.
_WRONG = {
    "openai": b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":'
              b'{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,'
              b'"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":"x"}}}',
}


_WRONG_CHUNK = {
    "ollama": b"[1, 2, 3]\n",
    "openai": b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":'
              b'{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":'
              b'{"cached_tokens":"x"}}}\n\n',
}


def _provider(path: str) -> str:
    if path.endswith("/api/chat"):
        return "ollama"
    if path.endswith("/messages"):
        return "anthropic"
    if "enerateContent" in path:  # generateContent and streamGenerateContent
        return "gemini"
    return "openai"


def _sse(provider: str) -> str:
    return "application/x-ndjson" if provider == "ollama" else "text/event-stream"


async def handle(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    if request.path.endswith("/embeddings"):  # an OpenAI-compatible server whose base64 is broken
        return web.json_response({"object": "list", "data": [{"object": "embedding", "index": 0,
                                                               "embedding": "%%%not base64"}],
                                  "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}})
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    provider = _provider(request.path)
    found = re.search(r"models/([^:/]+):", request.path)
    fault = (found.group(1) if found else str(body.get("model", "ok"))).split(":", 1)[0]
    stream = bool(body.get("stream")) if provider != "gemini" else "streamGenerateContent" in request.path
    if provider == "ollama" and "stream" not in body:
        stream = True
    gate = request.app[GATE]
    if fault == "timeout":
        await gate.wait()
    if fault == "html":
        return web.Response(status=502, content_type="text/html",
                            text="<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
                                 "Gateway</h1></center><hr><center>nginx</center></body></html>")
    if fault == "rate-limited":
        return web.json_response({"error": {"message": "slow down", "type": "rate_limit_error"}}, status=429,
                                 headers={"retry-after": "1"})
    if fault == "server-error":
        return web.Response(status=500, text="Internal Server Error")
    if fault == "garbage":
        return web.Response(body=b"\x00\xff\xfegarbage }{ not json", content_type="application/json")
    if fault == "huge":
        return web.Response(body=b'{"x":"' + b"a" * HUGE + b'"}', content_type="application/json")
    if fault == "wrong-shape" and not stream:
        return web.Response(body=_WRONG.get(provider, b"[1, 2, 3]"), content_type="application/json")
    if not stream:
        if fault in ("hang", "early-eof"):
            resp = web.StreamResponse(headers={"content-type": "application/json", "content-length": "1000"})
            await resp.prepare(request)
            await resp.write(_WHOLE[provider][:10])
            if fault == "hang":
                await gate.wait()
            request.transport.abort()
            return resp
        return web.Response(body=_WHOLE[provider], content_type="application/json")
    resp = web.StreamResponse(headers={"content-type": _sse(provider)})
    await resp.prepare(request)
    await resp.write(_FIRST[provider])
    if fault == "hang":
        await gate.wait()
        request.transport.abort()
        return resp
    if fault == "early-eof":
        request.transport.abort()
        return resp
    if fault == "wrong-shape":
        await resp.write(_WRONG_CHUNK.get(provider, b"data: [1, 2, 3]\n\n"))
    await resp.write(_END[provider])
    await resp.write_eof()
    return resp


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 << 20)
    app[GATE] = asyncio.Event()
    app.router.add_post("/{tail:.*}", handle)
    return app
