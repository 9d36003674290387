"""Processes under test: CPU pinning, start-to-ready timing, RSS and CPU time of a process tree.

Linux: /proc and sched_setaffinity. Elsewhere (macOS) pinning is skipped and `ps` gives RSS and
CPU time, so the benchmark still runs and says what it could not do.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from . import loadgen

HAS_PROC = os.path.isdir("/proc/self")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def cpu_plan() -> tuple[int | None, int | None, str]:
    """(server cpu, load generator cpu, note). Server on one core, generator + fake on another."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None, f"CPU pinning unavailable on {sys.platform}: processes share all cores"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None, "only one CPU available: no pinning, generator and server share it"
    return cpus[0], cpus[1], (f"server under test pinned to CPU {cpus[0]}; load generator and fake backend "
                              f"pinned to CPU {cpus[1]} ({len(cpus)} CPUs available)")


def pin_self(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _children(pid: int) -> list[int]:
    try:
        out = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        return out
    except OSError:
        return []


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p) if HAS_PROC else []
    return pids


def rss_mb(pid: int) -> float | None:
    """Resident set size of pid and its descendants, in MB (10^6 bytes)."""
    if HAS_PROC:
        total = 0
        for p in tree(pid):
            try:
                with open(f"/proc/{p}/statm") as f:
                    total += int(f.read().split()[1]) * PAGE
            except OSError:
                pass
        return round(total / 1e6, 2) if total else None
    try:
        out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True).stdout
        return round(int(out.split()[0]) * 1024 / 1e6, 2)
    except (OSError, ValueError, IndexError):
        return None


def cpu_s(pid: int) -> float | None:
    """utime + stime of pid and its live descendants, in seconds."""
    if HAS_PROC:
        total = 0
        for p in tree(pid):
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return total / CLK_TCK
    try:
        out = subprocess.run(["ps", "-o", "time=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
        parts = [float(x) for x in out.replace("-", ":").split(":")]
        return sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
    except (OSError, ValueError):
        return None


def cpu_busy() -> dict[int, float]:
    """Busy seconds per CPU since boot (/proc/stat); {} where there is no /proc."""
    out: dict[int, float] = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu") and line[3].isdigit():
                    name, *v = line.split()
                    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in v[:8])
                    out[int(name[3:])] = (user + nice + system + irq + softirq + steal) / CLK_TCK
    except OSError:
        pass
    return out


class Window:
    """CPU use over a measured window: the server's own, and everyone else's on the server's CPU.

    Other sessions or jobs on the same machine show up as `other_load`: the fraction of the server's
    CPU that processes other than the server used while it was measured (0 on a quiet machine).
    """

    def __init__(self, pid: int, cpu: int | None) -> None:
        self.pid, self.cpu = pid, cpu
        self.t0, self.own0, self.busy0 = time.perf_counter(), cpu_s(pid), cpu_busy()

    def close(self, n: int) -> dict:
        t1, own1, busy1 = time.perf_counter(), cpu_s(self.pid), cpu_busy()
        out: dict = {}
        if self.own0 is None or own1 is None:
            return out
        own, wall = own1 - self.own0, t1 - self.t0
        if n:
            out["cpu_ms_per_req"] = round(own / n * 1000, 4)
        out["cpu_util"] = round(own / wall, 3)
        if self.cpu is not None and self.cpu in busy1 and self.cpu in self.busy0:
            out["other_load"] = round(max(0.0, (busy1[self.cpu] - self.busy0[self.cpu] - own) / wall), 3)
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    port: int
    started: float
    log_path: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 10) -> int | None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except OSError:
                self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def launch(name: str, argv: list[str], port: int, log_path: str, cpu: int | None, env: dict | None = None,
           cwd: str | None = None) -> Proc:
    """Start argv in its own process group, pinned to `cpu`; stdout+stderr go to log_path."""
    def pre() -> None:
        os.setsid()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    full_env = {**os.environ, **(env or {})}
    # Start-up is timed as on a user's machine, where bytecode caches get written once and reused.
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    log = open(log_path, "ab")
    started = time.perf_counter()
    popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=pre, env=full_env, cwd=cwd)
    log.close()
    return Proc(name, popen, port, started, log_path)


async def wait_ready(proc: Proc, payload: bytes, timeout_s: float) -> float:
    """Seconds from exec to the first 200 reply to `payload`; RuntimeError if it never comes."""
    deadline = proc.started + timeout_s
    last = "no answer"
    while time.perf_counter() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with status {proc.popen.returncode}:\n{proc.log_tail()}")
        try:
            conn = await loadgen.connect("127.0.0.1", proc.port, retries=1)
        except OSError:
            await asyncio.sleep(0.002)
            continue
        try:
            reply = await asyncio.wait_for(conn.request(payload), 5)
            if reply.status == 200:
                return time.perf_counter() - proc.started
            last = f"HTTP {reply.status}: {reply.body[:300]!r}"
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            last = repr(e)
        finally:
            conn.t.close()
        await asyncio.sleep(0.01)
    raise RuntimeError(f"{proc.name} not ready after {timeout_s}s ({last}):\n{proc.log_tail()}")
