"""Life cycle of a real `litegate serve` process: start-up errors, SIGHUP reload under load, the
optional file watch, SIGTERM drain, and the env file that carries the secrets.

The gateway runs as a subprocess (signals are per process); the fake backends run in the test's
own loop. The subprocess's stdout is JSON log lines (not a TTY), read as they come: every wait
below is for a log event or a stream's bytes, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from litegate.config.envfile import EnvFileError, environment, read_env_file
from tests.conftest import base, sse_events
from tests.fakes import ollama as fake_ollama
from tests.fakes import openai_compat as fake_openai

ROOT = Path(__file__).resolve().parents[1]
EX_CONFIG = 78
HOLD_S = 1.0  # how long the drain test keeps streams open after SIGTERM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, backend: str, names: list[str], **server: Any) -> dict[str, Any]:
    doc = {"server": {"host": "127.0.0.1", **server}, "router": {"num_retries": 0},
           "models": [{"name": n, "provider": "ollama", "model": f"{n}:latest", "api_base": backend} for n in names]}
    path.write_text(json.dumps(doc))
    return doc


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without our variables, but always with a throwaway usage data dir (module-scoped
    fixtures run before the per-test one that sets it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITEGATE_", "OPENAI_", "UPSTREAM_"))}
    data_dir = os.environ.get("LITEGATE_DATA_DIR") or tempfile.mkdtemp(prefix="litegate-test-data-")
    return {**env, "LITEGATE_DATA_DIR": data_dir, **extra}


class Gateway:
    """A `python -m litegate serve` subprocess; its stdout lines are parsed (JSON) as they arrive."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc, self.port = proc, port
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.eof = False
        self._news = asyncio.Event()
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                event = {"text": line}
            self.events.append(event if isinstance(event, dict) else {"text": line})
            self._news.set()
        self.eof = True
        self._news.set()

    async def wait_for(self, want: str | Callable[[dict[str, Any]], bool], since: int = 0,
                       timeout: float = 20) -> dict[str, Any]:
        pred = want if callable(want) else (lambda e: e.get("event") == want)

        async def scan() -> dict[str, Any]:
            i = since
            while True:
                for event in self.events[i:]:
                    if pred(event):
                        return event
                i = len(self.events)
                if self.eof:
                    stderr = (await self.proc.stderr.read()).decode() if self.proc.stderr else ""
                    raise AssertionError(f"litegate exited before {want!r}:\n" + "\n".join(self.lines) + stderr)
                self._news.clear()
                await self._news.wait()

        return await asyncio.wait_for(scan(), timeout)

    async def signal(self, sig: int, want: str | Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        mark = len(self.events)
        self.proc.send_signal(sig)
        return await self.wait_for(want, since=mark)

    async def reload(self) -> dict[str, Any]:
        return await self.signal(signal.SIGHUP, lambda e: e.get("event", "").startswith("config_reload"))

    def index(self, event: str) -> int:
        return next(i for i, e in enumerate(self.events) if e.get("event") == event)


@pytest.fixture
async def litegate():
    """Start `litegate serve` on a free port and wait for its `ready` event; kill leftovers at the end."""
    started: list[Gateway] = []

    async def start(config: Path, *args: str, env: dict[str, str] | None = None) -> Gateway:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "litegate", "serve", "--config", str(config), "--port", str(port), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=env or clean_env())
        gw = Gateway(proc, port)
        started.append(gw)
        await gw.wait_for("ready")
        return gw

    yield start
    for gw in started:
        if gw.proc.returncode is None:
            gw.proc.kill()
        await gw.proc.wait()
        await gw._pump


