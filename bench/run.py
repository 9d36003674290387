"""`make bench` / `make bench-quick` / `make bench-compare`: run every scenario, write the report.

  python -m bench.run [--scale tiny|quick|full] [--out DIR] [--litellm PATH/TO/litellm]
                      [--cprofile] [--uvloop] [--systems direct,litegate,shared,litellm]

BENCH_SCALE in the environment sets the default scale. The fake backend and this process (the
load generator) share one CPU; the gateway under test gets the other. Exit status: 0 when every
litegate scenario ran (whatever the figures), 1 when litegate itself failed; a LiteLLM that cannot
be installed or started is a note in the report, not a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone

from . import litellm_config, procs, report, scenarios, shared_state
from .scenarios import Scale, Target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            return soft
    return want


class Bench:
    def __init__(self, a: argparse.Namespace, scale: Scale, work: str) -> None:
        self.a, self.scale, self.work = a, scale, work
        self.server_cpu, self.gen_cpu, self.pinning = procs.cpu_plan()
        self.notes: list[str] = []
        self.fake: procs.Proc | None = None

    async def start_fake(self) -> Target:
        port = procs.free_port()
        argv = [sys.executable, "-m", "bench.fake_backend", "--port", str(port),
                "--slow-interval", str(self.scale.slow_interval), "--slow-chunks", str(self.scale.slow_chunks)]
        self.fake = procs.launch("fake backend", argv, port, os.path.join(self.work, "fake.log"), self.gen_cpu)
        t = Target("direct", port, self.fake.pid)  # its CPU also runs the generator: no "other load"
        await procs.wait_ready(self.fake, t.payload("openai"), 15)
        return t

    def _litegate_argv(self, cfg: str, port: int, profile: str | None) -> list[str]:
        serve = ["serve", "--config", cfg, "--port", str(port)]
        if not (profile or self.a.uvloop):
            return [sys.executable, "-m", "litegate", *serve]
        extra = (["--cprofile", profile] if profile else []) + (["--uvloop"] if self.a.uvloop else [])
        return [sys.executable, "-m", "bench.launch_litegate", *extra, "--", *serve]

    async def gateway(self, name: str, argv_for, timeout_s: float, runs: int | None = None,
                      env: dict | None = None, profile_last: str | None = None,
                      skip: tuple[str, ...] = (), routes: tuple[str, ...] = scenarios.ROUTES) -> tuple[dict, procs.Proc]:
        """Time the start-ups, keep the last process, run every scenario against it."""
        port = procs.free_port()
        log_path = os.path.join(self.work, f"{name}.log")
        count = [0]
        total = runs or self.scale.ready_runs

        def start() -> procs.Proc:
            count[0] += 1
            profile = profile_last if count[0] == total else None
            return procs.launch(name, argv_for(port, profile), port, log_path, self.server_cpu, env)

        def payload(p: procs.Proc) -> bytes:
            return Target(name, p.port, p.pid).payload("openai")

        _log(f"{name}: timing {total} start-ups ...")
        result: dict = {}
        result["startup"], proc = await scenarios.startup(start, payload, self.scale, timeout_s, runs)
        _log(f"{name}: ready {result['startup']['ready_s']} s, idle RSS {result['startup']['idle_rss_mb']} MB")
        try:
            result.update(await scenarios.run_all(Target(name, port, proc.pid, self.server_cpu, routes=routes),
                                                  self.scale, _log, skip=skip))
        finally:
            result["exit_status"] = proc.stop(timeout=60)
        return result, proc

    async def litegate(self, fake: Target) -> dict:
        cfg = litellm_config.litegate_config(os.path.join(self.work, "litegate.json"), 0, fake.port)
        profile = os.path.join(self.a.out, "profile-litegate.prof") if self.a.cprofile else None
        # The usage database goes to the scratch directory, never the user's real one.
        env = {"LITEGATE_DATA_DIR": os.path.join(self.work, "litegate-data")}
        res, _ = await self.gateway("litegate", lambda port, prof: self._litegate_argv(cfg, port, prof), 30,
                                    env=env, profile_last=profile)
        if profile:
            res["profile"] = profile
        return res

    async def floor(self, fake: Target) -> dict:
        """bench/floor.py: aiohttp's server and litegate's pool with nothing in between (OpenAI route)."""
        def argv(port: int, _profile: str | None) -> list[str]:
            return [sys.executable, "-m", "bench.floor", "--port", str(port), "--backend", f"http://127.0.0.1:{fake.port}"]

        res, _ = await self.gateway("floor", argv, 30, routes=("openai",),
                                    skip=("ollama_face", "anthropic_face", "responses_face", "memory_flat"))
        return res

    async def litellm(self, fake: Target) -> tuple[dict | None, dict]:
        ok, note = litellm_config.litellm_status(self.a.litellm, self.a.litellm_install_log)
        if not ok:
            return None, {"status": "skipped" if not self.a.litellm else "unavailable", "note": note}
        cfg = litellm_config.litellm_config(os.path.join(self.work, "litellm.yaml"), fake.port)
        runs = min(3, self.scale.ready_runs)
        try:
            res, _ = await self.gateway("litellm", lambda port, _p: litellm_config.litellm_argv(self.a.litellm, cfg, port),
                                        180, runs=runs, env=litellm_config.LITELLM_ENV)
        except Exception as e:  # LiteLLM's failure is reported, never fatal
            tail = ""
            try:
                with open(os.path.join(self.work, "litellm.log"), errors="replace") as f:
                    tail = "".join(f.readlines()[-5:])
            except OSError:
                pass
            _log(f"litellm failed: {e}")
            return None, {"status": "failed", "note": f"{note}; FAILED: {str(e).splitlines()[0]} {tail[-400:]!r}"}
        return res, {"status": "ok", "note": note}

    async def run(self) -> tuple[dict, bool]:
        procs.pin_self(self.gen_cpu)
        systems: dict = {}
        litegate_ok = True
        comparison = {"status": "skipped", "note": "not requested (run `make bench-compare`)"}
        wanted = self.a.systems.split(",")
        fake = await self.start_fake()
        try:
            if "direct" in wanted:
                _log("direct path: load generator -> fake backend")
                systems["direct"] = await scenarios.run_all(fake, self.scale, _log, skip=("memory_flat", "ollama_face"))
            if "floor" in wanted:
                try:
                    systems["floor"] = await self.floor(fake)
                except Exception as e:  # the floor is a reference line, never fatal
                    systems["floor"] = {"error": f"{type(e).__name__}: {e}"}
                    _log("floor FAILED:\n" + traceback.format_exc())
            if "litegate" in wanted:
                try:
                    systems["litegate"] = await self.litegate(fake)
                except Exception as e:
                    litegate_ok = False
                    systems["litegate"] = {"error": f"{type(e).__name__}: {e}"}
                    _log("litegate FAILED:\n" + traceback.format_exc())
            if self.a.litellm or "litellm" in wanted:
                res, comparison = await self.litellm(fake)
                if res is not None:
                    systems["litellm"] = res
            shared = None
            if "shared" in wanted:
                _log("shared state: litegate with and without Redis")
                shared = await shared_state.compare(self.work, fake.port, self.scale,
                                                    lambda cfg, port: self._litegate_argv(cfg, port, None),
                                                    self.server_cpu, self.gen_cpu, _log)
                _log(f"shared state: {shared.get('status')} added p50 {shared.get('added_p50_ms')} ms")
        finally:
            if self.fake:
                self.fake.stop()
        return self._report(systems, comparison, shared), litegate_ok

    def _report(self, systems: dict, comparison: dict, shared: dict | None = None) -> dict:
        from litegate import __version__

        status = systems.get("litegate", {}).get("exit_status")
        if status not in (0, None):
            self.notes.append(f"litegate exited with status {status} on SIGTERM (expected 0)")
        if self.a.uvloop:
            self.notes.append("litegate ran on uvloop (bench.launch_litegate --uvloop), not its default loop")
        if importlib.util.find_spec("rich") is not None:
            self.notes.append("`rich` is installed in this virtualenv (a test-only dependency, via import-linter); "
                              "structlog imports it when present, which adds ~0.1 s and ~3.5 MB to litegate's start-up "
                              "here; a `make run` virtualenv without test extras does not have it")
        noise = report.noise_note(systems)
        if noise:
            self.notes.append(noise)
        meta = {"timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "scale": self.scale.name,
                "commit": _commit(),
                "scale_note": self.scale.note, "machine": f"{platform.system()} {platform.machine()}, "
                f"{os.cpu_count()} CPUs", "python": platform.python_version(), "litegate_version": __version__,
                "pinning": self.pinning, "notes": self.notes, "profile": systems.get("litegate", {}).get("profile"),
                "generator": "in-process asyncio, raw HTTP/1.1 keep-alive (bench/loadgen.py), one connection per "
                             "concurrent client", "scale_params": vars(self.scale)}
        return {"meta": meta, "systems": systems, "targets": report.targets(systems) + report.shared_targets(shared),
                "comparison": comparison, "shared_state": shared}


def _commit() -> str | None:
    """The checkout's commit, `+dirty` when it has uncommitted changes to tracked files."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="litegate load benchmark")
    p.add_argument("--scale", choices=sorted(scenarios.SCALES), default=os.environ.get("BENCH_SCALE", "quick"))
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    p.add_argument("--litellm", help="path to LiteLLM's `litellm` executable (enables the comparison)")
    p.add_argument("--litellm-install-log", help="shown in the report when LiteLLM is missing")
    p.add_argument("--systems", default="direct,floor,litegate,shared",
                   help="comma list of direct, floor (bench/floor.py: a bare aiohttp pass-through), litegate, "
                        "shared (litegate with and without Redis), litellm")
    p.add_argument("--cprofile", action="store_true", help="profile litegate's measured run with cProfile")
    p.add_argument("--uvloop", action="store_true", help="run litegate on uvloop (must be importable)")
    p.add_argument("--keep-logs", action="store_true")
    a = p.parse_args(argv)
    a.out = os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    _raise_nofile()
    work = tempfile.mkdtemp(prefix="litegate-bench-")
    bench = Bench(a, scenarios.SCALES[a.scale], work)
    try:
        result, ok = asyncio.run(bench.run())
    except Exception:
        _log(f"benchmark harness failed; logs in {work}\n{traceback.format_exc()}")
        return 1
    json_path, md_path = report.write(result, a.out)
    print(report.markdown(result))
    _log(f"wrote {json_path} and {md_path} (and latest.json / latest.md)")
    if ok and not a.keep_logs:
        shutil.rmtree(work, ignore_errors=True)
    else:
        _log(f"process logs kept in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
