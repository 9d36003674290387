"""Ollama's clock on the wire: `created_at` timestamps and the nanosecond durations of a done line.

Ollama clients show the counts and durations of the last line (tokens/s = eval_count /
eval_duration). A gateway has no load or prompt-evaluation phase of its own, so the durations
come from its own timing of the answer: until the first token is "prompt evaluation", from there
to the end is "evaluation" (ollama.md §8.5).
"""

from __future__ import annotations

import time

from litegate.wire import Usage


def timestamp(ns: int) -> str:
    """RFC 3339 in UTC with nine fractional digits, the form OllamaKit's fixed date pattern parses."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def now() -> str:
    return timestamp(time.time_ns())


class Timing:
    """One answer's start, first token and end, on the monotonic clock (nanoseconds)."""

    __slots__ = ("start", "first")

    def __init__(self, start_ns: int | None = None) -> None:
        self.start = time.perf_counter_ns() if start_ns is None else start_ns
        self.first: int | None = None

    def mark(self) -> None:
        """The first token (or the whole reply) has arrived."""
        if self.first is None:
            self.first = time.perf_counter_ns()

    def metrics(self, usage: Usage | None) -> dict[str, int]:
        """The six integers of Ollama's done line, all present (clients read them without defaults)."""
        end = time.perf_counter_ns()
        first = self.first if self.first is not None else end
        return {
            "total_duration": end - self.start,
            "load_duration": 0,
            "prompt_eval_count": usage.prompt_tokens if usage else 0,
            "prompt_eval_duration": first - self.start,
            "eval_count": usage.completion_tokens if usage else 0,
            "eval_duration": end - first,
        }


class Stamp:
    """`created_at` for each line of a stream; the seconds part is formatted once per second."""

    __slots__ = ("_second", "_prefix")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        seconds, frac = divmod(time.time_ns(), 1_000_000_000)
        if seconds != self._second:
            self._second = seconds
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        return f"{self._prefix}.{frac:09d}Z"

    def raw(self) -> bytes:
        return self().encode()