class Countdown:
    def __init__(self, n: int) -> None:
        self.left, self.done = n, asyncio.Event()

    def hit(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done.set()


async def stream(session: aiohttp.ClientSession, url: str, model: str, started: Callable[[], None]) -> dict:
    """One streaming chat; calls started() once the first token ("tick") has arrived."""
    body, ticked = b"", False
    payload = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with session.post(url + "/v1/chat/completions", json=payload) as resp:
        async for chunk in resp.content.iter_any():
            body += chunk
            if not ticked and b"tick" in body:
                ticked = True
                started()
        return {"status": resp.status, "model": resp.headers.get("x-litegate-model"), "body": body}


def assert_complete(result: dict, deployment: str) -> None:
    events, _ = sse_events(result["body"])
    chunks = [e for e in events if e != "[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert result["status"] == 200 and result["model"] == deployment
    assert text == "tick tock", text
    assert [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")][-1] == "stop"
    assert events[-1] == "[DONE]"


async def model_ids(session: aiohttp.ClientSession, url: str) -> set[str]:
    async with session.get(url + "/v1/models") as resp:
        assert resp.status == 200
        return {m["id"] for m in (await resp.json())["data"]}


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


async def open_streams(session: aiohttp.ClientSession, gw: Gateway, n: int, model: str = "slow") -> list[asyncio.Task]:
    ready = Countdown(n)
    tasks = [asyncio.create_task(stream(session, gw.url, model, ready.hit)) for _ in range(n)]
    await asyncio.wait_for(ready.done.wait(), 30)
    return tasks


# ------------------------------------------------------------------ reload


async def test_sighup_reloads_under_100_open_streams(ollama, tmp_path, litegate):
    """SIGHUP swaps the config (valid, invalid, valid without the streams' model) while 100 streams are
    open: none is dropped or altered, each ends on the snapshot it began with, new requests see the new
    config, and an invalid file keeps the old config and logs the fault with its JSON path."""
    backend, path = base(ollama), tmp_path / "litegate.json"
    write_config(path, backend, ["slow", "llama"])
    gw = await litegate(path)
    deployment = f"ollama/slow:latest@127.0.0.1:{ollama.port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        tasks = await open_streams(s, gw, 100)

        write_config(path, backend, ["slow", "llama", "added"])
        assert (await gw.reload())["event"] == "config_reloaded"
        assert {"slow", "llama", "added"} <= await model_ids(s, gw.url)

        bad = write_config(path, backend, ["slow", "llama", "broken"])
        bad["models"][2]["provider"] = "nope"
        path.write_text(json.dumps(bad))
        failed = await gw.reload()
        assert failed["event"] == "config_reload_failed"
        assert any(p.startswith("$.models[2].provider: ") for p in failed["problems"]), failed
        assert "added" in await model_ids(s, gw.url) and "broken" not in await model_ids(s, gw.url)

        write_config(path, backend, ["llama", "added", "later"])
        assert (await gw.reload())["event"] == "config_reloaded"
        assert await model_ids(s, gw.url) == {"llama", "added", "later"}
        async with s.post(gw.url + "/v1/chat/completions",
                          json={"model": "slow", "messages": [{"role": "user", "content": "hi"}]}) as resp:
            assert resp.status == 404  # new requests use the new snapshot, where "slow" is gone
        async with s.post(gw.url + "/v1/chat/completions",
                          json={"model": "later", "messages": [{"role": "user", "content": "hi"}]}) as resp:
            assert resp.status == 200 and (await resp.json())["choices"][0]["message"]["content"] == \
                "Hello from later:latest"

        assert not [t for t in tasks if t.done()], "a stream ended during the reloads"
        ollama.app[fake_ollama.GATE].set()
        results = await asyncio.gather(*tasks)
    for result in results:
        assert_complete(result, deployment)
    assert ollama.app[fake_ollama.CANCELLED] == []
    assert gw.proc.returncode is None


async def test_watch_config_reloads_on_change(ollama, tmp_path, litegate):
    """server.watch_config: editing the file triggers the same reload as SIGHUP (reason file_changed)."""
    path = tmp_path / "litegate.json"
    write_config(path, base(ollama), ["llama"], watch_config=True)
    gw = await litegate(path)
    mark = len(gw.events)
    write_config(path, base(ollama), ["llama", "watched"], watch_config=True)
    event = await gw.wait_for(lambda e: e.get("event", "").startswith("config_reload"), since=mark, timeout=10)
    assert event["event"] == "config_reloaded" and event["reason"] == "file_changed"
    async with aiohttp.ClientSession() as s:
        assert "watched" in await model_ids(s, gw.url)


async def test_reload_reports_restart_only_settings(ollama, tmp_path, litegate):
    """A reload that changes a bind-time setting (server.port) applies the rest and says a restart is needed."""
    path = tmp_path / "litegate.json"
    write_config(path, base(ollama), ["llama"])
    gw = await litegate(path)
    write_config(path, base(ollama), ["llama"], port=free_port())
    event = await gw.reload()
    assert event["event"] == "config_reloaded" and event["restart_needed"] == ["server.port"]


def logged_events(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line).get("event"))
        except (ValueError, AttributeError):
            pass
    return out


async def until(pred: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for a condition on a file: files announce nothing, so this polls (every 20 ms) until it holds."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_rotated_log_file_is_reopened(ollama, tmp_path):
    """With stdout a file (launchd's StandardOutPath, opened O_APPEND), a rotation that renames it is
    followed within a second: litegate reopens the path and later lines land in the new file, not in the
    archive (so a newsyslog entry needs no signal)."""
    path, log, port = tmp_path / "litegate.json", tmp_path / "litegate.log", free_port()
    write_config(path, base(ollama), ["llama"])
    with open(log, "ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "litegate", "serve", "--config", str(path), "--port", str(port),
            stdout=out, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT, env=clean_env())
    try:
        await until(lambda: "ready" in logged_events(log))
        log.rename(tmp_path / "litegate.log.0")
        await until(lambda: "log_reopened" in logged_events(log))
        async with aiohttp.ClientSession() as s:
            assert "llama" in await model_ids(s, f"http://127.0.0.1:{port}")
        await until(lambda: "request" in logged_events(log))
        assert "request" not in logged_events(tmp_path / "litegate.log.0")
    finally:
        proc.terminate()
        assert await proc.wait() == 0


# ------------------------------------------------------------------ shutdown


async def test_sigterm_drains_streams_then_exits_0(ollama, tmp_path, litegate):
    """SIGTERM closes the listening socket at once (new connections refused), lets in-flight streams run to
    their end within the grace, then exits 0 after the last request has been logged."""
    path = tmp_path / "litegate.json"
    write_config(path, base(ollama), ["slow"], shutdown_grace_s=30)
    gw = await litegate(path)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        tasks = await open_streams(s, gw, 20)
        draining = await gw.signal(signal.SIGTERM, "shutdown_draining")
        assert draining["open_connections"] >= 20
        assert refused(gw.port)
        # The behaviour pinned here is temporal (streams outlive a while of draining), so no event can stand
        # in for this wait: a drain cut short (say a tiny shutdown_timeout) ends the streams within it.
        await asyncio.sleep(HOLD_S)
        assert gw.proc.returncode is None and not [t for t in tasks if t.done()]
        ollama.app[fake_ollama.GATE].set()
        results = await asyncio.gather(*tasks)
    for result in results:
        assert_complete(result, f"ollama/slow:latest@127.0.0.1:{ollama.port}")
    assert await asyncio.wait_for(gw.proc.wait(), 10) == 0
    await gw._pump
    requests = [i for i, e in enumerate(gw.events) if e.get("event") == "request"]
    assert len(requests) == 20 and max(requests) < gw.index("shutdown_complete")


async def test_grace_expiry_cuts_streams_and_still_exits(ollama, tmp_path, litegate):
    """A stream still open when server.shutdown_grace_s runs out is cut; the process exits 0 after the
    grace, not before it and not much later."""
    path = tmp_path / "litegate.json"
    write_config(path, base(ollama), ["slow"], shutdown_grace_s=0.5)
    gw = await litegate(path)
    async with aiohttp.ClientSession() as s:
        [task] = await open_streams(s, gw, 1)
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gw.proc.wait(), 10) == 0
        elapsed = time.monotonic() - started
        result = await asyncio.gather(task, return_exceptions=True)
    ollama.app[fake_ollama.GATE].set()
    assert 0.5 <= elapsed < 5, elapsed
    assert isinstance(result[0], Exception) or b"[DONE]" not in result[0]["body"]


async def test_second_sigterm_exits_at_once(ollama, tmp_path, litegate):
    """A second SIGTERM during the drain exits immediately with a non-zero status."""
    path = tmp_path / "litegate.json"
    write_config(path, base(ollama), ["slow"], shutdown_grace_s=60)
    gw = await litegate(path)
    async with aiohttp.ClientSession() as s:
        [task] = await open_streams(s, gw, 1)
        await gw.signal(signal.SIGTERM, "shutdown_draining")
        gw.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gw.proc.wait(), 5) == 1
        await asyncio.gather(task, return_exceptions=True)
    await gw._pump
    assert any(e.get("event") == "shutdown_forced" for e in gw.events)
    ollama.app[fake_ollama.GATE].set()


# ------------------------------------------------------------------ start-up


async def test_ready_with_one_line(ollama, tmp_path, litegate):
    """Start-up prints `litegate listening on http://H:N` once, and the server answers right after it.

    How fast that happens is measured by `make bench` (time from exec to first request), not here."""
    path = tmp_path / "litegate.json"
    write_config(path, base(ollama), ["llama"])
    gw = await litegate(path)
    assert [line for line in gw.lines if "listening on" in line] == [f"litegate listening on http://127.0.0.1:{gw.port}"]
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/health") as resp:
        assert resp.status == 200


def run_serve(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "litegate", "serve", "--config", str(config), *args],
                          capture_output=True, text=True, cwd=ROOT, env=clean_env(), timeout=60)


