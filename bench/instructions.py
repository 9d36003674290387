"""Instructions per request under callgrind: a cost figure that other load on the machine cannot move.

Wall time and even CPU time per request vary by tens of percent on a shared 2-core box (other
processes thrash the caches and steal the core). valgrind's callgrind counts the instructions
litegate executes, which is the same from run to run within about a percent, so two commits can
be compared on a busy machine. It is slow (~50x), so it sends a few hundred requests per scenario
one at a time, after a warm-up, and only those are counted (callgrind_control zeroes and dumps the
counters around each scenario).

  python -m bench.instructions [--requests 400] [--warmup 100] [--root DIR]

--root runs another checkout's litegate (its directory goes first on PYTHONPATH), e.g. to compare
with an older commit from a `git worktree`. Prints one line per scenario: instructions per request
(millions). Needs valgrind on PATH (Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

from . import loadgen, procs
from .litellm_config import litegate_config
from .scenarios import ROUTES, Target

FACES = ("openai", "anthropic", "responses", "ollama")  # Target.payload's faces
SCENARIOS = [(face, route, stream) for face in FACES for route in ROUTES for stream in (False, True)]


def _total(path: str) -> int:
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise RuntimeError(f"no totals in {path}")


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


async def _main(a: argparse.Namespace) -> int:
    work = tempfile.mkdtemp(prefix="litegate-instr-")
    fake_port, port = procs.free_port(), procs.free_port()
    fake = procs.launch("fake backend", [sys.executable, "-m", "bench.fake_backend", "--port", str(fake_port)],
                        fake_port, os.path.join(work, "fake.log"), None)
    cfg = litegate_config(os.path.join(work, "litegate.json"), port, fake_port)
    env = {"LITEGATE_DATA_DIR": os.path.join(work, "data")}
    if a.root:
        env["PYTHONPATH"] = os.path.abspath(a.root) + os.pathsep + os.environ.get("PYTHONPATH", "")
    out = os.path.join(work, "cg.out")
    server = (["-m", "bench.floor", "--port", str(port), "--backend", f"http://127.0.0.1:{fake_port}"] if a.floor
              else ["-m", "litegate", "serve", "--config", cfg, "--port", str(port)])
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", sys.executable, *server]
    # `python -m` puts the working directory first on sys.path: run in the checkout being measured.
    lg = procs.launch("litegate", argv, port, os.path.join(work, "litegate.log"), None, env,
                      cwd=os.path.abspath(a.root) if a.root else None)
    try:
        await procs.wait_ready(fake, Target("direct", fake_port, fake.pid).payload("openai"), 15)
        t = Target("litegate", port, lg.pid)
        await procs.wait_ready(lg, t.payload("openai"), 600)
        for face, route, stream in SCENARIOS:
            if face not in a.faces.split(",") or (a.floor and route != "openai"):
                continue
            payload = t.payload(route, stream, face=face)
            await loadgen.closed_loop(t.host, port, payload, concurrency=1, stream=stream, max_requests=a.warmup)
            for f in glob.glob(out + ".*"):
                os.unlink(f)
            _control("-z", str(lg.pid))
            run = await loadgen.closed_loop(t.host, port, payload, concurrency=1, stream=stream,
                                            max_requests=a.requests)
            _control("-d", str(lg.pid))
            dumps = [f for f in glob.glob(out + ".*") if os.path.getsize(f)]
            total = sum(_total(f) for f in dumps)
            mode = "stream" if stream else "nonstream"
            print(f"{'floor' if a.floor else face:10} {route:7} {mode:9} {total / max(1, run.n) / 1e6:8.3f} M instructions/request "
                  f"({run.n} requests, {run.errors} errors)", flush=True)
    finally:
        lg.stop(timeout=120)
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--root", help="checkout whose litegate to run (default: this one)")
    p.add_argument("--faces", default="openai", help="comma list of faces to measure")
    p.add_argument("--floor", action="store_true",
                   help="measure bench/floor.py (a bare aiohttp pass-through, OpenAI route) instead of litegate")
    a = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 1
    return asyncio.run(_main(a))


if __name__ == "__main__":
    sys.exit(main())
