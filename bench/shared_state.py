"""What sharing state through Redis costs: litegate with and without a `state` section, same load.

Both runs use a key with every limit and budget set (so the local run counts them in memory and
the Redis run pays its one admit round trip), on the OpenAI route, non-streaming: concurrency 1
(p50/p99) and 16 (req/s). redis-server runs on loopback with no persistence, on the load
generator's CPU. Skipped with a note when redis-server or the `redis` library is missing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
from typing import Any, Callable

from . import loadgen, procs
from .scenarios import PROMPT, Scale

KEY = "sk-bench-shared-state"
KEY_DOC = {"name": "bench", "key_env": "BENCH_KEY", "rpm": 10_000_000, "tpm": 10_000_000_000,
           "max_concurrent": 100_000, "budget": {"tokens_per_day": 10**15, "tokens_per_month": 10**15}}


def _payload(port: int) -> bytes:
    raw = json.dumps({"model": "bench-openai", "messages": PROMPT, "stream": False, "max_tokens": 32},
                     separators=(",", ":")).encode()
    return (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(raw)}\r\n\r\n").encode() + raw


async def _redis_ready(port: int, proc: procs.Proc, timeout_s: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{proc.log_tail()}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"PING\r\n")
            line = await reader.readline()
            writer.close()
            if line.startswith(b"+PONG"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("redis-server did not answer PING")


async def compare(work: str, fake_port: int, scale: Scale, argv_for: Callable[[str, int], list[str]],
                  server_cpu: int | None, gen_cpu: int | None, log: Callable[[str], None]) -> dict[str, Any]:
    server = shutil.which("redis-server")
    if server is None:
        return {"status": "skipped", "note": "redis-server not found (Debian `redis-server`, Homebrew `redis`)"}
    if importlib.util.find_spec("redis") is None:
        return {"status": "skipped", "note": "the redis library is missing: pip install 'litegate[redis]'"}
    from .litellm_config import litegate_config

    rport = procs.free_port()
    redis = procs.launch("redis-server", [server, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no", "--dir", work], rport,
                         os.path.join(work, "redis.log"), gen_cpu)
    out: dict[str, Any] = {"status": "ok", "route": "openai, non-streaming, one key with every limit and budget"}
    try:
        await _redis_ready(rport, redis)
        for variant in ("local", "redis"):
            path = litegate_config(os.path.join(work, f"litegate-{variant}.json"), 0, fake_port)
            with open(path) as f:
                doc = json.load(f)
            doc["auth"] = {"keys": [KEY_DOC]}
            if variant == "redis":
                doc["state"] = {"redis_url": f"redis://127.0.0.1:{rport}/0", "instance": "bench"}
            with open(path, "w") as f:
                json.dump(doc, f)
            port = procs.free_port()
            env = {"LITEGATE_DATA_DIR": os.path.join(work, f"data-{variant}"), "BENCH_KEY": KEY}
            proc = procs.launch(f"litegate-{variant}", argv_for(path, port), port,
                                os.path.join(work, f"litegate-{variant}.log"), server_cpu, env)
            try:
                payload = _payload(port)
                await procs.wait_ready(proc, payload, 30)
                log(f"shared state: litegate {variant} ...")
                await loadgen.closed_loop("127.0.0.1", port, payload, concurrency=1,
                                          max_requests=max(10, scale.c1_requests // 10), duration_s=scale.c1_cap_s / 5)
                c1 = await loadgen.closed_loop("127.0.0.1", port, payload, concurrency=1,
                                               max_requests=scale.c1_requests, duration_s=scale.c1_cap_s)
                await loadgen.closed_loop("127.0.0.1", port, payload, concurrency=16, duration_s=scale.warm_s)
                window = procs.Window(proc.popen.pid, server_cpu)
                c16 = await loadgen.closed_loop("127.0.0.1", port, payload, concurrency=16, duration_s=scale.tput_s)
                out[variant] = {"c1": c1.summary(), "c16": {**c16.summary(), **window.close(c16.n)}}
            finally:
                proc.stop(timeout=30)
    except Exception as e:  # reported, never fatal to the rest of the benchmark
        out.update(status="failed", note=f"{type(e).__name__}: {e}"[:400])
        return out
    finally:
        redis.stop()
    local, shared = out["local"], out["redis"]
    out["added_p50_ms"] = _sub(shared["c1"]["p50_ms"], local["c1"]["p50_ms"])
    out["added_p99_ms"] = _sub(shared["c1"]["p99_ms"], local["c1"]["p99_ms"])
    out["added_cpu_ms_per_req"] = _sub(shared["c16"].get("cpu_ms_per_req"), local["c16"].get("cpu_ms_per_req"))
    rps = (local["c16"]["rps"], shared["c16"]["rps"])
    out["c16_rps_ratio"] = round(rps[1] / rps[0], 3) if all(rps) else None
    return out


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def markdown(res: dict[str, Any] | None) -> list[str]:
    if not res:
        return []
    lines = ["", "## Shared state (Redis)", ""]
    if res.get("status") != "ok":
        return lines + [f"{res.get('status')}: {res.get('note')}"]
    rows = [("c=1 p50 (ms)", "c1", "p50_ms"), ("c=1 p99 (ms)", "c1", "p99_ms"), ("c=16 req/s", "c16", "rps"),
            ("c=16 p50 (ms)", "c16", "p50_ms"), ("c=16 litegate CPU per request (ms)", "c16", "cpu_ms_per_req"),
            ("c=16 other processes' load on litegate's CPU", "c16", "other_load"),
            ("errors (c=1 + c=16)", None, "errors")]
    lines += [f"{res['route']}; litegate without a `state` section vs with one (redis-server on loopback).", "",
              "| metric | local state | Redis | difference |", "|---|---|---|---|"]
    for label, level, field in rows:
        if level is None:
            a = res["local"]["c1"]["errors"] + res["local"]["c16"]["errors"]
            b = res["redis"]["c1"]["errors"] + res["redis"]["c16"]["errors"]
        else:
            a, b = res["local"][level].get(field), res["redis"][level].get(field)
        lines.append(f"| {label} | {a} | {b} | {_sub(b, a)} |")
    return lines