def one_line(res: subprocess.CompletedProcess) -> str:
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("litegate: "), res.stderr
    return lines[0]


FAULTS = {  # case: (config document, extra args, text the one stderr line must hold)
    "missing-secret": ({"models": [{"name": "gpt", "provider": "openai", "model": "m", "api_key_env": "LITEGATE_T"}]},
                       [], "$.models[0].api_key_env: model 'gpt': environment variable LITEGATE_T is not set"),
    "invalid": ({"models": [{"name": "x", "provider": "nope", "model": "m"}], "server": {"port": -1}},
                [], "$.models[0].provider: 'nope' is not one of"),
    "unreadable": (None, [], "cannot read file: No such file or directory"),
    "exposed": ({"models": [{"name": "x", "provider": "ollama", "model": "m"}]}, ["--host", "0.0.0.0"],
                "refusing to listen on 0.0.0.0 without API keys"),
    "env-file-open": ({"models": [{"name": "x", "provider": "ollama", "model": "m"}]}, ["--env-file", "{open}"],
                      "is open to other users (mode 644); run: chmod 600"),
}


@pytest.fixture(scope="module")
def fault_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every start-up fault case (and a port in use) run once, side by side, to keep the file fast."""
    tmp = tmp_path_factory.mktemp("faults")
    (tmp / "open.env").write_text("UPSTREAM_KEY=sk-SECRET\n")
    (tmp / "open.env").chmod(0o644)
    jobs = {}
    for case, (doc, args, _) in FAULTS.items():
        path = tmp / f"{case}.json"
        if case != "unreadable":
            path.write_text(json.dumps(doc))
        jobs[case] = (path, [a.format(open=tmp / "open.env") for a in args])
    with socket.socket() as busy, ThreadPoolExecutor(max_workers=len(jobs) + 1) as pool:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        jobs["port-in-use"] = (tmp / "exposed.json", ["--port", str(busy.getsockname()[1])])
        futures = {case: pool.submit(run_serve, path, *args) for case, (path, args) in jobs.items()}
        runs = {case: f.result() for case, f in futures.items()}
    runs["port-in-use"].port = int(jobs["port-in-use"][1][1])  # type: ignore[attr-defined]
    return runs


def test_port_in_use_is_one_line(fault_runs):
    """A port already in use: one line naming host:port on stderr, exit 1, nothing on stdout."""
    res = fault_runs["port-in-use"]
    assert res.returncode == 1 and res.stdout == ""
    line = one_line(res)
    assert f"cannot listen on 127.0.0.1:{res.port}: " in line and "in use" in line.lower()


@pytest.mark.parametrize("case", list(FAULTS))
def test_config_faults_are_one_line_and_ex_config(fault_runs, case):
    """A missing secret, an invalid or unreadable file, a keyless non-loopback bind, an env file open to
    others: one line on stderr naming the fault (with its JSON path where there is one),
    nothing on stdout, exit 78 (EX_CONFIG); never a secret's value."""
    res = fault_runs[case]
    assert res.returncode == EX_CONFIG and res.stdout == ""
    assert FAULTS[case][2] in one_line(res)
    assert "SECRET" not in res.stderr
    if case == "invalid":
        assert "$.server.port: -1 is less than the minimum of 0" in res.stderr  # every fault, on the one line


