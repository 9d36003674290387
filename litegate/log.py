"""structlog set-up: JSON lines when stdout is not a terminal (launchd files them), console otherwise.

Events are snake_case names with fields. Nothing here or anywhere else logs a prompt, a
completion or a key. JSON lines are rendered with orjson straight to bytes: the access log runs
once per request, so it is on the hot path. For the same reason the lines of one event-loop turn
are written together (one write and flush per turn, not per line: under load several requests
end in one turn), and the timestamp's date and time are formatted once per second.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _orjson_str(obj, **_kw) -> str:
    return orjson.dumps(obj, default=str).decode()


def _orjson_bytes(obj, **_kw) -> bytes:
    return orjson.dumps(obj, default=str)


class _Stamper:
    """structlog's ISO UTC timestamp (2026-01-02T03:04:05.123456Z), the seconds part cached."""

    __slots__ = ("_sec", "_prefix")

    def __init__(self) -> None:
        self._sec, self._prefix = -1, ""

    def __call__(self, _logger, _name, event_dict: dict) -> dict:
        now = time.time()
        sec = int(now)
        if sec != self._sec:
            self._sec, self._prefix = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        event_dict["timestamp"] = f"{self._prefix}.{int((now - sec) * 1e6):06d}Z"
        return event_dict


class _TurnWriter:
    """A structlog logger writing JSON lines to a binary stream, once per event-loop turn.

    An info or debug line logged on the loop is written when the loop next turns (call_soon); a
    warning or worse, or any line logged with no running loop (start-up, the usage writer thread),
    is written at once with anything still pending before it, so lines keep their order and
    nothing that explains an exit (os._exit after a second SIGTERM) waits for a turn that never
    comes. Exit flushes what is left (atexit)."""

    def __init__(self, file) -> None:
        self._file = file
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._scheduled = False

    def msg(self, message: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._lines.append(message)
            if loop is not None and self._scheduled:
                return
            self._scheduled = loop is not None
        if loop is None:
            self.flush()
        else:
            loop.call_soon(self.flush)

    def now(self, message: bytes) -> None:
        with self._lock:
            self._lines.append(message)
        self.flush()

    log = debug = info = msg
    warn = warning = err = error = critical = exception = fatal = failure = now

    def flush(self) -> None:
        with self._lock:
            lines, self._lines, self._scheduled = self._lines, [], False
        if lines:
            lines.append(b"")
            self._file.write(b"\n".join(lines))
            self._file.flush()


class _Shared:
    """structlog's logger factory on the JSON-to-bytes path: every logger writes through one _TurnWriter.
    It also carries what `info()` needs to render a line without structlog's processor chain."""

    def __init__(self, writer: _TurnWriter, level: int, stamp: _Stamper) -> None:
        self.writer, self.level, self.stamp = writer, level, stamp

    def __call__(self, *_args) -> _TurnWriter:
        return self.writer


def info(logger, event: str, fields: dict) -> None:
    """`logger.info(event, **fields)` for a line logged on every request (the access log): on the JSON
    path the same bytes structlog's processors would make (fields, event, level, timestamp; orjson)
    are rendered here directly, a third of the cost; on any other set-up it goes through structlog."""
    factory = structlog.get_config()["logger_factory"]
    if type(factory) is not _Shared:
        logger.info(event, **fields)
        return
    if factory.level > logging.INFO:
        return
    fields["event"], fields["level"] = event, "info"
    factory.writer.msg(_orjson_bytes(factory.stamp(None, "info", fields)))


def configure(level: str = "info", fmt: str = "auto", stream=None) -> None:
    stream = stream or sys.stdout
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    stamper = _Stamper()
    binary = getattr(stream, "buffer", None) if as_json else None
    if not as_json:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        factory = structlog.PrintLoggerFactory(file=stream)
    elif binary is not None:
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_bytes)
        writer = _TurnWriter(binary)
        atexit.register(writer.flush)
        factory = _Shared(writer, _LEVELS.get(level, logging.INFO), stamper)  # one writer: lines share a turn
    else:  # a text stream without a byte buffer (tests' StringIO)
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_str)
        factory = structlog.PrintLoggerFactory(file=stream)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            stamper,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def get(name: str = "litegate"):
    return structlog.get_logger(name)
