"""litegate.log: the JSON lines a launchd log file gets, and the access line's direct rendering."""

from __future__ import annotations

import io

import orjson
import pytest
import structlog

from litegate import log


class _Stdout:
    """A non-terminal stdout with a byte buffer, as launchd gives the daemon."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def isatty(self) -> bool:
        return False


@pytest.fixture
def stdout():
    out = _Stdout()
    yield out
    structlog.reset_defaults()


FIELDS = {"request_id": "req_1", "method": "POST", "path": "/v1/chat/completions", "status": 200, "tried": None,
          "duration_ms": 1.5, "weird": object()}


def _lines(out: _Stdout) -> list[dict]:
    structlog.get_config()["logger_factory"]().flush()
    return [orjson.loads(line) for line in out.buffer.getvalue().splitlines()]


def test_direct_access_line_matches_structlogs_own(stdout):
    """log.info renders the same line, keys in the same order, as structlog's processor chain does."""
    log.configure("info", "json", stream=stdout)
    logger = log.get("litegate.api")
    logger.info("request", **FIELDS)
    log.info(logger, "request", dict(FIELDS))
    via_structlog, direct = _lines(stdout)
    assert list(direct) == list(via_structlog) == [*FIELDS, "event", "level", "timestamp"]
    assert {**direct, "timestamp": None} == {**via_structlog, "timestamp": None}
    assert direct["weird"].startswith("<object object")  # default=str, as structlog's renderer
    assert direct["timestamp"].endswith("Z") and direct["timestamp"][:4].isdigit()


def test_direct_access_line_respects_the_level(stdout):
    """With log_level warning an info line is not written on the direct path either."""
    log.configure("warning", "json", stream=stdout)
    log.info(log.get("litegate.api"), "request", dict(FIELDS))
    log.get("litegate.api").warning("shown")
    assert [line["event"] for line in _lines(stdout)] == ["shown"]


def test_other_setups_go_through_structlog():
    """On a text stream without a byte buffer (the console, tests) the line still comes out, via structlog."""
    out = io.StringIO()
    log.configure("info", "json", stream=out)
    try:
        log.info(log.get("litegate.api"), "request", {"status": 200})
    finally:
        structlog.reset_defaults()
    assert orjson.loads(out.getvalue())["status"] == 200