# ------------------------------------------------------------------ env file


def secret_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "env"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_env_file_format(tmp_path):
    """KEY=VALUE lines: comments, blanks, `export `, one pair of matching quotes removed, `=` in values kept."""
    path = secret_file(tmp_path, "# secrets\n\nA=1\nexport B = two words \nC='q=1'\nD=\"x\"\nE=\nF='unbalanced\n")
    assert read_env_file(str(path)) == {"A": "1", "B": "two words", "C": "q=1", "D": "x", "E": "", "F": "'unbalanced"}


@pytest.mark.parametrize("text,mode,expect", [
    ("OPENAI_API_KEY=sk-SECRET\n", 0o644, "chmod 600"),
    ("OPENAI_API_KEY=sk-SECRET\n", 0o640, "chmod 600"),
    ("A=1\nsk-SECRET\n", 0o600, "line 2: expected KEY=VALUE"),
    ("A=1\n9BAD=sk-SECRET\n", 0o600, "line 2: expected KEY=VALUE"),
    (None, 0o600, "cannot read it: No such file or directory"),
])
def test_env_file_faults_name_the_line_not_the_value(tmp_path, text, mode, expect):
    """An env file open to others, absent, or with a malformed line is refused; the message names the file
    or line, never a value."""
    path = secret_file(tmp_path, text, mode) if text is not None else tmp_path / "absent"
    with pytest.raises(EnvFileError) as err:
        read_env_file(str(path))
    assert expect in str(err.value) and "SECRET" not in str(err.value)


