"""A real redis-server for the shared-state tests: on loopback, on a free port, in a temp dir,
with no persistence (so a restart loses its data, the case litegate must survive).

Ready means the server printed "Ready to accept connections" (an event, not a sleep). Tests skip
with a reason where redis-server is not installed (Debian package `redis-server`; .ci/run
installs it).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
SKIP_REASON = ("redis-server is not installed (Debian package `redis-server`, Homebrew `redis` or `valkey`): "
               "the shared-state tests need a real one")


def need_redis() -> None:
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    try:
        import redis  # noqa: F401
    except ImportError:
        pytest.skip("the redis Python library is not installed (pip install 'litegate[redis]')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self._drainer: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 20) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.workdir), "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "notice",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        seen: list[bytes] = []

        async def ready() -> None:
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise RuntimeError("redis-server exited: " + b"".join(seen[-5:]).decode(errors="replace"))
                seen.append(line)
                if b"Ready to accept connections" in line:
                    return

        await asyncio.wait_for(ready(), timeout)
        self._drainer = asyncio.get_running_loop().create_task(self._drain(self.proc))

    @staticmethod
    async def _drain(proc: asyncio.subprocess.Process) -> None:
        """Keep reading its log so a chatty server never blocks on a full pipe."""
        while await proc.stdout.readline():
            pass

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await proc.wait()
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
            self._drainer = None
