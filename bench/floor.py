"""The floor: the least a gateway on litegate's stack can do, measured beside litegate in the same run.

  python -m bench.floor --port N --backend http://127.0.0.1:M [--client pool|aiohttp]

An aiohttp server on uvloop (as litegate serves) with one handler: read the client's body, swap the
gateway's model name for the backend's (`bench-<route>[-kind]` → `bench[-kind]`), send it on to the
fake backend's same path, and hand the answer back: whole, or streamed piece by piece as it
arrives. No keys, limits, usage, metrics, log lines, routing or translation; nothing is parsed.
`--client pool` sends through litegate's own pooled client (litegate/pool.py, what litegate uses),
`--client aiohttp` through aiohttp's ClientSession (issue 19's "bare aiohttp pass-through").

What it shows: the part of each figure that is aiohttp's server, the event loop and the kernel,
which no work inside litegate can remove. Each goal below this floor cannot be met on this stack.
Only the OpenAI route is meaningful (the Ollama route would need translation); the report uses that.
"""

from __future__ import annotations

import argparse
import re
import sys

from aiohttp import web

_MODEL = re.compile(rb'"bench-(?:openai|ollama)')


def app(backend: str, client: str) -> web.Application:
    application = web.Application()
    holder: dict = {}

    async def start(_app: web.Application) -> None:
        if client == "pool":
            from litegate.pool import Pool

            holder["pool"] = Pool()
        else:
            import aiohttp

            holder["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def stop(_app: web.Application) -> None:
        if "pool" in holder:
            await holder["pool"].close()
        if "session" in holder:
            await holder["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = _MODEL.sub(b'"bench', await request.read())
        stream = b'"stream":true' in body or b'"stream": true' in body
        url = backend + request.path
        headers = {"content-type": "application/json"}
        if "pool" in holder:
            upstream = await holder["pool"].request("POST", url, body, headers)
            status, ctype, pieces = upstream.status, upstream.headers.get("content-type"), upstream.chunks()
            close = upstream.close
        else:
            upstream = await holder["session"].post(url, data=body, headers=headers)
            status, ctype, pieces = upstream.status, upstream.headers.get("content-type"), upstream.content.iter_any()
            close = upstream.release
        try:
            if not stream:
                return web.Response(status=status, body=b"".join([p async for p in pieces]), content_type=None,
                                    headers={"content-type": ctype or "application/json"})
            resp = web.StreamResponse(status=status, headers={"content-type": ctype or "text/event-stream"})
            await resp.prepare(request)
            async for piece in pieces:
                await resp.write(piece)
            await resp.write_eof()
            return resp
        finally:
            close()

    application.router.add_post("/{path:.*}", forward)
    application.on_startup.append(start)
    application.on_cleanup.append(stop)
    return application


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="bare aiohttp pass-through: the benchmark's floor")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend", required=True, help="the fake backend's base URL")
    p.add_argument("--client", choices=("pool", "aiohttp"), default="pool")
    a = p.parse_args(argv)
    import uvloop

    web.run_app(app(a.backend.rstrip("/"), a.client), host="127.0.0.1", port=a.port, print=None, access_log=None, backlog=4096,
                loop=uvloop.new_event_loop())
    return 0


if __name__ == "__main__":
    sys.exit(main())