def test_env_file_is_read_anew_and_never_written_to_the_process(tmp_path, monkeypatch):
    """Each read of the env file (as a reload does) sees it as it is now: changed values change, removed
    keys are gone, and nothing is written into os.environ."""
    monkeypatch.delenv("LITEGATE_T1", raising=False)
    monkeypatch.delenv("LITEGATE_T2", raising=False)
    path = secret_file(tmp_path, "LITEGATE_T1=a\nLITEGATE_T2=b\n")
    env = environment(str(path), {"BASE": "x"})
    assert (env["LITEGATE_T1"], env["LITEGATE_T2"], env["BASE"]) == ("a", "b", "x")
    path.write_text("LITEGATE_T1=c\n")
    env = environment(str(path), {"BASE": "x"})
    assert env["LITEGATE_T1"] == "c" and "LITEGATE_T2" not in env
    assert "LITEGATE_T1" not in os.environ and "LITEGATE_T2" not in os.environ


async def test_env_file_supplies_secrets_and_reload_rotates_them(aiohttp_server, tmp_path, litegate):
    """`serve --env-file` resolves api_key_env from the file; after the key is changed in the file, SIGHUP
    picks up the new one. No secret value ever reaches stdout or stderr."""
    upstream = await aiohttp_server(fake_openai.make_app(api_key="sk-NEW"))
    path = tmp_path / "litegate.json"
    path.write_text(json.dumps({"router": {"num_retries": 0}, "models": [
        {"name": "gpt", "provider": "openai", "model": "m", "api_base": base(upstream, "/v1"),
         "api_key_env": "UPSTREAM_KEY"}]}))
    env_file = secret_file(tmp_path, "# upstream\nUPSTREAM_KEY=sk-OLD\n")
    gw = await litegate(path, "--env-file", str(env_file))
    chat = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", json=chat) as resp:
            assert resp.status != 200
        env_file.write_text("UPSTREAM_KEY=sk-NEW\n")
        assert (await gw.reload())["event"] == "config_reloaded"
        async with s.post(gw.url + "/v1/chat/completions", json=chat) as resp:
            assert resp.status == 200
    gw.proc.send_signal(signal.SIGTERM)
    assert await gw.proc.wait() == 0
    await gw._pump
    stderr = (await gw.proc.stderr.read()).decode()
    output = "\n".join(gw.lines) + stderr
    assert "sk-OLD" not in output and "sk-NEW" not in output
