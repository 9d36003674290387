"""make soak: does litegate stay small over a long mixed run and under many held streams? (issue 21)

  python -m bench.soak [--requests 20000] [--streams 1000]

Starts the bench's fake backend and a litegate (as `litegate serve`, default limits) and prints:
- RSS drift: RSS after a warm-up vs after `--requests` mixed requests, both routes (OpenAI-compatible and
  Ollama native), whole and streamed, plus requests that fail on purpose (unknown model, broken JSON,
  a 64-bit-overflowing integer), all at once from 4 connections each;
- peak RSS while `--streams` slow streams are held open at once, per route.
Goals: drift <= 3 MB, peak <= 90 MB. Exit status 0 when litegate ran the whole soak, whatever the figures.
Not part of `make test` (a few minutes). Reuses bench/fake_backend.py, loadgen.py and procs.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile

from . import litellm_config, loadgen, procs, scenarios
from .run import _raise_nofile

GOALS = {"drift_mb": 3.0, "peak_mb": 90.0}


def _bad(t: scenarios.Target, body: bytes) -> bytes:
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {t.host}:{t.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def mixed_payloads(t: scenarios.Target) -> list[tuple[bytes, bool, bool]]:
    """(request, streamed, expected to succeed) for every kind in the mix."""
    out = [(t.payload(route, stream), stream, True) for route in scenarios.ROUTES for stream in (False, True)]
    unknown = loadgen.request_bytes(t.host, t.port, "/v1/chat/completions",
                                    {"model": "no-such-model", "messages": scenarios.PROMPT})
    out += [(unknown, False, False), (_bad(t, b'{"model": "bench-openai", "messages": [{'), False, False),
            (_bad(t, b'{"model":"bench-openai","messages":[],"max_tokens":1180591620717411303424}'), False, False)]
    return out


async def mixed(t: scenarios.Target, total: int) -> dict:
    kinds = mixed_payloads(t)
    per_kind = max(1, total // len(kinds))
    runs = await asyncio.gather(*(loadgen.closed_loop(t.host, t.port, payload, concurrency=4, stream=stream,
                                                      max_requests=per_kind) for payload, stream, _ in kinds))
    ok = sum(r.n for r, (_, _, good) in zip(runs, kinds) if good)
    unexpected = sum(r.errors for r, (_, _, good) in zip(runs, kinds) if good)
    refused = sum(r.errors for r, (_, _, good) in zip(runs, kinds) if not good)
    return {"requests": sum(r.n + r.errors for r in runs), "ok": ok, "refused_on_purpose": refused,
            "unexpected_errors": unexpected}


async def soak(requests: int, streams: int, work: str) -> dict:
    scale = scenarios.Scale("soak", 1, 0.5, 0, 0, 0, 0, streams, 0.2, 10, 0, 0, 600)
    fake_port = procs.free_port()
    fake = procs.launch("fake backend", [sys.executable, "-m", "bench.fake_backend", "--port", str(fake_port),
                                         "--slow-interval", "0.2", "--slow-chunks", "10"],
                        fake_port, os.path.join(work, "fake.log"), None)
    gate = None
    try:
        await procs.wait_ready(fake, scenarios.Target("direct", fake_port, fake.pid).payload("openai"), 15)
        port = procs.free_port()
        cfg = litellm_config.litegate_config(os.path.join(work, "litegate.json"), port, fake_port)
        gate = procs.launch("litegate", [sys.executable, "-m", "litegate", "serve", "--config", cfg, "--port",
                                         str(port)], port, os.path.join(work, "litegate.log"), None,
                            {"LITEGATE_DATA_DIR": os.path.join(work, "data")})
        t = scenarios.Target("litegate", port, gate.pid)
        await procs.wait_ready(gate, t.payload("openai"), 30)
        warm = await mixed(t, max(1000, requests // 10))
        await asyncio.sleep(1.0)
        before = procs.rss_mb(gate.pid)
        run = await mixed(t, requests)
        await asyncio.sleep(1.0)
        after = procs.rss_mb(gate.pid)
        held = await scenarios.held_streams(t, scale)
        return {"warmup": warm, "mixed": run, "rss_before_mb": before, "rss_after_mb": after,
                "drift_mb": round(after - before, 2) if after and before else None, "streams": held,
                "exit_status": gate.stop(timeout=60)}
    finally:
        if gate is not None:
            gate.stop()
        fake.stop()


def _verdict(value: float | None, goal: float) -> str:
    return "?" if value is None else ("PASS" if value <= goal else "MISS")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="litegate soak: RSS drift and peak RSS under held streams")
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--streams", type=int, default=1000)
    a = p.parse_args(argv)
    _raise_nofile()
    work = tempfile.mkdtemp(prefix="litegate-soak-")
    try:
        res = asyncio.run(soak(a.requests, a.streams, work))
    except Exception as e:
        print(f"soak failed: {type(e).__name__}: {e}; logs in {work}", file=sys.stderr)
        return 1
    m = res["mixed"]
    print(f"\nlitegate soak ({res['rss_before_mb']} MB after warm-up)")
    print(f"  mixed requests   {m['requests']:>6}  ok {m['ok']}, refused on purpose {m['refused_on_purpose']}, "
          f"unexpected errors {m['unexpected_errors']}")
    print(f"  RSS drift        {res['drift_mb']:>6} MB  (goal <= {GOALS['drift_mb']} MB)  "
          f"{_verdict(res['drift_mb'], GOALS['drift_mb'])}")
    for route, s in res["streams"].items():
        print(f"  {a.streams} streams {route:<7} peak {s['rss_peak_mb']} MB (goal <= {GOALS['peak_mb']} MB)  "
              f"{_verdict(s['rss_peak_mb'], GOALS['peak_mb'])}, errors {s['errors']}, open at once {s['open_at_once']}")
    print(f"  exit status on SIGTERM: {res['exit_status']}")
    print(json.dumps(res, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
