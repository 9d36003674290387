"""The daemon's life cycle: listen, SIGHUP reload, file watch, SIGTERM drain, log rotation.

As launchd (or anyone) sees it:
- start: ready in a fraction of a second; a config, env-file or exposure fault is one line on stderr
  and exit EX_CONFIG (78), a port that cannot be bound is one line and exit 1.
- SIGHUP (and, with server.watch_config, a changed file): re-read the env file and the config, swap
  the snapshot whole or keep the old one and log config_reload_failed with the JSON paths.
- SIGTERM/SIGINT: close the listening socket (new connections are refused), let in-flight requests
  and streams finish within server.shutdown_grace_s, run cleanup_ctx teardown (usage flushed),
  exit 0. A second signal exits at once with status 1.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import stat
import sys
import time

import structlog
from aiohttp import web

from litegate import log, state
from litegate.config import ConfigError, ConfigHolder, exposure_problem, load
from litegate.config.envfile import EnvFileError, environment
from litegate.errors import GatewayError
from litegate.http import admin, listen, middleware
from litegate.http.app import create_app

logger = structlog.get_logger("litegate")


EX_CONFIG = 78  # sysexits.h: the configuration is at fault; `launchctl print` shows "78: EX_CONFIG"
EX_FAILURE = 1
WATCH_INTERVAL_S = 1.0


async def _run(holder: ConfigHolder, host: str, port: int) -> int:
    cfg = holder.current
    app = create_app(holder)
    # runner.cleanup() stops the site (listening socket closed), waits for each connection's in-flight handler,
    # then runs cleanup_ctx; at server.shutdown_grace_s we end what is left ourselves (cut_in_flight), so each
    # client gets a 503 or its face's error frame rather than a dropped socket (see http/listen.py).
    runner = listen.runner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        return _fail(f"cannot listen on {host}:{port}: {os.strerror(e.errno) if e.errno else e}", EX_FAILURE)
    if port == 0:
        port = runner.addresses[0][1]  # `--port 0`: say which port the system picked
    loop = asyncio.get_running_loop()
    reload = Reloader(holder)
    stop = asyncio.Event()
    _on_signals(loop, reload, stop, cfg.server.shutdown_grace_s)
    watcher = asyncio.create_task(_watch(holder, reload, LogFiles()))
    print(f"litegate listening on http://{host}:{port}", flush=True)
    logger.info("ready", host=host, port=port, models=len(cfg.groups()), config=holder.path)
    await stop.wait()
    watcher.cancel()
    started = time.monotonic()
    for s in list(runner.sites):
        await s.stop()  # the listening socket closes now: new connections are refused, not queued
    logger.info("shutdown_draining", open_connections=len(runner.server.connections) if runner.server else 0)
    cut = loop.call_later(cfg.server.shutdown_grace_s, _cut, app)
    await runner.cleanup()
    cut.cancel()
    logger.info("shutdown_complete", drain_s=round(time.monotonic() - started, 3))
    return 0


def _cut(app: web.Application) -> None:
    n = middleware.cut_in_flight(app)
    if n:
        logger.warning("shutdown_grace_expired", cut=n)


def _on_signals(loop: asyncio.AbstractEventLoop, reload: Reloader, stop: asyncio.Event, grace_s: float) -> None:
    """SIGHUP reloads (on the loop, between requests); the first SIGTERM/SIGINT drains, the second exits now."""

    def on_term() -> None:
        if stop.is_set():
            logger.warning("shutdown_forced")
            sys.stdout.flush()
            os._exit(EX_FAILURE)
        logger.info("shutdown_started", grace_s=grace_s)
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, on_term)
    loop.add_signal_handler(signal.SIGHUP, reload, "sighup")


class Reloader:
    """SIGHUP and the file watch come through here to admin.reload, the one door; it never raises."""

    def __init__(self, holder: ConfigHolder) -> None:
        self.holder = holder
        self.stamp = _stamp(holder.path)

    def __call__(self, reason: str = "sighup") -> bool:
        self.stamp = _stamp(self.holder.path)
        try:
            admin.reload(self.holder, reason)
        except GatewayError:
            return False  # logged by admin.reload; the old config stays
        except Exception:  # a reload must never take the running server down with it
            logger.exception("config_reload_failed", reason=reason)
            return False
        return True


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


async def _watch(holder: ConfigHolder, reload: Reloader, logs: LogFiles, interval: float = WATCH_INTERVAL_S) -> None:
    """Once a second: follow a rotated log file, and with server.watch_config reload a changed config.

    The task always runs so a reload can switch watching on or off; while off it does not even stat the
    config. Inode and size are compared too: editors that save by rename can keep the mtime's second.
    """
    while True:
        await asyncio.sleep(interval)
        logs.reopen_if_rotated()
        if holder.current.server.watch_config and _stamp(holder.path) != reload.stamp:
            reload("file_changed")


class LogFiles:
    """stdout/stderr when they are files (launchd opens StandardOutPath/StandardErrorPath O_APPEND by path).

    A rotation (newsyslog) renames or removes the file while we hold it open; without help every later
    line would go on into the archive. So when the path no longer names the file we write to, reopen it.
    Nothing to do on a terminal or a pipe.
    """

    def __init__(self) -> None:
        self.paths = {fd: path for fd in (1, 2) if (path := _fd_path(fd))}

    def reopen_if_rotated(self) -> None:
        for fd, path in self.paths.items():
            try:
                if os.path.samestat(os.fstat(fd), os.stat(path)):
                    continue
            except FileNotFoundError:
                pass
            except OSError:
                continue
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            try:
                new = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            except OSError:
                continue  # e.g. the directory is gone: keep writing where we were
            os.dup2(new, fd)
            os.close(new)
            logger.info("log_reopened", path=path)


def _fd_path(fd: int) -> str | None:
    """The path a regular-file descriptor was opened with (macOS F_GETPATH, Linux /proc), else None."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        if hasattr(fcntl, "F_GETPATH"):
            return fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024)).split(b"\0", 1)[0].decode()
        return os.readlink(f"/proc/self/fd/{fd}")
    except (OSError, UnicodeDecodeError):
        return None


