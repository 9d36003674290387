"""Start litegate exactly as `litegate serve ...` does, optionally profiled or on another event loop.

Used by the benchmark when asked (`--profile`, `--uvloop`); the plain benchmark runs
`python -m litegate serve` and nothing from here.

  python -m bench.launch_litegate [--cprofile OUT.prof] [--uvloop] -- serve --config C --port N

With --cprofile the whole process runs under cProfile; on SIGTERM litegate drains and returns,
then the stats go to OUT.prof and the top functions (by own time and cumulative) to OUT.txt.
--uvloop installs uvloop's event-loop policy first (to measure what switching loops would buy).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys


def _summary(prof: cProfile.Profile, path: str, top: int = 45) -> None:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        out.write(f"\n==== top {top} by {key} ====\n")
        stats.sort_stats(key).print_stats(top)
    with open(path, "w") as f:
        f.write(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cprofile", metavar="OUT.prof")
    p.add_argument("--uvloop", action="store_true")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    if a.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from litegate.service.cli import main as litegate_main

    if not a.cprofile:
        return litegate_main(rest)
    prof = cProfile.Profile()
    prof.enable()
    try:
        return litegate_main(rest)
    finally:
        prof.disable()
        prof.dump_stats(a.cprofile)
        _summary(prof, a.cprofile.rsplit(".", 1)[0] + ".txt")


if __name__ == "__main__":
    sys.exit(main())
