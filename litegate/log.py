"""structlog set-up: JSON lines when stdout is not a terminal (launchd files them), console otherwise.

Events are snake_case names with fields. Nothing here or anywhere else logs a prompt, a
completion or a key. JSON lines are rendered with orjson straight to bytes: the access log runs
once per request, so it is on the hot path.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _orjson_str(obj, **_kw) -> str:
    return orjson.dumps(obj, default=str).decode()


def _orjson_bytes(obj, **_kw) -> bytes:
    return orjson.dumps(obj, default=str)


def configure(level: str = "info", fmt: str = "auto", stream=None) -> None:
    stream = stream or sys.stdout
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    binary = getattr(stream, "buffer", None) if as_json else None
    if not as_json:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        factory = structlog.PrintLoggerFactory(file=stream)
    elif binary is not None:
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_bytes)
        factory = structlog.BytesLoggerFactory(file=binary)
    else:  # a text stream without a byte buffer (tests' StringIO)
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_str)
        factory = structlog.PrintLoggerFactory(file=stream)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def get(name: str = "litegate"):
    return structlog.get_logger(name)