def _fail(message: str, code: int) -> int:
    """Start-up failure: exactly one line on stderr (launchd files it in litegate.err.log)."""
    print("litegate: " + " ".join(message.splitlines()), file=sys.stderr, flush=True)
    return code


def config_error_line(e: ConfigError) -> str:
    return f"invalid config {e.source}: " + "; ".join(f"{path}: {reason}" for path, reason in e.problems)


def _event_loop_run(choice: str, main):
    """Run on uvloop when it is installed (it is a dependency on macOS and Linux), else asyncio's loop.

    uvloop's libuv loop makes the per-request socket and scheduling work cheaper; `make bench` shows
    what it buys. `server.event_loop: "asyncio"` opts out."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                logger.warning("uvloop_unavailable")
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def serve(config_path: str, host: str | None = None, port: int | None = None, env_file: str | None = None,
          pidfile: str | None = None) -> int:
    try:
        cfg = load(config_path, environment(env_file))
    except EnvFileError as e:
        return _fail(str(e), EX_CONFIG)
    except ConfigError as e:
        return _fail(config_error_line(e), EX_CONFIG)
    log.configure(cfg.server.log_level, cfg.server.log_format)
    host = host or cfg.server.host
    port = cfg.server.port if port is None else port
    try:
        holder = ConfigHolder(config_path, cfg, env_file=env_file, host=host)  # + keys made in the dashboard
    except ConfigError as e:
        return _fail(config_error_line(e), EX_CONFIG)
    refusal = exposure_problem(holder.current, host) or state.missing_library(cfg)
    if refusal:
        return _fail(refusal, EX_CONFIG)
    if pidfile:  # `make reload` finds a `make run` instance by it (launchd knows its own job)
        with open(pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    try:
        return _event_loop_run(cfg.server.event_loop, _run(holder, host, port))
    except KeyboardInterrupt:
        return 0
    finally:
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
