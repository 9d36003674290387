"""A fake LLM backend that costs as little CPU as possible: raw asyncio, prebuilt replies.

It speaks just enough of two APIs for the benchmark (not the test fakes in tests/fakes/, which
check behaviour; this one only has to be cheap):
- OpenAI-compatible: POST /v1/chat/completions (also /chat/completions), JSON or SSE; GET /v1/models.
- Ollama native: POST /api/chat, JSON or NDJSON; GET /api/version, /api/tags, /api/ps; POST /api/show.
Every reply is built once at start. The model name picks a behaviour: `bench-slow` gets a slow
stream, one chunk every --slow-interval seconds, --slow-chunks of them (the "1,000 streams held
open" scenario); `bench-delay` is answered --delay-ms after it arrives (a backend that thinks, so a
gateway's own queueing shows at concurrency); `bench-paced` streams its chunks one every --pace-ms,
the first one too (time to first token through a gateway when tokens trickle in, as they do).
Streams use chunked transfer encoding, as real servers do.

Run: python -m bench.fake_backend --port 0  -> prints `port N` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

WORDS = ["Hello", " from", " the", " fake", " backend", ",", " a", " stream", " of", " small", " tokens",
         " for", " the", " load", " test", "."]
CREATED = 1_700_000_000


def _response(status: str, ctype: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + ctype + b"\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ntransfer-encoding: chunked\r\n\r\n"
END = b"0\r\n\r\n"
USAGE = {"prompt_tokens": 12, "completion_tokens": len(WORDS), "total_tokens": 12 + len(WORDS)}


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def openai_events(n: int) -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED, "model": "bench"}
    events = []
    for i in range(n):
        delta = {"role": "assistant", "content": WORDS[i % len(WORDS)]} if i == 0 else {"content": WORDS[i % len(WORDS)]}
        events.append(_dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
    events.append(_dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    events.append(_dumps({**base, "choices": [], "usage": USAGE}))
    events.append(b"[DONE]")
    return [_chunk(b"data: " + e + b"\n\n") for e in events]


def ollama_events(n: int) -> list[bytes]:
    base = {"model": "bench", "created_at": "2024-01-01T00:00:00Z"}
    lines = [_dumps({**base, "message": {"role": "assistant", "content": WORDS[i % len(WORDS)]}, "done": False})
             for i in range(n)]
    lines.append(_dumps({**base, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                         "total_duration": 1000, "load_duration": 10, "prompt_eval_count": 12,
                         "prompt_eval_duration": 100, "eval_count": n, "eval_duration": 800}))
    return [_chunk(line + b"\n") for line in lines]


class Replies:
    """Every byte string the server ever sends, built once."""

    def __init__(self, chunks: int) -> None:
        text = "".join(WORDS)
        self.openai_json = _response("200 OK", b"application/json", _dumps({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED, "model": "bench",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": USAGE}))
        self.ollama_json = _response("200 OK", b"application/json", _dumps({
            "model": "bench", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": text},
            "done": True, "done_reason": "stop", "total_duration": 1000, "load_duration": 10, "prompt_eval_count": 12,
            "prompt_eval_duration": 100, "eval_count": len(WORDS), "eval_duration": 800}))
        self.sse_head = STREAM_HEAD % b"text/event-stream"
        self.ndjson_head = STREAM_HEAD % b"application/x-ndjson"
        self.openai_events = openai_events(chunks)
        self.ollama_events = ollama_events(chunks)
        self.openai_stream = self.sse_head + b"".join(self.openai_events) + END
        self.ollama_stream = self.ndjson_head + b"".join(self.ollama_events) + END
        self.models = _response("200 OK", b"application/json", _dumps(
            {"object": "list", "data": [{"id": "bench", "object": "model", "created": CREATED, "owned_by": "bench"}]}))
        self.version = _response("200 OK", b"application/json", b'{"version":"0.6.0"}')
        self.tags = _response("200 OK", b"application/json", _dumps({"models": [{"name": "bench:latest", "model": "bench:latest"}]}))
        self.ps = _response("200 OK", b"application/json", b'{"models":[]}')
        self.show = _response("200 OK", b"application/json", _dumps(
            {"modelfile": "", "parameters": "", "template": "{{ .Prompt }}", "details": {"family": "bench"},
             "model_info": {"general.architecture": "bench", "bench.context_length": 8192}, "capabilities": ["completion"]}))
        self.not_found = _response("404 Not Found", b"application/json", b'{"error":"not found"}')


class Server(asyncio.Protocol):
    """One connection: HTTP/1.1 keep-alive, Content-Length or chunked request bodies."""

    __slots__ = ("r", "slow", "delay", "pace", "t", "buf", "closing")

    def __init__(self, replies: Replies, slow: tuple[float, int], delay: float = 0.05, pace: float = 0.005) -> None:
        self.r, self.slow, self.delay, self.pace = replies, slow, delay, pace
        self.t: asyncio.Transport | None = None
        self.buf = b""
        self.closing = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.t = transport

    def connection_lost(self, exc) -> None:
        self.closing = True

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            start = end + 4
            if b"transfer-encoding: chunked" in head:
                body, used = _dechunk(buf, start)
                if body is None:
                    break
                rest = buf[used:]
            else:
                i = head.find(b"content-length:")
                j = head.find(b"\r\n", i)
                n = int(head[i + 15:j if j > 0 else len(head)]) if i >= 0 else 0
                if len(buf) < start + n:
                    break
                body, rest = buf[start:start + n], buf[start + n:]
            self._handle(head, body)
            if b"connection: close" in head:
                self.t.close()
                return
            buf = rest
        self.buf = buf

    def _handle(self, head: bytes, body: bytes) -> None:
        line = head[:head.find(b"\r\n")] if b"\r\n" in head else head
        method, _, rest = line.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        r, write = self.r, self.t.write
        if b"bench-delay" in body:
            write = self._later
        if path.endswith(b"/chat/completions"):
            stream = b'"stream":true' in body or b'"stream": true' in body
            if not stream:
                write(r.openai_json)
            elif b"bench-slow" in body:
                self._slow(r.sse_head, r.openai_events, 3)
            elif b"bench-paced" in body:
                self._paced(r.sse_head, r.openai_events)
            else:
                write(r.openai_stream)
        elif path == b"/api/chat":
            stream = not (b'"stream":false' in body or b'"stream": false' in body)
            if not stream:
                write(r.ollama_json)
            elif b"bench-slow" in body:
                self._slow(r.ndjson_head, r.ollama_events, 1)
            elif b"bench-paced" in body:
                self._paced(r.ndjson_head, r.ollama_events)
            else:
                write(r.ollama_stream)
        elif path.endswith(b"/models"):
            write(r.models)
        else:
            write({b"/api/version": r.version, b"/api/tags": r.tags, b"/api/ps": r.ps,
                   b"/api/show": r.show}.get(path, r.not_found))

    def _later(self, data: bytes) -> None:
        asyncio.get_running_loop().call_later(self.delay, self._write, data)

    def _write(self, data: bytes) -> None:
        if not self.closing:
            self.t.write(data)

    def _paced(self, head: bytes, events: list[bytes]) -> None:
        """Head now, then one event every `pace` seconds, the first one too; the end with the last."""
        self.t.write(head)
        loop, chunks = asyncio.get_running_loop(), list(events)
        chunks[-1] += END
        for i, chunk in enumerate(chunks):
            loop.call_later(self.pace * (i + 1), self._write, chunk)

    def _slow(self, head: bytes, events: list[bytes], tail_len: int) -> None:
        """head + first content chunk now, then one per interval; the last carries the closing events."""
        interval, n = self.slow
        loop = asyncio.get_running_loop()
        content, tail = events[:-tail_len], b"".join(events[-tail_len:]) + END
        chunks = [content[i % len(content)] for i in range(max(1, n))]
        chunks[-1] += tail
        self.t.write(head + chunks[0])

        def tick(i: int) -> None:
            if self.closing:
                return
            self.t.write(chunks[i])
            if i + 1 < len(chunks):
                loop.call_later(interval, tick, i + 1)

        if len(chunks) > 1:
            loop.call_later(interval, tick, 1)


def _dechunk(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    out = []
    while True:
        i = buf.find(b"\r\n", pos)
        if i < 0:
            return None, 0
        size = int(buf[pos:i].split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n", i + 2)
            return (b"".join(out), end + 2) if end >= 0 else (None, 0)
        if len(buf) < i + 2 + size + 2:
            return None, 0
        out.append(buf[i + 2:i + 2 + size])
        pos = i + 2 + size + 2


async def serve(host: str, port: int, chunks: int, slow: tuple[float, int], delay: float = 0.05,
                pace: float = 0.005) -> None:
    replies = Replies(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Server(replies, slow, delay, pace), host, port, backlog=4096,
                                      reuse_address=True)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--chunks", type=int, default=len(WORDS), help="content chunks per fast stream")
    p.add_argument("--slow-interval", type=float, default=0.5)
    p.add_argument("--slow-chunks", type=int, default=20)
    p.add_argument("--delay-ms", type=float, default=50, help="answer delay of the bench-delay model")
    p.add_argument("--pace-ms", type=float, default=5, help="chunk interval of the bench-paced model")
    a = p.parse_args(argv)
    try:
        asyncio.run(serve(a.host, a.port, a.chunks, (a.slow_interval, a.slow_chunks), a.delay_ms / 1000,
                          a.pace_ms / 1000))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
