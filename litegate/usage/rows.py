"""The usage row and the shapes the dashboard queries return.

A row holds counts, tokens, cost and timings: never a prompt, a completion or a key's secret
(only the key's configured name). COLUMNS maps the row's fields, in order, to the table's columns.
"""

from __future__ import annotations

import msgspec

Endpoint = str  # chat | completions | embeddings | count_tokens | ...: what the face's route does


class UsageRow(msgspec.Struct, frozen=True, kw_only=True):
    """One client request, as accounted: written once by the gateway when the request ends."""

    time: float  # unix seconds, when the request arrived
    request_id: str
    key: str  # the key's name (auth.Principal.name), never its secret
    model: str  # the client-facing model name
    deployment: str | None  # the deployment that answered (or was last tried); None if none was
    route: str | None
    endpoint: Endpoint
    status: int
    error_code: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0  # USD
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    server_tool_calls: int = 0
    stream: bool = False
    face: str = "openai"  # the inbound API: openai | anthropic | responses | ollama
    error_class: str | None = None  # errors.error_class: backend | policy | client; None for a success


# Table columns in UsageRow field order; `time` and `key` are renamed to stay clear of SQL words.
COLUMNS: tuple[str, ...] = tuple({"time": "ts", "key": "key_name"}.get(f, f) for f in UsageRow.__struct_fields__)


def as_params(row: UsageRow) -> tuple:
    """The row as insert parameters (TypeError for anything that is not a UsageRow)."""
    if type(row) is not UsageRow:
        raise TypeError(f"expected UsageRow, got {type(row).__name__}")
    return msgspec.structs.astuple(row)


def from_db(values: tuple) -> UsageRow:
    """A row read back with `SELECT {COLUMNS}`; SQLite stores the stream flag as 0/1."""
    fields = dict(zip(UsageRow.__struct_fields__, values))
    fields["stream"] = bool(fields["stream"])
    return UsageRow(**fields)


class Totals(msgspec.Struct, frozen=True):
    """Sums over one group (a key, model, deployment, or a day/hour bucket start in unix seconds).

    Percentiles are nearest-rank over the group's rows; ttft ones only over rows that have a ttft.
    """

    group: str | int | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost: float
    server_tool_calls: int
    backend_errors: int = 0  # a model or the way to it failed
    policy_errors: int = 0  # litegate's limits, budgets or key rights said no
    client_errors: int = 0  # bad request, wrong key, unknown model, client gone
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None


class Point(msgspec.Struct, frozen=True):
    """One time bucket (start in unix seconds) of one series (None when the series is not split)."""

    t: int
    series: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost: float
    latency_avg_ms: float


class KeySums(msgspec.Struct, frozen=True):
    """What one key has used since a moment: restores in-memory limits and budgets at start."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
