"""Where litegate's time goes: py-spy samples it under one load, and the stacks are summed per stage.

  python -m bench.spy [--py-spy PATH] [--route openai|ollama] [--stream] [--kind delay] [--face openai]
                      [--concurrency 16] [--seconds 15] [--out spy.txt]

Starts the fake backend and litegate (as `make bench` does, pinned the same way), drives one
scenario while `py-spy record --format raw` samples litegate, then prints the share of samples per
stage (a stage is a frame that appears anywhere in the stack: the first matching rule wins, from the
most specific) and the top functions by own time. py-spy is not a dependency: install it anywhere
(`python -m venv /tmp/spy && /tmp/spy/bin/pip install py-spy`) and pass its path.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile

from . import loadgen, procs
from .litellm_config import litegate_config
from .scenarios import Target

# (stage, substring of a "function (file)" frame); checked in order against each stack, leaf first.
STAGES = [
    ("access log (structlog)", "structlog"),
    ("access log (structlog)", "_access_log"),
    ("usage + metrics + limits", "accounting.py"),
    ("usage writer thread", "usage/writer.py"),
    ("usage writer thread", "sqlite3"),
    ("outbound HTTP client", "aiohttp/client"),
    ("outbound HTTP client", "aiohttp/connector"),
    ("outbound HTTP client", "upstream.py"),
    ("provider translation", "providers/"),
    ("face translation", "surfaces/"),
    ("plan + attempts + router", "core/plan.py"),
    ("plan + attempts + router", "core/attempts.py"),
    ("plan + attempts + router", "core/router.py"),
    ("plan + attempts + router", "core/backends.py"),
    ("edge (reply / stream writes)", "http/edge.py"),
    ("middleware", "http/middleware.py"),
    ("aiohttp server", "aiohttp/web"),
    ("aiohttp server", "aiohttp/http_"),
    ("aiohttp server", "aiohttp/base_protocol"),
    ("aiohttp server", "aiohttp/streams"),
    ("event loop / idle", "asyncio"),
    ("event loop / idle", "uvloop"),
]


def _summarise(raw: str, top: int = 40) -> str:
    stages: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        leaf_first = frames[::-1]
        for name, needle in STAGES:
            if any(needle in f for f in leaf_first):
                stages[name] += n
                break
        else:
            stages["other"] += n
    if not total:
        return "no samples"
    out = [f"{total} samples", "", "share  stage (first rule matching anywhere in the stack)"]
    out += [f"{n / total:6.1%} {name}" for name, n in stages.most_common()]
    out += ["", "share  own time: function (file:line)"]
    out += [f"{n / total:6.1%} {name}" for name, n in own.most_common(top)]
    return "\n".join(out)


async def _main(a: argparse.Namespace) -> int:
    work = tempfile.mkdtemp(prefix="litegate-spy-")
    server_cpu, gen_cpu, _ = procs.cpu_plan()
    procs.pin_self(gen_cpu)
    fake_port, port = procs.free_port(), procs.free_port()
    fake = procs.launch("fake backend", [sys.executable, "-m", "bench.fake_backend", "--port", str(fake_port)],
                        fake_port, os.path.join(work, "fake.log"), gen_cpu)
    cfg = litegate_config(os.path.join(work, "litegate.json"), port, fake_port)
    lg = procs.launch("litegate", [sys.executable, "-m", "litegate", "serve", "--config", cfg, "--port", str(port)],
                      port, os.path.join(work, "litegate.log"), server_cpu,
                      {"LITEGATE_DATA_DIR": os.path.join(work, "data")})
    raw_path = os.path.join(work, "spy.txt")
    try:
        await procs.wait_ready(fake, Target("direct", fake_port, fake.pid).payload("openai"), 15)
        t = Target("litegate", port, lg.pid)
        await procs.wait_ready(lg, t.payload("openai"), 30)
        payload = t.payload(a.route, a.stream, kind=a.kind, face=a.face)
        await loadgen.closed_loop(t.host, port, payload, concurrency=a.concurrency, stream=a.stream, duration_s=2)
        spy = subprocess.Popen([a.py_spy, "record", "--pid", str(lg.pid), "-d", str(int(a.seconds) + 1), "-r", str(a.rate),
                                "--threads", "--format", "raw", "-o", raw_path, "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        await asyncio.sleep(0.5)
        run = await loadgen.closed_loop(t.host, port, payload, concurrency=a.concurrency, stream=a.stream,
                                        duration_s=a.seconds)
        err = spy.communicate(timeout=60)[1].decode(errors="replace")
        if not os.path.exists(raw_path):
            print(f"py-spy wrote nothing: {err[-2000:]}", file=sys.stderr)
            return 1
        print(f"{run.n} requests, {run.errors} errors, {run.n / run.elapsed:,.0f} req/s during sampling")
        with open(raw_path) as f:
            raw = f.read()
        if a.out:
            shutil.copy(raw_path, a.out)
        print(_summarise(raw))
    finally:
        lg.stop()
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    p.add_argument("--route", default="openai", choices=("openai", "ollama"))
    p.add_argument("--face", default="openai")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--kind", default="", help="fake backend behaviour: '', delay, paced")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--rate", type=int, default=250)
    p.add_argument("--out", help="keep py-spy's raw stacks here")
    a = p.parse_args(argv)
    return asyncio.run(_main(a))


if __name__ == "__main__":
    sys.exit(main())
